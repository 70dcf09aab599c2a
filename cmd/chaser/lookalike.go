package main

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/lookalike"
)

// openLookalikes opens the lookalike population on the shared store and
// starts the lookalike builder (after the audience manager).
func (a *app) openLookalikes(db *pebble.DB, now func() time.Time, po lookalike.PopulationOptions) error {
	if po.Now == nil {
		po.Now = now
	}
	pop, err := lookalike.OpenPopulation(db, po)
	if err != nil {
		return fmt.Errorf("open lookalike population: %w", err)
	}
	lk, err := audience.NewLookalikes(a.audiences, pop, audience.LookalikeOptions{Logger: a.log})
	if err != nil {
		_ = pop.Close()
		return err
	}
	a.population, a.lookalikes = pop, lk
	return nil
}

// maintainLookalikes queues lookalike rebuilds that are due and expires
// users of the population not seen within its TTL.
func (a *app) maintainLookalikes(now time.Time) {
	if a.lookalikes == nil {
		return
	}
	a.lookalikes.Maintain(now)
	if now.Minute() == 0 { // hourly is plenty
		if _, err := a.population.Expire(); err != nil {
			a.log.Error("lookalike population expiry", "err", err)
		}
	}
}

// closeLookalikes stops the builder, then writes what the population has
// queued; both before the store closes.
func (a *app) closeLookalikes() {
	if a.lookalikes != nil {
		a.lookalikes.Close()
		a.lookalikes = nil
	}
	if a.population != nil {
		if err := a.population.Close(); err != nil {
			a.log.Error("close lookalike population", "err", err)
		}
		a.population = nil
	}
}
