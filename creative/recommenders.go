package creative

import (
	"sync"
	"sync/atomic"
)

// Recommenders holds one Recommender per advertiser: fed by that
// advertiser's site events (Observe) and product feed (categories), read on
// the bid path by Choose without locks.
type Recommenders struct {
	opts RecommenderOptions
	mu   sync.Mutex // serialises creation
	m    atomic.Pointer[map[string]*Recommender]
}

// NewRecommenders returns an empty registry; every advertiser's recommender
// is made with opts (zero value: the defaults, tuned for ad retargeting).
func NewRecommenders(opts RecommenderOptions) *Recommenders {
	opts.EnsureDefaults()
	rs := &Recommenders{opts: opts}
	m := map[string]*Recommender{}
	rs.m.Store(&m)
	return rs
}

// get returns the advertiser's recommender, or nil.
func (rs *Recommenders) get(adv string) *Recommender { return (*rs.m.Load())[adv] }

// For returns the advertiser's recommender, creating it on first use.
func (rs *Recommenders) For(adv string) *Recommender {
	if r := rs.get(adv); r != nil {
		return r
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old := *rs.m.Load()
	if r := old[adv]; r != nil {
		return r
	}
	r := NewRecommender(rs.opts)
	m := make(map[string]*Recommender, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[adv] = r
	rs.m.Store(&m)
	return r
}

func itemKind(k uint8) (ItemEventKind, bool) {
	switch k {
	case KindView:
		return ItemView, true
	case KindCart:
		return ItemCart, true
	case KindPurchase:
		return ItemPurchase, true
	}
	return 0, false
}

// toItemEvents converts a history to the recommender's events, appending to dst.
func toItemEvents(dst []ItemEvent, h []HistoryItem) []ItemEvent {
	for _, e := range h {
		if k, ok := itemKind(e.Kind); ok {
			dst = append(dst, ItemEvent{Item: e.Product, Kind: k, TS: e.Unix})
		}
	}
	return dst
}

// Observe learns from one site event of a user at an advertiser: history is
// what the user did before (newest last), ev the new event.
func (rs *Recommenders) Observe(adv string, history []HistoryItem, ev HistoryItem, category string) {
	k, ok := itemKind(ev.Kind)
	if !ok || ev.Product == "" {
		return
	}
	hist := toItemEvents(make([]ItemEvent, 0, len(history)), history)
	rs.For(adv).Observe(hist, ItemEvent{Item: ev.Product, Kind: k, TS: ev.Unix}, category)
}

// SetFeed tells the advertiser's recommender the categories of its products
// (for category best-sellers).
func (rs *Recommenders) SetFeed(f *Feed) {
	if f == nil {
		return
	}
	r := rs.For(f.AdvertiserID)
	for _, p := range f.Products {
		if p.Category != "" {
			r.SetCategory(p.ID, p.Category)
		}
	}
}

// RebuildAll recomputes every recommender's neighbour lists (call it
// periodically; readers keep using the previous lists meanwhile).
func (rs *Recommenders) RebuildAll() {
	for _, r := range *rs.m.Load() {
		r.Rebuild()
	}
}

var chooseScratch = sync.Pool{New: func() any {
	return &struct {
		hist []ItemEvent
		ids  []string
	}{}
}}

// Choose appends up to n products of feed for a user with this history
// (newest last): the recommender's picks (the user's own recent items,
// their co-viewed / co-bought neighbours, category and global best-sellers),
// in stock and never bought, topped up by Pick when the recommender has too
// few. Deterministic for a given state.
func (rs *Recommenders) Choose(dst []*Product, feed *Feed, history []HistoryItem, n int, now int64) []*Product {
	if feed == nil || n <= 0 {
		return dst
	}
	start := len(dst)
	if r := rs.get(feed.AdvertiserID); r != nil {
		sc := chooseScratch.Get().(*struct {
			hist []ItemEvent
			ids  []string
		})
		sc.hist = toItemEvents(sc.hist[:0], history)
		sc.ids = r.Recommend(sc.ids[:0], sc.hist, n, now, func(id string) bool {
			p := feed.ByID[id]
			return p != nil && p.InStock
		})
		for _, id := range sc.ids {
			if p := feed.ByID[id]; p != nil && p.InStock && !boughtIn(history, id) {
				dst = append(dst, p)
			}
		}
		clear(sc.ids)
		chooseScratch.Put(sc)
	}
	if len(dst)-start >= n {
		return dst
	}
	// Top up with the user's own items and the feed's in-stock products.
	more := Pick(nil, feed, history, n)
	for _, p := range more {
		if len(dst)-start >= n {
			break
		}
		dup := false
		for _, q := range dst[start:] {
			if q == p {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, p)
		}
	}
	return dst
}

func boughtIn(h []HistoryItem, id string) bool {
	for _, e := range h {
		if e.Kind == KindPurchase && e.Product == id {
			return true
		}
	}
	return false
}
