package pacing

import "time"

// PriceConfig turns the base CPM into a bid.
type PriceConfig struct {
	// Lookalike multiplies the price for users matched only through a
	// lookalike audience (people who never visited). Default 0.7.
	Lookalike float64
	// Recency multiplies the price by how recently the user viewed or carted
	// a product: the first step whose Within covers the time since. Default
	// ≤1h ×1.5, ≤24h ×1.25, ≤7d ×1.0.
	Recency []RecencyStep
	// Stale applies when the last view is older than every step. Default 0.8.
	// Users with no known view get ×1.
	Stale float64
	// MinShade: a first-price bid is never shaded below this fraction of
	// the campaign's value for the impression. Default 0.5.
	MinShade float64
}

// RecencyStep is one step of the recency multiplier.
type RecencyStep struct {
	Within time.Duration
	Mult   float64
}

// AudienceKind says how the user came to match a campaign.
type AudienceKind uint8

// Audience kinds.
const (
	// AudienceRetargeting: a list or rule audience, people who know the brand.
	AudienceRetargeting AudienceKind = iota
	// AudienceLookalike: only a lookalike audience matched.
	AudienceLookalike
)

// Quote is what pricing needs to know about an imp and the user.
type Quote struct {
	FloorMicros int64  // imp.bidfloor in micros of FloorCur
	FloorCur    string // imp.bidfloorcur; empty means USD (the OpenRTB default)
	FirstPrice  bool   // at=1
	Audience    AudienceKind
	// Recency is the time since the user's last product view or cart at
	// this advertiser; zero or negative when unknown.
	Recency time.Duration
}

// Quote prices a bid for the imp, in CPM micros of the campaign currency:
// base CPM × audience × recency × the pacing multiplier, capped at the max
// CPM; in first-price auctions shaded toward the learned clearing price;
// raised to the floor when the floor is below the max CPM. It returns 0 and
// a reason for no bid: a floor above the max CPM (ReasonFloor), a floor in a
// currency the rate table lacks (ReasonCurrency), or a budget that cannot
// take one more impression at that price (ReasonBudget).
func (h Handle) Quote(q Quote) (int64, string) {
	c := h.cfg.c
	p := h.st.p
	floor := q.FloorMicros
	if floor > 0 {
		cur := q.FloorCur
		if cur == "" {
			cur = "USD"
		}
		var ok bool
		if floor, ok = (*p.rates.Load()).Convert(floor, cur, c.Currency); !ok {
			return 0, ReasonCurrency
		}
	}
	maxp := c.Bid.MaxCPMMicros
	if floor > maxp {
		return 0, ReasonFloor
	}
	v := float64(c.Bid.BaseCPMMicros) * h.st.multiplier()
	if q.Audience == AudienceLookalike {
		v *= p.o.Price.Lookalike
	}
	v *= p.o.Price.recency(q.Recency)
	bid := min(int64(v), maxp)
	if q.FirstPrice {
		bid = h.st.market.shade(bid, floor, p.o.Price.MinShade)
	}
	bid = max(bid, floor)
	if bid <= 0 {
		return 0, ReasonFloor
	}
	if impCost(bid) > h.st.left(c) {
		h.st.blocked.Add(1)
		return 0, ReasonBudget
	}
	return bid, ""
}

func (pc *PriceConfig) recency(d time.Duration) float64 {
	if d <= 0 {
		return 1
	}
	for _, s := range pc.Recency {
		if d <= s.Within {
			return s.Mult
		}
	}
	return pc.Stale
}
