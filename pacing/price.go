package pacing

import (
	"github.com/chaser-dsp/chaser/campaign"
)

// Price returns the CPM bid in micros for campaign c on an imp whose floor is
// floorMicros in floorCur, or 0 for no bid: the base CPM, raised to the
// floor when the floor is above it, never above the max CPM. A floor in a
// currency other than the campaign's is no bid (no rate table yet).
func Price(c *campaign.Campaign, floorMicros int64, floorCur string) int64 {
	if floorMicros > 0 && floorCur != "" && floorCur != c.Currency {
		return 0
	}
	p := c.Bid.BaseCPMMicros
	if p > c.Bid.MaxCPMMicros {
		p = c.Bid.MaxCPMMicros
	}
	if floorMicros > p {
		if floorMicros > c.Bid.MaxCPMMicros {
			return 0
		}
		p = floorMicros
	}
	return p
}
