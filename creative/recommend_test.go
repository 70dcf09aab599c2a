package creative

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const recDay = int64(24 * 60 * 60)

// recT0 is an arbitrary "now" for the tests, in unix seconds.
const recT0 = int64(1_800_000_000)

// recEvs is shorthand for events: "v:A" views A, "c:A" carts A, "p:A" buys A,
// each a minute after the previous one, ending at t0.
func recEvs(spec ...string) []ItemEvent {
	out := make([]ItemEvent, len(spec))
	for i, s := range spec {
		kind, item, ok := strings.Cut(s, ":")
		if !ok {
			panic("bad event " + s)
		}
		k := map[string]ItemEventKind{"v": ItemView, "c": ItemCart, "p": ItemPurchase}[kind]
		out[i] = ItemEvent{Item: item, Kind: k, TS: recT0 - int64(len(spec)-1-i)*60}
	}
	return out
}

// recTrain observes every user's events in order, each in the context of that
// user's earlier events, and rebuilds.
func recTrain(r *Recommender, users ...[]ItemEvent) *Recommender {
	for _, u := range users {
		for i := range u {
			r.Observe(u[:i], u[i], "")
		}
	}
	r.Rebuild()
	return r
}

// recRepeat returns n copies of u.
func recRepeat(n int, u []ItemEvent) [][]ItemEvent {
	out := make([][]ItemEvent, n)
	for i := range out {
		out[i] = u
	}
	return out
}

// recShop is a small model: A is co-viewed with B (often) and C (less); D is
// the best-seller; E and F are in category "shoes", G in "bags".
func recShop(t testing.TB, o RecommenderOptions) *Recommender {
	t.Helper()
	r := NewRecommender(o)
	var users [][]ItemEvent
	users = append(users, recRepeat(6, recEvs("v:A", "v:B"))...)
	users = append(users, recRepeat(3, recEvs("v:A", "v:C"))...)
	users = append(users, recRepeat(20, recEvs("v:D", "p:D"))...)
	users = append(users, recRepeat(5, recEvs("v:E", "c:E"))...)
	users = append(users, recRepeat(2, recEvs("v:F"))...)
	users = append(users, recRepeat(4, recEvs("v:G", "c:G"))...)
	users = append(users, recRepeat(4, recEvs("v:H", "v:I"))...)
	for _, it := range []string{"E", "F", "X"} {
		r.SetCategory(it, "shoes")
	}
	r.SetCategory("G", "bags")
	return recTrain(r, users...)
}

func TestRecommend(t *testing.T) {
	outOfStock := func(items ...string) func(string) bool {
		return func(it string) bool { return !slices.Contains(items, it) }
	}
	tests := []struct {
		name     string
		opts     RecommenderOptions
		history  []ItemEvent
		n        int
		eligible func(string) bool
		want     []string
	}{
		{"viewed item first, then its co-views by strength, then best-sellers",
			RecommenderOptions{}, recEvs("v:A"), 4, nil, []string{"A", "B", "C", "D"}},
		{"n limits the answer",
			RecommenderOptions{}, recEvs("v:A"), 2, nil, []string{"A", "B"}},
		{"bought item excluded, its neighbours kept",
			RecommenderOptions{}, recEvs("v:A", "p:B"), 3, nil, []string{"A", "C", "D"}},
		{"bought item excluded wherever it would come from",
			RecommenderOptions{}, recEvs("p:D", "v:A"), 4, nil, []string{"A", "B", "C", "E"}},
		{"bought item included on request",
			RecommenderOptions{IncludePurchased: true}, recEvs("v:A", "p:B"), 2, nil, []string{"B", "A"}},
		{"out of stock excluded",
			RecommenderOptions{}, recEvs("v:A"), 3, outOfStock("A", "B"), []string{"C", "D", "E"}},
		{"cold user gets global best-sellers",
			RecommenderOptions{}, nil, 3, nil, []string{"D", "E", "G"}},
		{"cold user, best-sellers out of stock skipped",
			RecommenderOptions{}, nil, 2, outOfStock("D"), []string{"E", "G"}},
		{"no neighbours: category best-sellers before global ones",
			RecommenderOptions{}, recEvs("v:X"), 4, nil, []string{"X", "E", "F", "D"}},
		{"category of the user's items, heaviest first",
			RecommenderOptions{}, recEvs("v:F", "v:G"), 5, nil, []string{"G", "F", "E", "D", "A"}},
		{"newer item ranks above older",
			RecommenderOptions{}, recEvs("v:H", "v:A"), 2, nil, []string{"A", "H"}},
		{"cart outweighs a newer view",
			RecommenderOptions{}, recEvs("c:H", "v:A"), 2, nil, []string{"H", "A"}},
		{"unknown item of the user is still shown",
			RecommenderOptions{}, recEvs("v:NEW"), 2, nil, []string{"NEW", "D"}},
		{"unknown purchased item is not",
			RecommenderOptions{}, recEvs("v:NEW", "p:NEW"), 1, nil, []string{"D"}},
		{"history window limits the seeds",
			RecommenderOptions{HistoryWindow: 1, SelfWeight: 0.1}, recEvs("v:A", "v:H"), 3, nil, []string{"I", "H", "D"}},
		{"nothing eligible",
			RecommenderOptions{}, recEvs("v:A"), 3, func(string) bool { return false }, nil},
		{"n = 0",
			RecommenderOptions{}, recEvs("v:A"), 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := recShop(t, tt.opts)
			got := r.Recommend(nil, tt.history, tt.n, recT0, tt.eligible)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Recommend = %q, want %q", got, tt.want)
			}
			// dst is appended to, not overwritten.
			got = r.Recommend([]string{"keep"}, tt.history, tt.n, recT0, tt.eligible)
			if got[0] != "keep" || !slices.Equal(got[1:], tt.want) {
				t.Errorf("Recommend with dst = %q", got)
			}
		})
	}
}

func TestRecommendEligibleCalledOncePerCandidate(t *testing.T) {
	r := recShop(t, RecommenderOptions{})
	seen := map[string]int{}
	// E is the user's own item and a best-seller, D only a best-seller:
	// neither is asked about again in the fill-up once rejected.
	r.Recommend(nil, recEvs("v:A", "v:E", "v:F"), 50, recT0, func(it string) bool {
		seen[it]++
		return it != "D" && it != "E"
	})
	for it, n := range seen {
		if n != 1 {
			t.Errorf("eligible(%q) called %d times", it, n)
		}
	}
	if seen["D"] != 1 || seen["E"] != 1 {
		t.Errorf("eligible(D), eligible(E) not called once: %v", seen)
	}
}

func TestRecommendNoDuplicates(t *testing.T) {
	r := recShop(t, RecommenderOptions{})
	got := r.Recommend(nil, recEvs("v:A", "v:E", "v:G", "v:A", "c:E"), 50, recT0, nil)
	if len(got) != 9 {
		t.Errorf("got %d items %q, want all 9 with popularity", len(got), got)
	}
	s := slices.Clone(got)
	slices.Sort(s)
	if len(slices.Compact(s)) != len(got) {
		t.Errorf("duplicates in %q", got)
	}
}

func TestRecommendBeforeRebuild(t *testing.T) {
	r := NewRecommender(RecommenderOptions{})
	if got := r.Recommend(nil, recEvs("v:A"), 3, recT0, nil); !slices.Equal(got, []string{"A"}) {
		t.Errorf("empty model: %q", got)
	}
	r.Observe(nil, ItemEvent{Item: "B", TS: recT0}, "")
	if got := r.Recommend(nil, nil, 3, recT0, nil); len(got) != 0 {
		t.Errorf("observations visible before Rebuild: %q", got)
	}
	r.Rebuild()
	if got := r.Recommend(nil, nil, 3, recT0, nil); !slices.Equal(got, []string{"B"}) {
		t.Errorf("after Rebuild: %q", got)
	}
}

func TestRecommendRecency(t *testing.T) {
	r := recShop(t, RecommenderOptions{PositionDecay: 1})
	// Same position weight; only time decides: A viewed 7 days ago, H now.
	h := []ItemEvent{{Item: "A", TS: recT0 - 7*recDay}, {Item: "H", TS: recT0}}
	if got := r.Recommend(nil, h, 2, recT0, nil); !slices.Equal(got, []string{"H", "A"}) {
		t.Errorf("got %q, want the recent item first", got)
	}
	h[0].TS = recT0 // now a tie, broken by name
	if got := r.Recommend(nil, h, 2, recT0, nil); !slices.Equal(got, []string{"A", "H"}) {
		t.Errorf("got %q, want a tie broken by name", got)
	}
	// Two views of A outweigh one of H at the same time.
	h = []ItemEvent{{Item: "A", TS: recT0}, {Item: "H", TS: recT0}, {Item: "A", TS: recT0}}
	if got := r.Recommend(nil, h, 1, recT0, nil); !slices.Equal(got, []string{"A"}) {
		t.Errorf("got %q, want the repeated item", got)
	}
}

func TestRecommendDeterministic(t *testing.T) {
	// Ties everywhere: every item equally popular and co-viewed.
	build := func(order []int) *Recommender {
		r := NewRecommender(RecommenderOptions{})
		for _, i := range order {
			a, b := fmt.Sprintf("i%02d", i), fmt.Sprintf("i%02d", (i+1)%20)
			u := []ItemEvent{{Item: a, TS: recT0}, {Item: b, TS: recT0}}
			r.Observe(nil, u[0], "")
			r.Observe(u[:1], u[1], "")
		}
		r.Rebuild()
		return r
	}
	order := make([]int, 20)
	for i := range order {
		order[i] = i
	}
	r1 := build(order)
	first := r1.Recommend(nil, nil, 10, recT0, nil)
	for i := range 20 {
		if got := r1.Recommend(nil, nil, 10, recT0, nil); !slices.Equal(got, first) {
			t.Fatalf("call %d: %q, first %q", i, got, first)
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	r2 := build(order)
	hist := []ItemEvent{{Item: "i05", TS: recT0}}
	if a, b := r1.Recommend(nil, hist, 5, recT0, nil), r2.Recommend(nil, hist, 5, recT0, nil); !slices.Equal(a, b) {
		t.Errorf("same counts, other insertion order: %q vs %q", a, b)
	}
	if want := []string{"i05", "i04", "i06"}; !slices.Equal(r1.Recommend(nil, hist, 3, recT0, nil), want) {
		t.Errorf("ties not broken by item: %q", r1.Recommend(nil, hist, 3, recT0, nil))
	}
}

func TestObserveRepeatsDoNotInflateSimilarity(t *testing.T) {
	r := NewRecommender(RecommenderOptions{})
	// One user flicks between A and B ten times; five users view A then C.
	u := recEvs("v:A", "v:B", "v:A", "v:B", "v:A", "v:B", "v:A", "v:B", "v:A", "v:B")
	users := append([][]ItemEvent{u}, recRepeat(5, recEvs("v:A", "v:C"))...)
	recTrain(r, users...)
	if got := r.Recommend(nil, recEvs("v:A"), 2, recT0, nil); !slices.Equal(got, []string{"A", "C"}) {
		t.Errorf("got %q, want C (5 users) above B (1 user)", got)
	}
}

func TestObserveCategory(t *testing.T) {
	r := NewRecommender(RecommenderOptions{})
	r.Observe(nil, ItemEvent{Item: "A", Kind: ItemPurchase, TS: recT0}, "shoes")
	r.Observe(nil, ItemEvent{Item: "B", Kind: ItemView, TS: recT0}, "")
	r.Observe(nil, ItemEvent{Item: "S", Kind: ItemView, TS: recT0}, "shoes")
	r.Rebuild()
	// S has no neighbours; its category's best-seller A comes first.
	if got := r.Recommend(nil, recEvs("p:S"), 2, recT0, nil); !slices.Equal(got, []string{"A", "B"}) {
		t.Errorf("got %q", got)
	}
	r.SetCategory("A", "")
	r.Rebuild()
	if got := r.Recommend(nil, recEvs("p:S"), 2, recT0, nil); !slices.Equal(got, []string{"A", "B"}) {
		t.Errorf("after clearing A's category, global best-sellers: %q", got)
	}
	if st := r.Stats(); st.Items != 3 || st.Categories != 1 || st.Pending != 0 || st.Built.IsZero() {
		t.Errorf("Stats = %+v", st)
	}
}

func TestPopularityDecay(t *testing.T) {
	r := NewRecommender(RecommenderOptions{PopularityHalfLife: 24 * time.Hour})
	for i := range 10 { // OLD: 10 sales a month ago
		r.Observe(nil, ItemEvent{Item: "OLD", Kind: ItemPurchase, TS: recT0 - 30*recDay + int64(i)}, "")
	}
	r.Observe(nil, ItemEvent{Item: "NEW", Kind: ItemPurchase, TS: recT0}, "") // NEW: one today
	for i := range 3 {                                                        // far future: forces a rebase
		r.Observe(nil, ItemEvent{Item: "NEWER", Kind: ItemView, TS: recT0 + 400*recDay + int64(i)}, "")
	}
	r.Rebuild()
	if got := r.Recommend(nil, nil, 3, recT0, nil); !slices.Equal(got, []string{"NEWER", "NEW", "OLD"}) {
		t.Errorf("decayed best-sellers: %q", got)
	}
	r = NewRecommender(RecommenderOptions{PopularityHalfLife: -1})
	recTrain(r, recRepeat(10, recEvs("v:OLD"))...)
	r.Observe(nil, ItemEvent{Item: "NEW", TS: recT0 + 100*recDay}, "")
	r.Rebuild()
	if got := r.Recommend(nil, nil, 2, recT0, nil); !slices.Equal(got, []string{"OLD", "NEW"}) {
		t.Errorf("undecayed best-sellers: %q", got)
	}
}

func TestPruneBoundsPairs(t *testing.T) {
	r := NewRecommender(RecommenderOptions{MaxPairsPerItem: 8, Neighbours: 4})
	// HUB is co-viewed with 100 items; with Z01..Z03 many times.
	var users [][]ItemEvent
	for i := range 100 {
		users = append(users, recEvs("v:HUB", fmt.Sprintf("v:Y%03d", i)))
	}
	for i := 1; i <= 3; i++ {
		users = append(users, recRepeat(10+i, recEvs("v:HUB", fmt.Sprintf("v:Z%02d", i)))...)
	}
	recTrain(r, users...)
	st := r.Stats()
	// HUB keeps ≤ 8; each other item has one partner (HUB).
	if st.Pairs > 8+103 {
		t.Errorf("Pairs = %d, want ≤ %d", st.Pairs, 8+103)
	}
	got := r.Recommend(nil, recEvs("v:HUB"), 4, recT0, nil)
	if want := []string{"HUB", "Z03", "Z02", "Z01"}; !slices.Equal(got, want) {
		t.Errorf("after pruning: %q, want %q", got, want)
	}
}

func TestRebuildEvery(t *testing.T) {
	r := NewRecommender(RecommenderOptions{RebuildEvery: 2})
	r.Observe(nil, ItemEvent{Item: "A", TS: recT0}, "")
	if got := r.Recommend(nil, nil, 1, recT0, nil); len(got) != 0 {
		t.Errorf("rebuilt too early: %q", got)
	}
	r.Observe(nil, ItemEvent{Item: "A", TS: recT0}, "")
	if got := r.Recommend(nil, nil, 1, recT0, nil); !slices.Equal(got, []string{"A"}) {
		t.Errorf("not rebuilt after 2 events: %q", got)
	}
}

func TestRecommenderOptionsValidate(t *testing.T) {
	var zero RecommenderOptions
	if err := zero.Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	zero.EnsureDefaults()
	if zero.Neighbours != 20 || zero.HistoryWindow != 10 || zero.HalfLife != 72*time.Hour || zero.CoWindow != 20 {
		t.Errorf("defaults: %+v", zero)
	}
	bad := []RecommenderOptions{
		{Neighbours: -1},
		{HistoryWindow: -1},
		{HalfLife: -time.Second},
		{PositionDecay: 1.5},
		{PositionDecay: -0.5},
		{CartWeight: -1},
		{SelfWeight: -2},
		{MaxPairsPerItem: 2},
		{Neighbours: 50, MaxPairsPerItem: 10},
		{RebuildEvery: -1},
	}
	for _, o := range bad {
		if err := o.Validate(); !errors.Is(err, ErrRecommenderOptions) {
			t.Errorf("Validate(%+v) = %v", o, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("NewRecommender accepted invalid options")
		}
	}()
	NewRecommender(RecommenderOptions{PositionDecay: 2})
}

func TestSelectTop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 500 {
		n := rng.IntN(60) + 1
		x := make([]recPair, n)
		for i := range x {
			x[i] = recPair{id: uint32(i), w: float32(rng.IntN(5))} // many ties
		}
		rng.Shuffle(n, func(i, j int) { x[i], x[j] = x[j], x[i] })
		k := rng.IntN(n) + 1
		got := slices.Clone(x)
		recSelectTop(got, k, recPairAbove)
		want := slices.Clone(x)
		slices.SortFunc(want, func(a, b recPair) int {
			if recPairAbove(a, b) {
				return -1
			}
			return 1
		})
		if k < n && got[k-1] != want[k-1] {
			t.Fatalf("trial %d: k-th = %v, want %v", trial, got[k-1], want[k-1])
		}
		top := slices.Clone(got[:k])
		slices.SortFunc(top, func(a, b recPair) int {
			if recPairAbove(a, b) {
				return -1
			}
			return 1
		})
		if !slices.Equal(top, want[:k]) {
			t.Fatalf("trial %d: top %d = %v, want %v", trial, k, top, want[:k])
		}
	}
}

func TestRecommendAllocs(t *testing.T) {
	if recRaceEnabled() {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	r := recShop(t, RecommenderOptions{})
	h := recEvs("v:A", "v:E", "c:G", "p:D", "v:NEW")
	dst := make([]string, 0, 8)
	elig := func(it string) bool { return it != "B" }
	r.Recommend(dst, h, 5, recT0, elig) // warm the pool
	if n := testing.AllocsPerRun(200, func() { dst = r.Recommend(dst[:0], h, 5, recT0, elig) }); n != 0 {
		t.Errorf("Recommend allocates %v times per call", n)
	}
}

// recRaceEnabled reports whether the test binary was built with -race.
func recRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestRecommenderConcurrent runs writers, rebuilds and readers together; run
// it with -race.
func TestRecommenderConcurrent(t *testing.T) {
	r := NewRecommender(RecommenderOptions{RebuildEvery: 500, MaxPairsPerItem: 16, Neighbours: 8})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			var h []ItemEvent
			for i := range 3000 {
				ev := ItemEvent{Item: fmt.Sprintf("p%d", rng.IntN(300)), Kind: ItemEventKind(rng.IntN(3)), TS: recT0 + int64(i)}
				r.Observe(h, ev, fmt.Sprintf("c%d", rng.IntN(10)))
				h = append(h, ev)
				if len(h) > 20 {
					h = h[1:]
				}
				if i%700 == 0 {
					r.SetCategory(ev.Item, "sale")
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			r.Rebuild()
			_ = r.Stats()
			time.Sleep(time.Duration(i) * 100 * time.Microsecond)
		}
	}()
	var readers sync.WaitGroup
	for g := range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			var dst []string
			for {
				select {
				case <-stop:
					return
				default:
				}
				var h []ItemEvent
				for range rng.IntN(12) {
					h = append(h, ItemEvent{Item: fmt.Sprintf("p%d", rng.IntN(320)), Kind: ItemEventKind(rng.IntN(3)), TS: recT0})
				}
				dst = r.Recommend(dst[:0], h, 5, recT0+3000, func(it string) bool { return it != "p1" })
				if len(dst) > 5 || slices.Contains(dst, "p1") {
					t.Errorf("bad answer %q", dst)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	r.Rebuild()
	if st := r.Stats(); st.Items != 300 || st.Pairs > 300*16 {
		t.Errorf("Stats = %+v", st)
	}
	if got := r.Recommend(nil, nil, 5, recT0, nil); len(got) != 5 {
		t.Errorf("after the run: %q", got)
	}
}
