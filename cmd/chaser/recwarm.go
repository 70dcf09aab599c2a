package main

import (
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/chaser-dsp/chaser/audience"
)

// recWarmSeconds is how long the last warm start took.
var recWarmSeconds = metrics.NewGauge(`chaser_recommender_warm_seconds`, nil)

// warmRecommenders rebuilds the recommenders' co-view, co-cart and
// co-purchase counters and best-sellers from the user profiles in the store,
// replaying each user's recent events oldest first as observeEvent observed
// them live, then publishes the neighbour lists. openApp calls it before
// either port listens and before the demo seed, so no live event is counted
// twice, and /readyz answers only once it is done (creative/doc.go: why a
// replay, what it costs, where it differs from live observation).
func (a *app) warmRecommenders() error {
	t0 := time.Now()
	// No per-event category: SetFeed gave the recommenders every feed
	// product's category before this, and categoryOf (what observeEvent
	// passes) reads the same feeds, so it would change nothing (and cost 15 %).
	w := a.recs.NewWarmer(nil)
	err := a.audiences.ForEachProfile("", func(adv string, _ audience.Pseudonym, p *audience.Profile) error {
		w.User(adv)
		for _, e := range p.Events {
			if e.Linked {
				continue // a copy: the event is replayed from the e-mail's own profile
			}
			if k, ok := historyKinds[e.Type]; ok {
				w.Event(k, e.Unix, e.Products)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("warm recommenders: %w", err)
	}
	a.recs.RebuildAll()
	took := time.Since(t0)
	recWarmSeconds.Set(took.Seconds())
	users, events := w.Stats()
	a.log.Info("recommenders warmed from stored profiles", "profiles", users, "product_events", events, "took", took.Round(time.Millisecond))
	return nil
}
