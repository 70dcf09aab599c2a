package creative

// A Warmer replays users' stored histories into a Recommenders, so that a
// restarted program recommends from what it learnt before instead of
// starting empty (warm start). Each event is observed exactly as
// Recommenders.Observe observes it live — with the events before it in the
// user's history as that history — so replaying a user whose events arrived
// in time order builds the same counters as live observation did; see the
// package documentation for where the two can differ.
//
// A Warmer is not safe for concurrent use; the Recommenders it feeds is
// (Recommend keeps serving the previous snapshot until RebuildAll). Replay
// before live events flow, or from a store snapshot taken before they do:
// an event both replayed and observed live counts twice.
type Warmer struct {
	rs       *Recommenders
	category func(adv, product string) string
	adv      string
	r        *Recommender // the current advertiser's, once an event needs it
	hist     []ItemEvent  // the current user's events so far, oldest first
	users    int
	events   int
}

// NewWarmer returns a Warmer feeding rs. category, when not nil, gives a
// product's category as live observation is given it (the advertiser's
// feed); "" leaves the category as it is.
func (rs *Recommenders) NewWarmer(category func(adv, product string) string) *Warmer {
	return &Warmer{rs: rs, category: category}
}

// User starts the history of a new user at advertiser adv: the Event calls
// that follow are that user's events, oldest first.
func (w *Warmer) User(adv string) {
	clear(w.hist) // drop the previous user's strings
	w.hist = w.hist[:0]
	if adv != w.adv {
		w.adv, w.r = adv, nil
	}
	w.users++
}

// Event replays one event of the current user, at unix seconds unix, of kind
// KindView, KindCart or KindPurchase (others are ignored, as by Observe):
// each product is observed with the user's earlier events as history, then
// the event joins that history. Products of one event are not each other's
// history, as live.
func (w *Warmer) Event(kind uint8, unix int64, products []string) {
	k, ok := itemKind(kind)
	if !ok || w.adv == "" {
		return
	}
	n := len(w.hist)
	for _, p := range products {
		if p == "" {
			continue
		}
		if w.r == nil {
			w.r = w.rs.For(w.adv)
		}
		cat := ""
		if w.category != nil {
			cat = w.category(w.adv, p)
		}
		w.r.Observe(w.hist[:n], ItemEvent{Item: p, Kind: k, TS: unix}, cat)
		w.events++
	}
	for _, p := range products {
		w.hist = append(w.hist, ItemEvent{Item: p, Kind: k, TS: unix})
	}
}

// Stats returns the users started and the product events observed so far.
func (w *Warmer) Stats() (users, events int) { return w.users, w.events }
