package bidder

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/audience"
)

// TestMatchPlanAgreesWithContains: the match plan's one-pass answer is, for
// every campaign and every combination of ids, what matchAudiences (one
// Contains per campaign audience and id) answers, user included; and the
// plan follows campaign and audience changes.
func TestMatchPlanAgreesWithContains(t *testing.T) {
	f := newFixture(t)
	am := f.deps.Audiences
	cs := f.deps.Campaigns
	// Six audiences; user u is in audience a when (u+a)%3 == 0.
	var auds []string
	for a := 0; a < 6; a++ {
		aud, err := am.Create(audience.Audience{AdvertiserID: f.campaign.AdvertiserID, Name: fmt.Sprintf("a%d", a), Type: audience.TypeList})
		if err != nil {
			t.Fatal(err)
		}
		var body strings.Builder
		for u := 0; u < 12; u++ {
			if (u+a)%3 == 0 {
				fmt.Fprintf(&body, "user-%d\n", u)
			}
		}
		if _, err := am.Upload(context.Background(), aud.ID, strings.NewReader(body.String()), audience.UploadOptions{Type: audience.IDUID}); err != nil {
			t.Fatal(err)
		}
		auds = append(auds, aud.ID)
	}
	base := f.campaign
	for i, tg := range []struct{ incl, excl []int }{
		{[]int{0}, nil},
		{[]int{1, 2}, nil},
		{[]int{2, 0}, []int{1}},
		{[]int{3, 4, 5}, []int{0, 2}},
		{[]int{5}, []int{5}},
		{[]int{4}, []int{3}},
	} {
		c := base
		c.ID, c.Name = "", fmt.Sprintf("c%d", i)
		c.Targeting.Audiences, c.Targeting.ExcludeAudiences = nil, nil
		for _, a := range tg.incl {
			c.Targeting.Audiences = append(c.Targeting.Audiences, auds[a])
		}
		for _, a := range tg.excl {
			c.Targeting.ExcludeAudiences = append(c.Targeting.ExcludeAudiences, auds[a])
		}
		if _, err := cs.Create(c); err != nil {
			t.Fatal(err)
		}
	}
	pz := am.Pseudonymizer()
	users := make([]audience.Pseudonym, 14) // 12 and 13 are in no audience
	for u := range users {
		users[u] = pz.Of(audience.IDUID, fmt.Sprintf("user-%d", u))
	}
	asnap, csnap := am.Snapshot(), cs.Snapshot()
	plan := f.srv.plan(asnap, csnap)
	if again := f.srv.plan(asnap, csnap); again != plan {
		t.Fatal("plan rebuilt with nothing changed")
	}
	checked := 0
	for a := range users {
		for b := range users {
			for _, ids := range [][]audience.Pseudonym{{users[a]}, {users[a], users[b]}, {users[b], users[a], users[13]}} {
				hits := make([]uint32, plan.probe.Len())
				plan.probe.Test(ids, hits)
				for i, c := range csnap.Campaigns {
					wantUser, want := matchAudiences(asnap, c, ids)
					gotUser, got := plan.match(i, ids, hits)
					if got != want || gotUser != wantUser {
						t.Fatalf("campaign %s, users %d %d (%d ids): plan %v, matchAudiences %v (or another user)", c.Name, a, b, len(ids), got, want)
					}
					if got {
						checked++
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no campaign matched any user: the test checks nothing")
	}

	// A campaign edit and a new audience each give a new plan.
	c := csnap.Campaigns[0]
	upd := *c
	upd.Targeting.Audiences = []string{auds[3]}
	upd.UpdatedAt = time.Time{}
	if _, err := cs.Update(upd); err != nil {
		t.Fatal(err)
	}
	p2 := f.srv.plan(asnap, cs.Snapshot())
	if p2 == plan {
		t.Fatal("plan kept after a campaign changed")
	}
	if _, err := am.Create(audience.Audience{AdvertiserID: f.campaign.AdvertiserID, Name: "late", Type: audience.TypeList}); err != nil {
		t.Fatal(err)
	}
	if p3 := f.srv.plan(am.Snapshot(), cs.Snapshot()); p3 == p2 {
		t.Fatal("plan kept after an audience came")
	}
}
