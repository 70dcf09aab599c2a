package audience

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/store"
)

func TestExactSet(t *testing.T) {
	s := newExactSet()
	pz, _ := NewPseudonymizer(eventsSecret)
	ps := make([]Pseudonym, 5000)
	for i := range ps {
		ps[i] = pz.Of(IDUID, fmt.Sprint("u-", i))
	}
	for i, p := range ps {
		if !s.insert(p) {
			t.Fatalf("insert %d: not new", i)
		}
		if s.insert(p) {
			t.Fatalf("insert %d twice: new", i)
		}
	}
	if s.Len() != int64(len(ps)) {
		t.Fatalf("len %d", s.Len())
	}
	for i, p := range ps {
		if i%2 == 0 && !s.remove(p) {
			t.Fatalf("remove %d: absent", i)
		}
	}
	for i, p := range ps {
		if s.has(p) != (i%2 == 1) {
			t.Fatalf("has(%d) = %v", i, s.has(p))
		}
	}
	if s.remove(ps[0]) || s.Len() != int64(len(ps)/2) {
		t.Fatalf("remove twice / len %d", s.Len())
	}
	// Revive tombstones, churn through rehashes.
	for round := 0; round < 5; round++ {
		for _, p := range ps {
			s.insert(p)
		}
		for _, p := range ps {
			s.remove(p)
		}
	}
	if s.Len() != 0 || s.has(ps[7]) {
		t.Fatalf("after churn: len %d", s.Len())
	}
	n := 0
	s.each(func(Pseudonym) { n++ })
	if n != 0 {
		t.Fatalf("each saw %d", n)
	}
}

// TestExactSetConcurrent runs lock-free readers against a writer (under the
// race detector in `make test`): a reader never sees a member that was never
// inserted, and always sees the stable ones.
func TestExactSetConcurrent(t *testing.T) {
	s := newExactSet()
	pz, _ := NewPseudonymizer(eventsSecret)
	stable := pz.Of(IDUID, "stable")
	never := pz.Of(IDUID, "never")
	s.insert(stable)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !s.has(stable) || s.has(never) {
					t.Error("reader saw a wrong answer")
					return
				}
			}
		}()
	}
	for i := 0; i < 20000; i++ {
		p := pz.Of(IDUID, fmt.Sprint("churn-", i%3000))
		if i%3 == 0 {
			s.remove(p)
		} else {
			s.insert(p)
		}
	}
	close(stop)
	wg.Wait()
}

const abandonerRule = `{"all":[{"event":"add_to_cart","within_days":7},{"not":{"event":"purchase","within_days":7}}]}`

type eventsHarness struct {
	t   *testing.T
	m   *Manager
	clk *testClock
}

func (h *eventsHarness) rec(adv, typ, uid string, products ...string) {
	h.t.Helper()
	e, err := h.m.Resolve(EventInput{AdvertiserID: adv, Event: typ, UID: uid, Products: products, Value: 10}, h.clk.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.m.RecordEvent(e); err != nil {
		h.t.Fatal(err)
	}
}

func (h *eventsHarness) in(aud, uid string) bool {
	return h.m.Snapshot().Contains(aud, h.m.Pseudonymizer().Of(IDUID, uid))
}

func (h *eventsHarness) create(adv, rule string) Audience {
	h.t.Helper()
	a, err := h.m.Create(Audience{AdvertiserID: adv, Name: "rule", Type: TypeRule, Rule: []byte(rule)})
	if err != nil {
		h.t.Fatal(err)
	}
	h.m.WaitRules()
	return a
}

func (h *eventsHarness) size(id string) int64 {
	h.t.Helper()
	a, err := h.m.Get(id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a.Size
}

func TestCartAbandonerLifecycle(t *testing.T) {
	clk := newClock()
	h := &eventsHarness{t: t, clk: clk, m: newEventsManager(t, openTestDB(t, t.TempDir()), clk, EventOptions{})}
	aud := h.create("adv_1", abandonerRule)
	if a, _ := h.m.Get(aud.ID); a.Status != StatusReady || a.Size != 0 {
		t.Fatalf("new rule audience %+v", a)
	}
	pz := h.m.Pseudonymizer()

	h.rec("adv_1", EventProductView, "u-1", "sku-1")
	h.rec("adv_1", EventProductView, "u-1", "sku-2")
	if h.in(aud.ID, "u-1") || h.m.Snapshot().Known(pz.Of(IDUID, "u-1")) {
		t.Fatal("a viewer is a cart abandoner")
	}
	h.rec("adv_1", EventAddToCart, "u-1", "sku-2")
	if !h.in(aud.ID, "u-1") || !h.m.Snapshot().Known(pz.Of(IDUID, "u-1")) || h.size(aud.ID) != 1 {
		t.Fatal("carting did not make a member")
	}
	// Another advertiser's cart does not count.
	h.rec("adv_2", EventAddToCart, "u-2", "sku-2")
	if h.in(aud.ID, "u-2") {
		t.Fatal("adv_2's cart made a member of adv_1's audience")
	}
	if ok, err := h.m.Contains(aud.ID, IDUID, "u-1", ""); !ok || err != nil {
		t.Fatalf("Contains(u-1) = %v, %v", ok, err)
	}

	// A purchase takes them out at once.
	clk.Add(time.Hour)
	h.rec("adv_1", EventPurchase, "u-1", "sku-2")
	if h.in(aud.ID, "u-1") || h.m.Snapshot().Known(pz.Of(IDUID, "u-1")) || h.size(aud.ID) != 0 {
		t.Fatal("buyer still a cart abandoner")
	}

	// A new cart while the purchase is recent: not a member; once the
	// purchase is 7 days old the sweep lets them in (the cart still counts).
	clk.Add(24 * time.Hour)
	h.rec("adv_1", EventAddToCart, "u-1", "sku-3")
	if h.in(aud.ID, "u-1") {
		t.Fatal("member while the purchase is recent")
	}
	clk.Add(6*24*time.Hour - time.Second)
	if st, _ := h.m.SweepRules(clk.Now()); st.Evaluated != 0 || h.in(aud.ID, "u-1") {
		t.Fatalf("early sweep: %+v", st)
	}
	clk.Add(time.Second)
	if st, _ := h.m.SweepRules(clk.Now()); st.Evaluated != 1 || !h.in(aud.ID, "u-1") {
		t.Fatalf("sweep at the purchase's window edge: %+v, member %v", st, h.in(aud.ID, "u-1"))
	}

	// The cart's own window passes: they leave.
	clk.Add(6*24*time.Hour + time.Second)
	if _, err := h.m.SweepRules(clk.Now()); err != nil {
		t.Fatal(err)
	}
	if h.in(aud.ID, "u-1") || h.size(aud.ID) != 0 {
		t.Fatal("cart abandoner kept after 7 days")
	}
	if st, _ := h.m.SweepRules(clk.Now().Add(365 * 24 * time.Hour)); st.Evaluated != 0 || st.Pending != 0 {
		t.Fatalf("nothing left to sweep, got %+v", st)
	}
}

func TestRuleAudienceValidation(t *testing.T) {
	clk := newClock()
	m := newEventsManager(t, openTestDB(t, t.TempDir()), clk, EventOptions{})
	for _, tc := range []struct {
		a     Audience
		field string
	}{
		{Audience{AdvertiserID: "adv_1", Name: "x", Type: TypeRule}, "rule"},
		{Audience{AdvertiserID: "adv_1", Name: "x", Type: TypeRule, Rule: []byte(`{"all":[{"event":"a","within_days":999}]}`)}, "rule.all[0].within_days"},
		{Audience{AdvertiserID: "adv_1", Name: "x", Type: TypeRule, Rule: []byte(`{"event":"a"}`), TTLDays: 3}, "ttl_days"},
	} {
		_, err := m.Create(tc.a)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Create(%s): err %v, want field %s", tc.a.Rule, err, tc.field)
		}
	}
	if n := len(m.List("")); n != 0 {
		t.Errorf("%d audiences stored after invalid creates", n)
	}
}

// TestRuleBackfillAndEstimate: a new rule over existing history fills from
// the stored profiles, and its estimate matched what it filled.
func TestRuleBackfillAndEstimate(t *testing.T) {
	clk := newClock()
	h := &eventsHarness{t: t, clk: clk, m: newEventsManager(t, openTestDB(t, t.TempDir()), clk, EventOptions{
		CategoryOf: func(adv, p string) string {
			if p == "sku-1" || p == "sku-2" {
				return "shoes"
			}
			return "hats"
		},
	})}
	want := map[string]bool{}
	for i := 0; i < 60; i++ {
		uid := fmt.Sprint("u-", i)
		views := i % 5 // 0…4 shoe views
		for j := 0; j < views; j++ {
			h.rec("adv_1", EventProductView, uid, "sku-1")
		}
		h.rec("adv_1", EventProductView, uid, "sku-3") // hats never count
		want[uid] = views >= 3
	}
	h.rec("adv_2", EventProductView, "other", "sku-1")
	const rule = `{"event":"product_view","category":"shoes","min_count":3,"within_days":14}`
	est, err := h.m.Estimate(context.Background(), "adv_1", []byte(rule))
	if err != nil {
		t.Fatal(err)
	}
	aud := h.create("adv_1", rule)
	a, _ := h.m.Get(aud.ID)
	if a.Status != StatusReady || a.Size != 24 || est != 24 {
		t.Fatalf("status %s, size %d, estimate %d; want ready, 24, 24", a.Status, a.Size, est)
	}
	for uid, w := range want {
		if h.in(aud.ID, uid) != w {
			t.Errorf("%s: member %v, want %v", uid, !w, w)
		}
	}
	if _, err := h.m.Estimate(context.Background(), "adv_1", []byte(`{"event":"x","within_days":0}`)); err == nil {
		t.Error("estimate of an invalid rule succeeded")
	}
	// Two weeks on, the views have left the window.
	clk.Add(14 * 24 * time.Hour)
	if _, err := h.m.SweepRules(clk.Now()); err != nil {
		t.Fatal(err)
	}
	if n := h.size(aud.ID); n != 0 {
		t.Fatalf("size %d after the window passed", n)
	}
	if est, _ := h.m.Estimate(context.Background(), "adv_1", []byte(rule)); est != 0 {
		t.Fatalf("estimate %d after the window passed", est)
	}
}

// TestRuleRestart: memberships are rebuilt from profiles at start, and the
// rebuilt schedule still lapses them.
func TestRuleRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := newEventsManager(t, db, clk, EventOptions{})
	h := &eventsHarness{t: t, clk: clk, m: m}
	aud := h.create("adv_1", abandonerRule)
	h.rec("adv_1", EventAddToCart, "u-1", "sku-1")
	h.rec("adv_1", EventAddToCart, "u-2", "sku-1")
	h.rec("adv_1", EventPurchase, "u-2", "sku-1")
	m.CloseRules()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	db, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h.m = newEventsManager(t, db, clk, EventOptions{})
	if !h.in(aud.ID, "u-1") || h.in(aud.ID, "u-2") || h.size(aud.ID) != 1 {
		t.Fatal("memberships not rebuilt at start")
	}
	if a, _ := h.m.Get(aud.ID); a.Status != StatusReady {
		t.Fatalf("status %s", a.Status)
	}
	clk.Add(7 * 24 * time.Hour)
	if _, err := h.m.SweepRules(clk.Now()); err != nil {
		t.Fatal(err)
	}
	if h.in(aud.ID, "u-1") {
		t.Fatal("restarted schedule did not lapse the member")
	}
}

func TestRuleRFMAndDelete(t *testing.T) {
	clk := newClock()
	h := &eventsHarness{t: t, clk: clk, m: newEventsManager(t, openTestDB(t, t.TempDir()), clk, EventOptions{})}
	loyal := h.create("adv_1", `{"rfm":{"recency_days_max":30,"frequency_min":2,"monetary_min":15}}`)
	h.rec("adv_1", EventPurchase, "u-1", "sku-1") // value 10 each
	if h.in(loyal.ID, "u-1") {
		t.Fatal("one purchase of 10 is loyal")
	}
	h.rec("adv_1", EventPurchase, "u-1", "sku-2")
	if !h.in(loyal.ID, "u-1") {
		t.Fatal("two purchases, 20 in total, 0 days ago: not loyal")
	}
	clk.Add(30 * 24 * time.Hour)
	h.m.SweepRules(clk.Now())
	if h.in(loyal.ID, "u-1") {
		t.Fatal("still recent after 30 days")
	}
	h.rec("adv_1", EventPurchase, "u-1", "sku-3")
	if !h.in(loyal.ID, "u-1") {
		t.Fatal("a new purchase did not bring them back")
	}
	// A rule audience can seed a lookalike: its members are listed.
	var seed []Pseudonym
	if n, err := h.m.ForEachMember(loyal.ID, func(ps []Pseudonym) { seed = append(seed, ps...) }); err != nil || n != 1 ||
		len(seed) != 1 || seed[0] != h.m.Pseudonymizer().Of(IDUID, "u-1") {
		t.Fatalf("ForEachMember of a rule audience: %d %v %v", n, seed, err)
	}
	if err := h.m.Delete(loyal.ID); err != nil {
		t.Fatal(err)
	}
	if h.in(loyal.ID, "u-1") || h.m.Snapshot().Known(h.m.Pseudonymizer().Of(IDUID, "u-1")) {
		t.Fatal("member of a deleted audience")
	}
	h.rec("adv_1", EventPurchase, "u-1", "sku-4") // no rules left: nothing to do
}

// TestRuleBackfillConcurrentEvents creates a rule while events stream in;
// afterwards every user's membership equals a fresh evaluation of their
// stored profile.
func TestRuleBackfillConcurrentEvents(t *testing.T) {
	clk := newClock()
	h := &eventsHarness{t: t, clk: clk, m: newEventsManager(t, openTestDB(t, t.TempDir()), clk, EventOptions{})}
	types := []string{EventProductView, EventAddToCart, EventPurchase}
	for i := 0; i < 300; i++ {
		h.rec("adv_1", types[i%3], fmt.Sprint("u-", i%100), "sku-1")
	}
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < 400; i++ {
				e, _ := h.m.Resolve(EventInput{AdvertiserID: "adv_1", Event: types[r.IntN(3)], UID: fmt.Sprint("u-", r.IntN(100))}, clk.Now())
				if err := h.m.RecordEvent(e); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	aud := h.create("adv_1", abandonerRule)
	wg.Wait()
	r, _ := ParseRule([]byte(abandonerRule))
	for i := 0; i < 100; i++ {
		uid := fmt.Sprint("u-", i)
		raw, err := store.Get(h.m.db, profileKey("adv_1", h.m.Pseudonymizer().Of(IDUID, uid)))
		if err != nil {
			t.Fatal(err)
		}
		var v profView
		if err := v.decode(raw); err != nil {
			t.Fatal(err)
		}
		want, _ := r.eval(&evalCtx{now: clk.Now().Unix(), adv: "adv_1"}, &v)
		if got := h.in(aud.ID, uid); got != want {
			t.Errorf("%s: member %v, profile says %v", uid, got, want)
		}
	}
}

func TestRefreshRulesAfterFeedChange(t *testing.T) {
	clk := newClock()
	var mu sync.Mutex
	cat := "hats"
	h := &eventsHarness{t: t, clk: clk, m: newEventsManager(t, openTestDB(t, t.TempDir()), clk, EventOptions{
		CategoryOf: func(_, _ string) string { mu.Lock(); defer mu.Unlock(); return cat },
	})}
	aud := h.create("adv_1", `{"event":"product_view","category":"shoes"}`)
	h.rec("adv_1", EventProductView, "u-1", "sku-1")
	if h.in(aud.ID, "u-1") {
		t.Fatal("hat viewer in shoes")
	}
	mu.Lock()
	cat = "shoes"
	mu.Unlock()
	if err := h.m.RefreshRules("adv_1"); err != nil {
		t.Fatal(err)
	}
	if !h.in(aud.ID, "u-1") {
		t.Fatal("refresh after the feed change did not re-evaluate")
	}
}
