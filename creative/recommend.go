package creative

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The recommender picks, at bid time, the products a person is most likely to
// respond to: what they viewed or carted recently, the products co-viewed,
// co-carted and co-bought with those, the best-sellers of the categories they
// browse, and the advertiser's best-sellers for everyone else.
//
// It is an item-to-item model ("item-KNN"). Writers feed it site events with
// Observe, which updates counters under a mutex; Rebuild turns the counters
// into an immutable snapshot (top-K neighbour lists per item, best-seller
// lists) published through an atomic pointer, so Recommend, the bid path,
// never takes a lock and does not allocate.

// ItemEventKind is what a person did with a product.
type ItemEventKind uint8

// The kinds of item events, weakest signal first.
const (
	ItemView     ItemEventKind = iota // the product page was viewed
	ItemCart                          // the product was added to the cart
	ItemPurchase                      // the product was bought
)

// itemKinds is the number of ItemEventKind values.
const recItemKinds = 3

// String returns "view", "cart" or "purchase".
func (k ItemEventKind) String() string {
	switch k {
	case ItemView:
		return "view"
	case ItemCart:
		return "cart"
	case ItemPurchase:
		return "purchase"
	}
	return fmt.Sprintf("ItemEventKind(%d)", uint8(k))
}

// ItemEvent is one thing a person did with one product.
type ItemEvent struct {
	Item string        // the product id, as in the advertiser's feed
	Kind ItemEventKind // view, cart or purchase
	TS   int64         // when, in unix seconds
}

// RecommenderOptions configures a Recommender. The zero value is valid: every
// zero field takes the default stated in its comment.
type RecommenderOptions struct {
	// Neighbours is the number of similar items kept per item in a snapshot
	// (top-K). Default 20.
	Neighbours int
	// HistoryWindow is the number of distinct items, newest first, of a
	// user's history that Recommend uses as seeds. Purchases anywhere in the
	// history are still excluded. Default 10.
	HistoryWindow int
	// CoWindow is the number of distinct items, newest first, of a user's
	// history that a new event is counted as co-occurring with. Observe's
	// cost grows with it. Default 20.
	CoWindow int
	// CoDecay multiplies the weight of a co-occurrence for every distinct
	// item between the two events, in (0, 1]: below 1, items looked at one
	// after the other count as more similar than items further apart in a
	// history. Default 1.
	CoDecay float64
	// HalfLife is the recency weighting of a user's history: an event
	// HalfLife older than now counts half as much as one happening now. It
	// also discounts a co-occurrence by the time between the two events.
	// Default 3 days.
	HalfLife time.Duration
	// PositionDecay multiplies the weight of a history item for every more
	// recent distinct item after it, in (0, 1]; 1 means time alone decides.
	// It captures the "what did they look at last" signal of a browsing
	// session, which HalfLife (days) cannot. Default 0.7.
	PositionDecay float64
	// CartWeight is the weight of a cart event relative to a view (1): in
	// a user's history, in co-occurrence (a pair both carted) and in
	// popularity. Default 3.
	CartWeight float64
	// PurchaseWeight is the weight of a purchase relative to a view (1), as
	// CartWeight. Default 5.
	PurchaseWeight float64
	// SelfWeight is the score of a user's own history item relative to a
	// neighbour of similarity 1 (the cosine similarity of an item with
	// itself): above 1 favours showing again what they looked at, below 1
	// favours related items. Default 1.
	SelfWeight float64
	// Shrink is added to both occurrence counts in the similarity
	// c(i,j)/sqrt((n_i+Shrink)(n_j+Shrink)), so pairs seen once between two
	// rare items do not outrank well supported ones. Default 20 (about 20
	// views or 4 purchases); a negative value means 0.
	Shrink float64
	// MaxPairsPerItem caps the co-occurrence counters kept per item; over
	// the cap the least frequent quarter is dropped. It bounds memory to
	// about 8 bytes × items × MaxPairsPerItem. Default 200.
	MaxPairsPerItem int
	// BestSellers is the length of the global and of each category's
	// best-seller list in a snapshot. Default 100.
	BestSellers int
	// PopularityHalfLife decays item popularity, so best-sellers are recent
	// best-sellers. Default 7 days; a negative value disables decay.
	PopularityHalfLife time.Duration
	// IncludePurchased lets Recommend return items the user purchased. The
	// default, false, excludes them: an ad for what was just bought is
	// wasted. Turn it on for replenishment (next-basket) use.
	IncludePurchased bool
	// RebuildEvery rebuilds the snapshot automatically after this many
	// Observe calls, inside the Observe call that reaches it. Default 0:
	// only explicit Rebuild calls (e.g. from a ticker) rebuild.
	RebuildEvery int
}

// Defaults for RecommenderOptions.
const (
	DefaultRecommenderNeighbours      = 20
	DefaultRecommenderHistoryWindow   = 10
	DefaultRecommenderCoWindow        = 20
	DefaultRecommenderHalfLife        = 72 * time.Hour
	DefaultRecommenderPositionDecay   = 0.7
	DefaultRecommenderCartWeight      = 3
	DefaultRecommenderPurchaseWeight  = 5
	DefaultRecommenderSelfWeight      = 1
	DefaultRecommenderShrink          = 20
	DefaultRecommenderMaxPairs        = 200
	DefaultRecommenderBestSellers     = 100
	DefaultRecommenderPopularityDecay = 7 * 24 * time.Hour
)

// EnsureDefaults sets every zero field of o to its default.
func (o *RecommenderOptions) EnsureDefaults() {
	if o.Neighbours == 0 {
		o.Neighbours = DefaultRecommenderNeighbours
	}
	if o.HistoryWindow == 0 {
		o.HistoryWindow = DefaultRecommenderHistoryWindow
	}
	if o.CoWindow == 0 {
		o.CoWindow = DefaultRecommenderCoWindow
	}
	if o.CoDecay == 0 {
		o.CoDecay = 1
	}
	if o.HalfLife == 0 {
		o.HalfLife = DefaultRecommenderHalfLife
	}
	if o.PositionDecay == 0 {
		o.PositionDecay = DefaultRecommenderPositionDecay
	}
	if o.CartWeight == 0 {
		o.CartWeight = DefaultRecommenderCartWeight
	}
	if o.PurchaseWeight == 0 {
		o.PurchaseWeight = DefaultRecommenderPurchaseWeight
	}
	if o.SelfWeight == 0 {
		o.SelfWeight = DefaultRecommenderSelfWeight
	}
	if o.Shrink == 0 {
		o.Shrink = DefaultRecommenderShrink
	}
	if o.MaxPairsPerItem == 0 {
		o.MaxPairsPerItem = DefaultRecommenderMaxPairs
	}
	if o.BestSellers == 0 {
		o.BestSellers = DefaultRecommenderBestSellers
	}
	if o.PopularityHalfLife == 0 {
		o.PopularityHalfLife = DefaultRecommenderPopularityDecay
	}
}

// ErrRecommenderOptions is wrapped by the errors of RecommenderOptions.Validate.
var ErrRecommenderOptions = errors.New("creative: invalid recommender options")

// Validate reports the first invalid field of o, after defaults are applied.
func (o RecommenderOptions) Validate() error {
	o.EnsureDefaults()
	bad := func(field, why string) error {
		return fmt.Errorf("%w: %s %s", ErrRecommenderOptions, field, why)
	}
	switch {
	case o.Neighbours < 0 || o.Neighbours > 1000:
		return bad("Neighbours", "must be in 1..1000")
	case o.HistoryWindow < 0 || o.HistoryWindow > 1000:
		return bad("HistoryWindow", "must be in 1..1000")
	case o.CoWindow < 0 || o.CoWindow > 1000:
		return bad("CoWindow", "must be in 1..1000")
	case !(o.CoDecay > 0 && o.CoDecay <= 1):
		return bad("CoDecay", "must be in (0, 1]")
	case o.HalfLife < 0:
		return bad("HalfLife", "must be positive")
	case !(o.PositionDecay > 0 && o.PositionDecay <= 1):
		return bad("PositionDecay", "must be in (0, 1]")
	case !(o.CartWeight > 0) || math.IsInf(o.CartWeight, 0):
		return bad("CartWeight", "must be positive and finite")
	case !(o.PurchaseWeight > 0) || math.IsInf(o.PurchaseWeight, 0):
		return bad("PurchaseWeight", "must be positive and finite")
	case !(o.SelfWeight > 0) || math.IsInf(o.SelfWeight, 0):
		return bad("SelfWeight", "must be positive and finite")
	case math.IsNaN(o.Shrink) || math.IsInf(o.Shrink, 0):
		return bad("Shrink", "must be finite")
	case o.MaxPairsPerItem < 4:
		return bad("MaxPairsPerItem", "must be at least 4")
	case o.MaxPairsPerItem < o.Neighbours:
		return bad("MaxPairsPerItem", "must be at least Neighbours")
	case o.BestSellers < 0:
		return bad("BestSellers", "must be positive")
	case o.RebuildEvery < 0:
		return bad("RebuildEvery", "must not be negative")
	}
	return nil
}

// Recommender is the per-advertiser product recommender. It is safe for
// concurrent use: Recommend reads an immutable snapshot without locks;
// Observe, SetCategory and Rebuild serialise on a mutex.
type Recommender struct {
	o      RecommenderOptions
	kindW  [recItemKinds]float64
	snap   atomic.Pointer[recSnapshot]
	mu     sync.Mutex // guards everything below
	index  map[string]uint32
	names  []string     // append-only: snapshots share its prefix
	cat    []uint32     // item → category number + 1; 0 is none
	occ    []float64    // item → weighted occurrences (the n of the similarity)
	pop    [][3]float64 // item → decayed event count per kind
	pairs  [][]recPair  // item → co-occurrence counters, sorted by id
	cats   map[string]uint32
	npairs int

	popBase    int64 // unix seconds at which popularity weight is 1
	popBaseSet bool
	pending    int // Observe calls since the last Rebuild
	built      time.Time

	window   []recWindowItem // Observe scratch
	stamp    []uint32        // item → r.gen when it is in window
	slot     []int32         // item → its index in window, when stamped
	gen      uint32
	pruneBuf []recPair  // prune scratch
	rowBuf   []recScore // Rebuild scratch
}

// recPair is one co-occurrence counter: the other item and the weighted count.
type recPair struct {
	id uint32
	w  float32
}

type recScore struct {
	id uint32
	s  float64
}

type recWindowItem struct {
	id   uint32
	kind ItemEventKind // the strongest kind seen in the window
	ts   int64         // the newest occurrence
}

// recNeighbour is an entry of a neighbour list.
type recNeighbour struct {
	id  uint32
	sim float32
}

// recSnapshot is what Recommend reads: immutable once published.
type recSnapshot struct {
	index    map[string]uint32
	names    []string
	nbrOff   []uint32 // item i's neighbours are nbr[nbrOff[i]:nbrOff[i+1]], most similar first
	nbr      []recNeighbour
	itemCat  []uint32 // item → category number + 1; 0 is none
	catOff   []uint32 // category number c's best-sellers are catBest[catOff[c-1]:catOff[c]]
	catBest  []uint32
	catNames []string // category number - 1 → name
	best     []uint32 // global best-sellers, best first
}

// NewRecommender returns an empty recommender. Zero fields of opts take
// their defaults; it panics if opts is invalid (check options from users
// with Validate first).
func NewRecommender(opts RecommenderOptions) *Recommender {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	r := &Recommender{
		o:     opts,
		kindW: [recItemKinds]float64{1, opts.CartWeight, opts.PurchaseWeight},
		index: make(map[string]uint32),
		cats:  make(map[string]uint32),
	}
	r.snap.Store(&recSnapshot{nbrOff: []uint32{0}, catOff: []uint32{0}})
	return r
}

// reconfigure replaces the options of r with o, which must have the same
// training options (those Observe uses), and rebuilds the snapshot if o
// changes how it is built. The offline evaluation uses it to try serving
// options without retraining; it must not run concurrently with Recommend.
func (r *Recommender) reconfigure(o RecommenderOptions) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		panic(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rebuild := o.Neighbours != r.o.Neighbours || o.Shrink != r.o.Shrink || o.BestSellers != r.o.BestSellers
	r.o = o
	r.kindW = [recItemKinds]float64{1, o.CartWeight, o.PurchaseWeight}
	if rebuild {
		r.rebuild()
	}
}

// Options returns the options in use, defaults applied.
func (r *Recommender) Options() RecommenderOptions { return r.o }

func (r *Recommender) weight(k ItemEventKind) float64 {
	if int(k) < recItemKinds {
		return r.kindW[k]
	}
	return 1
}

// recDecay is 2^(-age/halfLife); ages below zero count as zero.
func recDecay(age int64, halfLife time.Duration) float64 {
	if age <= 0 || halfLife <= 0 {
		return 1
	}
	return math.Exp2(-float64(age) / halfLife.Seconds())
}

// intern returns the number of item, adding it if new. r.mu must be held.
func (r *Recommender) intern(item string) uint32 {
	if id, ok := r.index[item]; ok {
		return id
	}
	id := uint32(len(r.names))
	r.index[item] = id
	r.names = append(r.names, item)
	r.cat = append(r.cat, 0)
	r.occ = append(r.occ, 0)
	r.pop = append(r.pop, [3]float64{})
	r.pairs = append(r.pairs, nil)
	r.stamp = append(r.stamp, 0)
	r.slot = append(r.slot, 0)
	return id
}

func (r *Recommender) setCategory(id uint32, category string) {
	c, ok := r.cats[category]
	if !ok {
		c = uint32(len(r.cats)) + 1
		r.cats[category] = c
	}
	r.cat[id] = c
}

// SetCategory records the category of item, as given by the product feed,
// for the category best-sellers. An empty category clears it. It takes
// effect at the next Rebuild.
func (r *Recommender) SetCategory(item, category string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.intern(item)
	if category == "" {
		r.cat[id] = 0
		return
	}
	r.setCategory(id, category)
}

// popWeight is the forward-decay weight of an event at ts: counts are kept
// relative to popBase, so that decaying them all is never needed, and rebased
// before the weights could overflow.
func (r *Recommender) popWeight(ts int64) float64 {
	hl := r.o.PopularityHalfLife
	if hl <= 0 {
		return 1
	}
	if !r.popBaseSet {
		r.popBase, r.popBaseSet = ts, true
	}
	x := float64(ts-r.popBase) / hl.Seconds()
	if x > 256 {
		f := math.Exp2(-x)
		for i := range r.pop {
			for k := range r.pop[i] {
				r.pop[i][k] *= f
			}
		}
		r.popBase, x = ts, 0
	}
	return math.Exp2(x)
}

// Observe learns from one event ev of one user, given that user's history
// before it (oldest first, newest last; only the last CoWindow distinct items
// are used). It counts ev for the popularity of ev.Item (per kind), records
// category for ev.Item when not empty, and counts ev.Item as co-occurring
// with each recent history item: a co-view, co-cart or co-purchase after the
// weaker of the two events, discounted by the time between them. A repeat of
// an item already in the window with at least the same kind counts for
// popularity only, so a user flicking between two products does not inflate
// their similarity. Observations reach Recommend at the next Rebuild.
func (r *Recommender) Observe(history []ItemEvent, ev ItemEvent, category string) {
	if ev.Item == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.intern(ev.Item)
	if category != "" {
		r.setCategory(id, category)
	}
	kind := ev.Kind
	if int(kind) >= recItemKinds {
		kind = ItemView
	}
	r.pop[id][kind] += r.popWeight(ev.TS)

	// The distinct items of the recent history, newest first.
	r.gen++
	if r.gen == 0 { // wrapped: forget every stamp
		clear(r.stamp)
		r.gen = 1
	}
	win := r.window[:0]
	repeat := false
	for i := len(history) - 1; i >= 0 && len(win) < r.o.CoWindow; i-- {
		h := history[i]
		if h.Item == "" {
			continue
		}
		hk := h.Kind
		if int(hk) >= recItemKinds {
			hk = ItemView
		}
		hid := r.intern(h.Item)
		if hid == id {
			if hk >= kind {
				repeat = true
				break
			}
			continue
		}
		if r.stamp[hid] != r.gen {
			r.stamp[hid] = r.gen
			r.slot[hid] = int32(len(win))
			win = append(win, recWindowItem{id: hid, kind: hk, ts: h.TS})
		} else if j := r.slot[hid]; hk > win[j].kind {
			win[j].kind = hk
		}
	}
	r.window = win
	if !repeat {
		r.occ[id] += r.kindW[kind]
		dist := 1.0
		for _, h := range win {
			k := min(h.kind, kind)
			w := float32(r.kindW[k] * recDecay(ev.TS-h.ts, r.o.HalfLife) * dist)
			dist *= r.o.CoDecay
			if w <= 0 {
				continue
			}
			r.addPair(id, h.id, w)
			r.addPair(h.id, id, w)
		}
	}
	r.pending++
	if r.o.RebuildEvery > 0 && r.pending >= r.o.RebuildEvery {
		r.rebuild()
	}
}

// addPair adds w to the co-occurrence counter of (a, b), pruning a's counters
// when over the cap.
func (r *Recommender) addPair(a, b uint32, w float32) {
	p := r.pairs[a]
	i, j := 0, len(p)
	for i < j {
		h := int(uint(i+j) >> 1)
		if p[h].id < b {
			i = h + 1
		} else {
			j = h
		}
	}
	if i < len(p) && p[i].id == b {
		p[i].w += w
		return
	}
	p = slices.Insert(p, i, recPair{id: b, w: w})
	r.npairs++
	if len(p) > r.o.MaxPairsPerItem {
		before := len(p)
		p = r.prune(p, b)
		r.npairs -= before - len(p)
	}
	r.pairs[a] = p
}

// prune keeps, of p, the counter of newcomer (just inserted: it gets until
// the next prune to grow) and the largest others (ties: the item seen
// first), three quarters of the cap in all, in place and in id order.
func (r *Recommender) prune(p []recPair, newcomer uint32) []recPair {
	keep := max(r.o.MaxPairsPerItem*3/4-1, 1)
	tmp := r.pruneBuf[:0]
	for _, e := range p {
		if e.id != newcomer {
			tmp = append(tmp, e)
		}
	}
	recSelectTop(tmp, keep, recPairAbove)
	last := tmp[keep-1]
	r.pruneBuf = tmp
	out := p[:0]
	for _, e := range p {
		if e.id == newcomer || e.id == last.id || recPairAbove(e, last) {
			out = append(out, e)
		}
	}
	return out
}

// recPairAbove ranks co-occurrence counters: heavier first, then lower id.
func recPairAbove(a, b recPair) bool { return a.w > b.w || (a.w == b.w && a.id < b.id) }

// recRankScores returns the order of published lists: higher score first, then
// the lower of names[id], so that lists do not depend on the order in which
// items were first seen.
func recRankScores(names []string) func(a, b recScore) bool {
	return func(a, b recScore) bool { return a.s > b.s || (a.s == b.s && names[a.id] < names[b.id]) }
}

// recSortScores sorts x by above.
func recSortScores(x []recScore, above func(a, b recScore) bool) {
	slices.SortFunc(x, func(a, b recScore) int {
		if above(a, b) {
			return -1
		}
		if above(b, a) {
			return 1
		}
		return 0
	})
}

// recSelectTop reorders x so that x[:k] holds its k top-ranked elements, in no
// particular order except that x[k-1] is the k-th (quickselect). above must
// be a strict total order.
func recSelectTop[T any](x []T, k int, above func(a, b T) bool) {
	if k <= 0 || k >= len(x) {
		return
	}
	t := k - 1
	lo, hi := 0, len(x)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// Median of three as the pivot.
		if above(x[mid], x[lo]) {
			x[mid], x[lo] = x[lo], x[mid]
		}
		if above(x[hi], x[lo]) {
			x[hi], x[lo] = x[lo], x[hi]
		}
		if above(x[hi], x[mid]) {
			x[hi], x[mid] = x[mid], x[hi]
		}
		pivot := x[mid]
		i, j := lo, hi
		for i <= j {
			for above(x[i], pivot) {
				i++
			}
			for above(pivot, x[j]) {
				j--
			}
			if i <= j {
				x[i], x[j] = x[j], x[i]
				i++
				j--
			}
		}
		switch {
		case t <= j:
			hi = j
		case t >= i:
			lo = i
		default:
			return
		}
	}
}

// Rebuild recomputes the neighbour and best-seller lists from the counters
// and publishes them atomically to Recommend. Neighbours of i are the
// Neighbours items j with the largest c(i,j)/sqrt((n_i+s)(n_j+s)), where c is
// the weighted co-occurrence count, n the weighted occurrence count and s
// Options().Shrink. It holds the writer lock for its duration (about a
// second per few million counters), Recommend is not held up.
func (r *Recommender) Rebuild() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rebuild()
}

func (r *Recommender) rebuild() {
	n := len(r.names)
	s := &recSnapshot{
		index:   maps.Clone(r.index),
		names:   r.names[:n:n],
		nbrOff:  make([]uint32, n+1),
		itemCat: slices.Clone(r.cat),
	}
	k := r.o.Neighbours
	shrink := max(r.o.Shrink, 0)
	above := recRankScores(s.names)
	total := 0
	for i := range n {
		total += min(len(r.pairs[i]), k)
	}
	s.nbr = make([]recNeighbour, 0, total)
	for i := range n {
		row := r.rowBuf[:0]
		ni := r.occ[i] + shrink
		for _, p := range r.pairs[i] {
			d := ni * (r.occ[p.id] + shrink)
			if d <= 0 || p.w <= 0 {
				continue
			}
			row = append(row, recScore{p.id, float64(p.w) / math.Sqrt(d)})
		}
		recSelectTop(row, k, above)
		row = row[:min(len(row), k)]
		recSortScores(row, above)
		for _, e := range row {
			s.nbr = append(s.nbr, recNeighbour{e.id, float32(e.s)})
		}
		s.nbrOff[i+1] = uint32(len(s.nbr))
		r.rowBuf = row
	}

	// Best-sellers: weighted popularity, globally and per category.
	all := make([]recScore, 0, n)
	for i := range n {
		var v float64
		for kind, c := range r.pop[i] {
			v += r.kindW[kind] * c
		}
		if v > 0 {
			all = append(all, recScore{uint32(i), v})
		}
	}
	recSortScores(all, above)
	s.best = make([]uint32, 0, min(len(all), r.o.BestSellers))
	ncat := len(r.cats)
	perCat := make([]uint32, ncat+1)
	for _, e := range all {
		if len(s.best) < r.o.BestSellers {
			s.best = append(s.best, e.id)
		}
		if c := r.cat[e.id]; c != 0 && int(perCat[c]) < r.o.BestSellers {
			perCat[c]++
		}
	}
	// catOff[c] is the end of category number c's list (and the start of c+1's).
	s.catOff = make([]uint32, ncat+1)
	for c := 1; c <= ncat; c++ {
		s.catOff[c] = s.catOff[c-1] + perCat[c]
	}
	s.catBest = make([]uint32, s.catOff[ncat])
	s.catNames = make([]string, ncat)
	for name, c := range r.cats {
		s.catNames[c-1] = name
	}
	fill := slices.Clone(s.catOff[:ncat])
	for _, e := range all {
		c := r.cat[e.id]
		if c == 0 || fill[c-1] == s.catOff[c] {
			continue
		}
		s.catBest[fill[c-1]] = e.id
		fill[c-1]++
	}
	r.snap.Store(s)
	r.pending = 0
	r.built = time.Now()
}

// RecommenderStats describes a Recommender's size, for metrics.
type RecommenderStats struct {
	Items      int       // distinct items seen
	Categories int       // distinct categories seen
	Pairs      int       // co-occurrence counters held
	Neighbours int       // neighbour entries in the published snapshot
	Pending    int       // Observe calls since the last Rebuild
	Built      time.Time // when the snapshot was last rebuilt; zero if never
}

// Stats returns the current sizes.
func (r *Recommender) Stats() RecommenderStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RecommenderStats{
		Items:      len(r.names),
		Categories: len(r.cats),
		Pairs:      r.npairs,
		Neighbours: len(r.snap.Load().nbr),
		Pending:    r.pending,
		Built:      r.built,
	}
}

// Recommend appends to dst up to n items for a user with this history
// (oldest first, newest last) and returns the extended slice. now is the
// current time in unix seconds, for recency weighting. Only items for which
// eligible(item) is true are returned (nil: all are eligible); unless
// Options().IncludePurchased, no item the user purchased anywhere in history.
//
// Candidates, in order of preference:
//  1. the last HistoryWindow distinct items of the user and their neighbours,
//     scored Σ_h w_h·(SelfWeight if j = h, else sim(h,j)), where w_h is the
//     sum over h's events of kind weight × 2^(-age/HalfLife) ×
//     PositionDecay^(distinct items since h);
//  2. the best-sellers of those items' categories, heaviest category first;
//  3. the global best-sellers.
//
// Ties are broken by the item strings, so the answer is deterministic for a
// given state. It may return fewer than n items (a new advertiser with no events).
// Items the user has but the snapshot does not know yet (added since the last
// Rebuild) are still candidates as the user's own items.
//
// It does not allocate beyond growing dst, and eligible is called once per
// candidate considered, in order, until n are found.
func (r *Recommender) Recommend(dst []string, history []ItemEvent, n int, now int64, eligible func(item string) bool) []string {
	if n <= 0 {
		return dst
	}
	s := r.snap.Load()
	sc := recScratchPool.Get().(*recScratch)
	defer sc.release()
	sc.tab.reset(min(len(history), r.o.HistoryWindow)*(r.o.Neighbours+1) + 16)

	// Purchases anywhere in the history are excluded.
	if !r.o.IncludePurchased {
		for _, h := range history {
			if h.Kind != ItemPurchase {
				continue
			}
			if id, ok := s.index[h.Item]; ok {
				sc.tab.get(id).flags |= recSlotExcluded
			} else {
				sc.unknown(h.Item).excluded = true
			}
		}
	}

	// The seeds: distinct recent items, newest first, with their weights.
	pos := 0
	posW := 1.0
	for i := len(history) - 1; i >= 0; i-- {
		h := history[i]
		if h.Item == "" {
			continue
		}
		w := r.weight(h.Kind) * recDecay(now-h.TS, r.o.HalfLife)
		id, known := s.index[h.Item]
		var seed *recSeed
		var slot *recSlot
		if known {
			slot = sc.tab.get(id)
			if slot.seed > 0 {
				seed = &sc.seeds[slot.seed-1]
			}
		} else {
			seed = sc.seedForUnknown(h.Item)
		}
		if seed == nil {
			if pos == r.o.HistoryWindow {
				break // the window is the suffix holding HistoryWindow distinct items
			}
			if known {
				sc.seeds = append(sc.seeds, recSeed{id: int32(id)})
				slot.seed = int32(len(sc.seeds))
			} else {
				sc.seeds = append(sc.seeds, recSeed{id: -1, name: h.Item})
			}
			seed = &sc.seeds[len(sc.seeds)-1]
			seed.posW = posW
			pos++
			posW *= r.o.PositionDecay
		}
		seed.w += w * seed.posW
	}

	// Score the seeds themselves and their neighbours.
	self := r.o.SelfWeight
	for _, sd := range sc.seeds {
		if sd.id < 0 {
			u := sc.unknown(sd.name)
			u.score += float32(sd.w * self)
			continue
		}
		id := uint32(sd.id)
		sc.tab.get(id).score += float32(sd.w * self)
		w := float32(sd.w)
		for _, nb := range s.nbr[s.nbrOff[id]:s.nbrOff[id+1]] {
			sc.tab.get(nb.id).score += w * nb.sim
		}
	}

	// Rank the candidates.
	for _, slot := range sc.tab.used {
		e := &sc.tab.slots[slot]
		if e.flags&recSlotExcluded == 0 && e.score > 0 {
			sc.cands = append(sc.cands, recCand{key: int32(e.key - 1), score: e.score})
		}
	}
	for i, u := range sc.unknowns {
		if !u.excluded && u.score > 0 {
			sc.cands = append(sc.cands, recCand{key: -int32(i) - 1, score: u.score})
		}
	}
	start := len(dst)
	h := recHeap{c: sc.cands, s: s, sc: sc}
	h.init()
	for len(dst)-start < n && len(h.c) > 0 {
		c := h.pop()
		name := h.name(c.key)
		if eligible != nil && !eligible(name) {
			if c.key >= 0 {
				sc.tab.get(uint32(c.key)).flags |= recSlotRejected
			}
			continue
		}
		if c.key >= 0 {
			sc.tab.get(uint32(c.key)).flags |= recSlotChosen
		}
		dst = append(dst, name)
	}
	sc.cands = h.c[:0]

	// Fill up with the best-sellers of the seeds' categories, then globally.
	if len(dst)-start < n && len(s.catOff) > 1 {
		for _, sd := range sc.seeds {
			if sd.id < 0 || int(sd.id) >= len(s.itemCat) {
				continue
			}
			c := s.itemCat[sd.id]
			if c == 0 || int(c) >= len(s.catOff) {
				continue
			}
			j := 0
			for j < len(sc.catW) && sc.catW[j].id != c {
				j++
			}
			if j == len(sc.catW) {
				sc.catW = append(sc.catW, recScore{id: c})
			}
			sc.catW[j].s += sd.w
		}
		// Heaviest category first (ties: by name); a handful, insertion sort.
		for i := 1; i < len(sc.catW); i++ {
			for j := i; j > 0; j-- {
				a, b := sc.catW[j], sc.catW[j-1]
				if a.s < b.s || (a.s == b.s && s.catNames[a.id-1] > s.catNames[b.id-1]) {
					break
				}
				sc.catW[j], sc.catW[j-1] = b, a
			}
		}
		for _, cw := range sc.catW {
			c := cw.id
			dst = r.fill(dst, start, n, s.catBest[s.catOff[c-1]:s.catOff[c]], s, sc, eligible)
		}
	}
	dst = r.fill(dst, start, n, s.best, s, sc, eligible)
	return dst
}

// fill appends items of list, in order, that are neither excluded nor
// already chosen, until dst holds n items after start.
func (r *Recommender) fill(dst []string, start, n int, list []uint32, s *recSnapshot, sc *recScratch, eligible func(string) bool) []string {
	for _, id := range list {
		if len(dst)-start >= n {
			break
		}
		e := sc.tab.get(id)
		if e.flags&(recSlotExcluded|recSlotChosen|recSlotRejected) != 0 {
			continue
		}
		name := s.names[id]
		if eligible != nil && !eligible(name) {
			e.flags |= recSlotRejected
			continue
		}
		e.flags |= recSlotChosen
		dst = append(dst, name)
	}
	return dst
}

// recScratch is Recommend's per-call state, pooled.
type recScratch struct {
	tab      recTable
	seeds    []recSeed
	unknowns []recUnknown
	cands    []recCand
	catW     []recScore
}

// recSeed is one distinct item of the user's history window.
type recSeed struct {
	id   int32  // snapshot number, or -1 if the snapshot does not know it
	name string // when id is -1
	w    float64
	posW float64
}

// recUnknown is an item of the user's history the snapshot does not know.
type recUnknown struct {
	name     string
	score    float32
	excluded bool
}

// recCand is a candidate: key ≥ 0 is a snapshot number, key < 0 is
// unknowns[-key-1].
type recCand struct {
	key   int32
	score float32
}

var recScratchPool = sync.Pool{New: func() any { return new(recScratch) }}

// release clears references to the caller's strings and returns sc to the pool.
func (sc *recScratch) release() {
	clear(sc.seeds)
	clear(sc.unknowns)
	sc.seeds = sc.seeds[:0]
	sc.unknowns = sc.unknowns[:0]
	sc.cands = sc.cands[:0]
	sc.catW = sc.catW[:0]
	if cap(sc.tab.slots) > 1<<16 {
		sc.tab = recTable{} // do not pin the scratch of an outsized history
	}
	recScratchPool.Put(sc)
}

func (sc *recScratch) seedForUnknown(name string) *recSeed {
	for i := range sc.seeds {
		if sc.seeds[i].id < 0 && sc.seeds[i].name == name {
			return &sc.seeds[i]
		}
	}
	return nil
}

func (sc *recScratch) unknown(name string) *recUnknown {
	for i := range sc.unknowns {
		if sc.unknowns[i].name == name {
			return &sc.unknowns[i]
		}
	}
	sc.unknowns = append(sc.unknowns, recUnknown{name: name})
	return &sc.unknowns[len(sc.unknowns)-1]
}

// Flags of an idTable slot.
const (
	recSlotExcluded uint8 = 1 << iota // purchased: never recommend
	recSlotChosen                     // already in the answer
	recSlotRejected                   // not eligible
)

// recTable is an open-addressing hash table from snapshot item numbers to
// candidate state, cleared in time proportional to its use.
type recTable struct {
	slots []recSlot
	used  []uint32 // occupied slot indexes, in insertion order
	mask  uint32
}

type recSlot struct {
	key   uint32 // item number + 1; 0 is empty
	score float32
	seed  int32 // index in recScratch.seeds + 1; 0 if not a seed
	flags uint8
}

// reset empties the table and sizes it for about hint keys.
func (t *recTable) reset(hint int) {
	for _, i := range t.used {
		t.slots[i] = recSlot{}
	}
	t.used = t.used[:0]
	size := 64
	for size < 2*hint {
		size <<= 1
	}
	if len(t.slots) < size {
		t.slots = make([]recSlot, size)
		t.mask = uint32(size - 1)
	}
}

// get returns the slot of id, inserting it if absent.
func (t *recTable) get(id uint32) *recSlot {
	if 2*(len(t.used)+1) > len(t.slots) {
		t.grow()
	}
	key := id + 1
	i := (key * 0x9E3779B1) & t.mask
	for {
		sl := &t.slots[i]
		if sl.key == key {
			return sl
		}
		if sl.key == 0 {
			sl.key = key
			t.used = append(t.used, i)
			return sl
		}
		i = (i + 1) & t.mask
	}
}

func (t *recTable) grow() {
	old := t.slots
	oldUsed := t.used
	size := max(2*len(old), 64)
	t.slots = make([]recSlot, size)
	t.mask = uint32(size - 1)
	t.used = make([]uint32, 0, cap(oldUsed))
	for _, i := range oldUsed {
		e := old[i]
		j := (e.key * 0x9E3779B1) & t.mask
		for t.slots[j].key != 0 {
			j = (j + 1) & t.mask
		}
		t.slots[j] = e
		t.used = append(t.used, j)
	}
}

// recHeap is a max-heap of candidates: highest score first, then the
// lowest item id.
type recHeap struct {
	c  []recCand
	s  *recSnapshot
	sc *recScratch
}

func (h *recHeap) name(key int32) string {
	if key >= 0 {
		return h.s.names[key]
	}
	return h.sc.unknowns[-key-1].name
}

// before reports whether a ranks above b.
func (h *recHeap) before(a, b recCand) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return h.name(a.key) < h.name(b.key)
}

func (h *recHeap) init() {
	for i := len(h.c)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *recHeap) pop() recCand {
	top := h.c[0]
	last := len(h.c) - 1
	h.c[0] = h.c[last]
	h.c = h.c[:last]
	if last > 0 {
		h.down(0)
	}
	return top
}

func (h *recHeap) down(i int) {
	n := len(h.c)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		best := l
		if r := l + 1; r < n && h.before(h.c[r], h.c[l]) {
			best = r
		}
		if !h.before(h.c[best], h.c[i]) {
			return
		}
		h.c[i], h.c[best] = h.c[best], h.c[i]
		i = best
	}
}
