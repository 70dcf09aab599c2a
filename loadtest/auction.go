package loadtest

import (
	"math"
	"math/rand/v2"
)

// LossReason is an OpenRTB 2.6 loss reason code (list 5.25), sent in
// ${AUCTION_LOSS}.
type LossReason int

// The loss reasons the simulated exchange uses.
const (
	LossWon              LossReason = 0   // bid won
	LossInvalidResponse  LossReason = 3   // invalid bid response (unknown imp, bad mtype)
	LossInvalidAuctionID LossReason = 5   // response id is not the request id
	LossMissingMarkup    LossReason = 7   // no adm
	LossBelowFloor       LossReason = 100 // bid below the auction floor
	LossOutbid           LossReason = 102 // lost to a higher bid
)

// secondPriceIncrement is what a second-price winner pays above the price it
// had to beat: one cent CPM.
const secondPriceIncrement = 0.01

// Outcome is the fate of one bid in an imp's auction. Prices are CPM.
type Outcome struct {
	Won bool
	// Clearing is what the winner pays (0 for a loser).
	Clearing float64
	// MinToWin is the lowest price that would have won: the highest of the
	// floor, the competing price and the other bids for the imp.
	MinToWin float64
	// Loss is LossWon for the winner, else why the bid lost.
	Loss LossReason
}

// Auction runs one imp's auction: prices are the bidder's eligible bids for
// the imp (in arrival order), floor the imp's floor and competing the best
// price from other buyers (0 for none). The highest bid wins if it is at
// least the floor and strictly above competing; a tie among the bidder's own
// bids goes to the earlier one. A first-price winner pays its bid; a
// second-price winner pays MinToWin plus one cent, capped at its bid.
func Auction(kind AuctionType, floor, competing float64, prices []float64) []Outcome {
	out := make([]Outcome, len(prices))
	best, second := -1, -1 // indexes of the two highest bids at or above the floor
	for i, p := range prices {
		if p < floor || !(p > 0) {
			continue
		}
		switch {
		case best < 0 || p > prices[best]:
			best, second = i, best
		case second < 0 || p > prices[second]:
			second = i
		}
	}
	base := math.Max(floor, competing)
	for i, p := range prices {
		other := base
		if i != best && best >= 0 {
			other = math.Max(other, prices[best])
		} else if i == best && second >= 0 {
			other = math.Max(other, prices[second])
		}
		o := Outcome{MinToWin: other}
		switch {
		case p < floor || !(p > 0):
			o.Loss = LossBelowFloor
		case i == best && p > competing:
			o.Won = true
			o.Loss = LossWon
			o.Clearing = p
			if kind == SecondPrice {
				o.Clearing = math.Min(p, roundMicros(other+secondPriceIncrement))
			}
		default:
			o.Loss = LossOutbid
		}
		out[i] = o
	}
	return out
}

// draw returns one competing price; 0 when there is no competition.
func (c Competition) draw(rng *rand.Rand) float64 {
	if c.Median <= 0 {
		return 0
	}
	if c.Sigma == 0 {
		return c.Median
	}
	return roundMicros(c.Median * math.Exp(c.Sigma*rng.NormFloat64()))
}

// roundMicros rounds a currency amount to millionths, the precision of money
// in Chaser.
func roundMicros(v float64) float64 { return math.Round(v*1e6) / 1e6 }
