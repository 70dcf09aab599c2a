package creative

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
)

// warmTestEvent is one stored event of a user, as a profile holds it.
type warmTestEvent struct {
	kind     uint8
	unix     int64
	products []string
}

type warmTestUser struct {
	adv    string
	events []warmTestEvent // oldest first
}

// warmTestUsers draws users at two advertisers with long histories (beyond
// CoWindow), multi-product events, events of one second, and kinds the
// recommender ignores.
func warmTestUsers(seed uint64, n int) []warmTestUser {
	rng := rand.New(rand.NewPCG(seed, 2))
	var out []warmTestUser
	for u := range n {
		adv := "adv-1"
		if u%3 == 0 {
			adv = "adv-2"
		}
		ts := recT0 - 10*recDay + int64(rng.IntN(1000))
		var evs []warmTestEvent
		for range 1 + rng.IntN(40) {
			kind := []uint8{KindView, KindView, KindView, KindCart, KindPurchase, 0, 7}[rng.IntN(7)]
			var ps []string
			for range 1 + rng.IntN(3)*rng.IntN(2) {
				ps = append(ps, fmt.Sprintf("sku-%d", rng.IntN(60)))
			}
			if rng.IntN(20) == 0 {
				ps = nil // a page view: no product
			}
			if rng.IntN(4) != 0 {
				ts += int64(rng.IntN(3000))
			}
			evs = append(evs, warmTestEvent{kind, ts, ps})
		}
		out = append(out, warmTestUser{adv, evs})
	}
	return out
}

func warmTestCategory(adv, product string) string { return adv + "/" + product[len(product)-1:] }

// observeLive feeds users to rs as cmd/chaser's observeEvent does: each
// product of each event with the user's history before that event.
func observeLive(rs *Recommenders, users []warmTestUser) {
	for _, u := range users {
		var hist []HistoryItem
		for _, e := range u.events {
			if _, ok := itemKind(e.kind); !ok {
				continue // not a product event: neither observed nor history
			}
			for _, p := range e.products {
				rs.Observe(u.adv, hist, HistoryItem{Product: p, Kind: e.kind, Unix: e.unix}, warmTestCategory(u.adv, p))
			}
			for _, p := range e.products {
				hist = append(hist, HistoryItem{Product: p, Kind: e.kind, Unix: e.unix})
			}
		}
	}
}

func warm(rs *Recommenders, users []warmTestUser) *Warmer {
	w := rs.NewWarmer(warmTestCategory)
	for _, u := range users {
		w.User(u.adv)
		for _, e := range u.events {
			w.Event(e.kind, e.unix, e.products)
		}
	}
	return w
}

// recState is what a Recommender learnt: counters and published snapshot.
type recState struct {
	Index map[string]uint32
	Names []string
	Cat   []uint32
	Occ   []float64
	Pop   [][3]float64
	Pairs [][]recPair
	Cats  map[string]uint32
	Snap  *recSnapshot
}

func stateOf(r *Recommender) recState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recState{r.index, r.names, r.cat, r.occ, r.pop, r.pairs, r.cats, r.snap.Load()}
}

// TestWarmerMatchesLiveObserve: replaying stored histories builds exactly
// the counters, neighbour lists and best-sellers live observation of the
// same events in the same order built — also when CoWindow truncates the
// history and the per-item cap prunes counters.
func TestWarmerMatchesLiveObserve(t *testing.T) {
	for _, opts := range []RecommenderOptions{{}, {MaxPairsPerItem: 8, Neighbours: 5, CoWindow: 6}} {
		t.Run(fmt.Sprintf("cap=%d", opts.MaxPairsPerItem), func(t *testing.T) {
			users := warmTestUsers(7, 400)
			live, warmed := NewRecommenders(opts), NewRecommenders(opts)
			observeLive(live, users)
			live.RebuildAll()

			// Bid-path readers run meanwhile (for the race detector).
			var wg sync.WaitGroup
			stop := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := []ItemEvent{{Item: "sku-1", Kind: ItemView, TS: recT0}}
				for {
					select {
					case <-stop:
						return
					default:
						warmed.For("adv-1").Recommend(nil, h, 5, recT0, nil)
					}
				}
			}()
			w := warm(warmed, users)
			close(stop)
			wg.Wait()
			warmed.RebuildAll()

			nu, ne := w.Stats()
			if nu != len(users) || ne == 0 {
				t.Fatalf("stats: %d users, %d events", nu, ne)
			}
			for _, adv := range []string{"adv-1", "adv-2"} {
				a, b := stateOf(live.For(adv)), stateOf(warmed.For(adv))
				if len(a.Names) < 50 || a.Snap.nbrOff[len(a.Names)] == 0 {
					t.Fatalf("%s: too little learnt for a meaningful test: %d items", adv, len(a.Names))
				}
				if !reflect.DeepEqual(a, b) {
					t.Errorf("%s: warmed state differs from live state", adv)
				}
				h := []ItemEvent{{Item: "sku-3", Kind: ItemView, TS: recT0}}
				ra := live.For(adv).Recommend(nil, h, 8, recT0, nil)
				rb := warmed.For(adv).Recommend(nil, h, 8, recT0, nil)
				if !reflect.DeepEqual(ra, rb) || len(ra) != 8 {
					t.Errorf("%s: recommend live %v, warmed %v", adv, ra, rb)
				}
			}
		})
	}
}

// TestWarmerEdges: events before any User, unknown kinds and empty product
// ids are ignored; a user's history does not leak into the next user's.
func TestWarmerEdges(t *testing.T) {
	rs := NewRecommenders(RecommenderOptions{})
	w := rs.NewWarmer(nil)
	w.Event(KindView, recT0, []string{"x"}) // no user yet
	if len(*rs.m.Load()) != 0 {
		t.Fatal("an event before User created a recommender")
	}
	w.User("adv")
	w.Event(KindView, recT0, []string{"a"})
	w.Event(9, recT0+1, []string{"z"})
	w.Event(KindView, recT0+2, []string{"", "b"})
	w.User("adv")
	w.Event(KindView, recT0+3, []string{"c"})
	rs.RebuildAll()
	r := rs.For("adv")
	if st := r.Stats(); st.Items != 3 || st.Pairs != 2 { // a, b, c; only a–b co-occur
		t.Fatalf("stats %+v, want 3 items and the pair a–b", st)
	}
	if got := r.Recommend(nil, []ItemEvent{{Item: "a", Kind: ItemView, TS: recT0}}, 2, recT0, nil); len(got) != 2 || got[1] != "b" {
		t.Fatalf("recommend after a = %v, want b second", got)
	}
	if u, e := w.Stats(); u != 2 || e != 3 {
		t.Fatalf("stats %d users %d events, want 2 and 3", u, e)
	}
}
