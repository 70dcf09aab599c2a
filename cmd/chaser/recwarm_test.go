package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/creative"
)

// recFeedCSV lists sku-a first and sku-b last, so a fallback in feed order
// (no recommender state) never puts sku-b second.
const recFeedCSV = `id,title,price,currency,image_url,landing_url,category,brand,in_stock
sku-a,A,10,USD,https://cdn.example/a.jpg,https://shop.example/a,shoes,Acme,true
sku-c,C,10,USD,https://cdn.example/c.jpg,https://shop.example/c,shoes,Acme,true
sku-d,D,10,USD,https://cdn.example/d.jpg,https://shop.example/d,shoes,Acme,true
sku-e,E,10,USD,https://cdn.example/e.jpg,https://shop.example/e,shoes,Acme,true
sku-b,B,10,USD,https://cdn.example/b.jpg,https://shop.example/b,shoes,Acme,true
`

// recommendFor is what the bid path shows a stored user: Choose over the
// user's profile history.
func recommendFor(t *testing.T, a *app, adv string, user audience.Pseudonym, n int) []string {
	t.Helper()
	p, err := a.audiences.Profile(adv, user)
	if err != nil {
		t.Fatal(err)
	}
	var hist []creative.HistoryItem
	for _, e := range p.Events {
		if k, ok := historyKinds[e.Type]; ok {
			for _, id := range e.Products {
				hist = append(hist, creative.HistoryItem{Product: id, Kind: k, Unix: e.Unix})
			}
		}
	}
	var ids []string
	for _, pr := range a.recs.Choose(nil, a.catalog.Feed(adv), hist, n, time.Now().Unix()) {
		ids = append(ids, pr.ID)
	}
	return ids
}

// TestRecommendationsSurviveRestart: users co-viewed sku-a and sku-b; after
// a restart (openApp on the same data dir, as serve does), a user who viewed
// sku-a is still shown sku-b, and a user who viewed only sku-d the
// best-seller sku-c — not the feed-order fallback of an empty recommender.
// Once the co-viewers are erased, the next restart no longer learns from
// them: erasure deleted their profiles, so they are not replayed.
func TestRecommendationsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	adv := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Acme"}`, 201)["id"].(string)
	s.admin("PUT", "/v1/advertisers/"+adv+"/products", "text/csv", recFeedCSV, 200)
	pz := s.app.audiences.Pseudonymizer()
	t0 := time.Now().Add(-2 * time.Hour)
	view := func(a *app, uid string, at time.Duration, product string) audience.Pseudonym {
		t.Helper()
		u := pz.Of(audience.IDUID, uid)
		if err := a.audiences.RecordEvent(audience.Event{AdvertiserID: adv, Type: audience.EventProductView, User: u,
			Products: []string{product}, Time: t0.Add(at)}); err != nil {
			t.Fatal(err)
		}
		return u
	}
	for i := range 6 {
		view(s.app, fmt.Sprintf("co-%d", i), time.Duration(i)*time.Minute, "sku-a")
		view(s.app, fmt.Sprintf("co-%d", i), time.Duration(i)*time.Minute+30*time.Second, "sku-b")
	}
	for i := range 15 { // sku-c: the best-seller, never seen with sku-a
		view(s.app, fmt.Sprintf("c-%d", i), time.Duration(i)*time.Minute, "sku-c")
	}
	x := view(s.app, "x", time.Hour, "sku-a")
	y := view(s.app, "y", time.Hour, "sku-d")

	want := func(a *app, user audience.Pseudonym, ids ...string) {
		t.Helper()
		if got := recommendFor(t, a, adv, user, len(ids)); !slices.Equal(got, ids) {
			t.Errorf("recommended %v, want %v", got, ids)
		}
	}
	s.app.recs.RebuildAll() // live: the maintenance ticker does this each minute
	want(s.app, x, "sku-a", "sku-b")
	want(s.app, y, "sku-d", "sku-c")

	s.stop()
	s = startServer(t, dir)
	want(s.app, x, "sku-a", "sku-b") // an empty recommender would give sku-a, sku-c
	want(s.app, y, "sku-d", "sku-c") // and sku-d, sku-a

	for i := range 6 {
		s.admin("POST", "/v1/privacy/erase", "application/json", fmt.Sprintf(`{"type":"uid","value":"co-%d"}`, i), 200)
	}
	s.stop()
	s = startServer(t, dir)
	want(s.app, x, "sku-a", "sku-c") // nothing left co-viewed sku-a: best-sellers
	s.stop()
}

// TestWarmStartEqualsLive: users' events recorded one user after another in
// key order (pseudonym order) and in time order build, live, exactly the
// recommender that the warm start rebuilds from their stored profiles —
// across views, carts, purchases, multi-product events and page views.
func TestWarmStartEqualsLive(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	adv := newWarmAdvertiser(s, 30, 4)
	pz := s.app.audiences.Pseudonymizer()
	users := sortedPseudonyms(pz, audience.IDUID, "u-%d", 60)
	rng := rand.New(rand.NewPCG(3, 4))
	types := []string{audience.EventProductView, audience.EventProductView, audience.EventAddToCart, audience.EventPurchase, audience.EventPageView}
	events := 0
	for _, u := range users {
		at := time.Now().Add(-20 * 24 * time.Hour).Add(time.Duration(rng.IntN(3600)) * time.Second)
		for range 1 + rng.IntN(25) {
			var ps []string
			for range 1 + rng.IntN(2)*rng.IntN(3) {
				ps = append(ps, fmt.Sprintf("p-%02d", rng.IntN(30)))
			}
			ps = slices.Compact(ps)
			at = at.Add(time.Duration(rng.IntN(4*3600)) * time.Second)
			if err := s.app.audiences.RecordEvent(audience.Event{AdvertiserID: adv, Type: types[rng.IntN(len(types))], User: u,
				Products: ps, Time: at}); err != nil {
				t.Fatal(err)
			}
			events++
		}
	}
	live := recSnapshot(s.app, adv, 30)
	if !strings.HasPrefix(live[0], "items 30") || strings.Contains(live[0], "neighbours 0") {
		t.Fatalf("live recommender learnt too little from %d events: %s", events, live[0])
	}
	s.stop()
	s = startServer(t, dir)
	sameRecs(t, live, recSnapshot(s.app, adv, 30))
	s.stop()
}

// newWarmAdvertiser creates an advertiser whose feed has n products p-00…
// in cats categories, and returns its id.
func newWarmAdvertiser(s *server, n, cats int) string {
	adv := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Acme"}`, 201)["id"].(string)
	var feed strings.Builder
	feed.WriteString("id,title,price,currency,image_url,landing_url,category,brand,in_stock\n")
	for i := range n {
		fmt.Fprintf(&feed, "p-%02d,P%d,10,USD,https://cdn.example/%d.jpg,https://shop.example/%d,cat-%d,Acme,true\n", i, i, i, i, i%cats)
	}
	s.admin("PUT", "/v1/advertisers/"+adv+"/products", "text/csv", feed.String(), 200)
	return adv
}

// recSnapshot publishes adv's recommender and describes it: its counts,
// then what it recommends after a view of each of the n products.
func recSnapshot(a *app, adv string, n int) []string {
	a.recs.RebuildAll()
	r := a.recs.For(adv)
	st := r.Stats()
	out := []string{fmt.Sprintf("items %d categories %d pairs %d neighbours %d", st.Items, st.Categories, st.Pairs, st.Neighbours)}
	now := time.Now().Unix()
	for i := range n {
		h := []creative.ItemEvent{{Item: fmt.Sprintf("p-%02d", i), Kind: creative.ItemView, TS: now}}
		out = append(out, strings.Join(r.Recommend(nil, h, 12, now, nil), " "))
	}
	return out
}

// sameRecs fails t on each line where the warm-started recommender
// differs from the live one.
func sameRecs(t *testing.T, live, warm []string) {
	t.Helper()
	if len(live) != len(warm) {
		t.Fatalf("live %d lines, warm %d", len(live), len(warm))
	}
	for i := range live {
		if live[i] != warm[i] {
			t.Errorf("line %d: live %q, warm %q", i, live[i], warm[i])
		}
	}
}

// TestWarmStartCountsLinkedEventsOnce: an event keyed by an e-mail is also
// stored, as a linked copy, in the profiles of the cookies linked to that
// e-mail; the warm start replays it once, as live observation counted it.
func TestWarmStartCountsLinkedEventsOnce(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	adv := newWarmAdvertiser(s, 12, 3)
	pz := s.app.audiences.Pseudonymizer()
	// Live events user after user in pseudonym order, the order replay
	// goes in: then live and replayed counters must be identical.
	emails := sortedPseudonyms(pz, audience.IDEmailSHA256, "person-%d@example.com", 8)
	at := time.Now().Add(-10 * 24 * time.Hour)
	copies := 0
	for i, e := range emails {
		links := []audience.LinkedID{
			{ID: pz.Of(audience.IDUID, fmt.Sprintf("cookie-%d-a", i)), Kind: audience.IDUID},
			{ID: pz.Of(audience.IDMAID, fmt.Sprintf("maid-%d-b", i)), Kind: audience.IDMAID},
		}
		// The links are stored with this first event; the events after it
		// fan out to the linked profiles.
		if err := s.app.audiences.RecordEvent(audience.Event{AdvertiserID: adv, Type: audience.EventPageView, User: e,
			UserKind: audience.IDEmailSHA256, Links: links, Time: at}); err != nil {
			t.Fatal(err)
		}
		for j := range 6 {
			at = at.Add(time.Minute)
			typ := audience.EventProductView
			if j == 5 {
				typ = audience.EventPurchase
			}
			if err := s.app.audiences.RecordEvent(audience.Event{AdvertiserID: adv, Type: typ, User: e, UserKind: audience.IDEmailSHA256,
				Products: []string{fmt.Sprintf("p-%02d", (i+j)%12), fmt.Sprintf("p-%02d", (i*5+j)%12)}, Time: at}); err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range links {
			p, err := s.app.audiences.Profile(adv, l.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range p.Events {
				if !ev.Linked {
					t.Fatalf("event in a linked cookie's profile not marked as a copy: %+v", ev)
				}
				copies++
			}
		}
		p, err := s.app.audiences.Profile(adv, e)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range p.Events {
			if ev.Linked {
				t.Fatalf("the e-mail's own event marked as a copy: %+v", ev)
			}
		}
	}
	if copies == 0 {
		t.Fatal("no event reached the linked profiles")
	}
	live := recSnapshot(s.app, adv, 12)
	s.stop()
	s = startServer(t, dir)
	sameRecs(t, live, recSnapshot(s.app, adv, 12))
	s.stop()
}

// sortedPseudonyms returns the pseudonyms of n ids of kind (format with
// 0..n-1) in key order, the order the warm start replays profiles in.
func sortedPseudonyms(pz *audience.Pseudonymizer, kind audience.IDType, format string, n int) []audience.Pseudonym {
	ps := make([]audience.Pseudonym, n)
	for i := range ps {
		ps[i] = pz.Of(kind, fmt.Sprintf(format, i))
	}
	slices.SortFunc(ps, func(a, b audience.Pseudonym) int { return bytes.Compare(a[:], b[:]) })
	return ps
}
