package bidder

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/pacing"
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
					gotUser, k, got := plan.match(i, ids, hits)
					if got != want || gotUser != wantUser || got && ids[k] != gotUser {
						t.Fatalf("campaign %s, users %d %d (%d ids): plan %v, matchAudiences %v (or another user)", c.Name, a, b, len(ids), got, want)
					}
					if got {
						if pk, mk := plan.kind(i, k, hits, f.srv.audienceKind), f.srv.matchedKind(asnap, c, gotUser); pk != mk {
							t.Fatalf("campaign %s: kind from hits %v, matchedKind %v", c.Name, pk, mk)
						}
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

// TestPlanKind: the audience kind from the probe's hits is matchedKind's
// rule: retargeting unless every audience of the campaign holding the user
// is a lookalike one; only the matched id's bit counts.
func TestPlanKind(t *testing.T) {
	kinds := map[string]pacing.AudienceKind{"list": pacing.AudienceRetargeting, "rule": pacing.AudienceRetargeting,
		"look1": pacing.AudienceLookalike, "look2": pacing.AudienceLookalike}
	p := &matchPlan{auds: []string{"list", "look1", "look2", "rule"}, incl: [][]int32{{0, 1}, {1, 2}, {2, 3, 1}}}
	kindOf := func(id string) pacing.AudienceKind { return kinds[id] }
	cases := []struct {
		campaign, id int
		hits         []uint32 // by probe index: bit k for ids[k]
		want         pacing.AudienceKind
	}{
		{0, 0, []uint32{1, 1, 0, 0}, pacing.AudienceRetargeting}, // in the list too
		{0, 0, []uint32{0, 1, 0, 0}, pacing.AudienceLookalike},   // only the lookalike
		{0, 1, []uint32{1, 2, 0, 0}, pacing.AudienceLookalike},   // the list holds id 0, not the matched id 1
		{1, 0, []uint32{0, 1, 1, 0}, pacing.AudienceLookalike},   // two lookalikes
		{2, 0, []uint32{0, 1, 0, 1}, pacing.AudienceRetargeting}, // a rule audience and a lookalike
		{2, 1, []uint32{0, 0, 2, 1}, pacing.AudienceLookalike},
	}
	for _, c := range cases {
		if got := p.kind(c.campaign, c.id, c.hits, kindOf); got != c.want {
			t.Errorf("campaign %d id %d hits %v: %v, want %v", c.campaign, c.id, c.hits, got, c.want)
		}
	}
}
