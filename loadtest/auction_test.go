package loadtest

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestAuction(t *testing.T) {
	won := func(clearing, minToWin float64) Outcome {
		return Outcome{Won: true, Clearing: clearing, MinToWin: minToWin, Loss: LossWon}
	}
	lost := func(reason LossReason, minToWin float64) Outcome {
		return Outcome{Loss: reason, MinToWin: minToWin}
	}
	tests := []struct {
		name      string
		kind      AuctionType
		floor     float64
		competing float64
		prices    []float64
		want      []Outcome
	}{
		{"first price beats competition", FirstPrice, 0.5, 1.0, []float64{2.0}, []Outcome{won(2.0, 1.0)}},
		{"second price pays competition plus a cent", SecondPrice, 0.5, 1.0, []float64{2.0}, []Outcome{won(1.01, 1.0)}},
		{"second price pays the floor plus a cent", SecondPrice, 1.5, 1.0, []float64{2.0}, []Outcome{won(1.51, 1.5)}},
		{"second price capped at the bid", SecondPrice, 0, 1.995, []float64{2.0}, []Outcome{won(2.0, 1.995)}},
		{"second price without competition or floor", SecondPrice, 0, 0, []float64{2.0}, []Outcome{won(0.01, 0)}},
		{"first price without competition", FirstPrice, 0, 0, []float64{0.3}, []Outcome{won(0.3, 0)}},
		{"outbid by competition", FirstPrice, 0.5, 3.0, []float64{2.0}, []Outcome{lost(LossOutbid, 3.0)}},
		{"tie with competition loses", FirstPrice, 0, 2.0, []float64{2.0}, []Outcome{lost(LossOutbid, 2.0)}},
		{"below floor", FirstPrice, 1.0, 0.2, []float64{0.9}, []Outcome{lost(LossBelowFloor, 1.0)}},
		{"at the floor wins", FirstPrice, 1.0, 0.2, []float64{1.0}, []Outcome{won(1.0, 1.0)}},
		{"zero price never wins", FirstPrice, 0, 0, []float64{0}, []Outcome{lost(LossBelowFloor, 0)}},
		{"negative price never wins", SecondPrice, 0, 0, []float64{-1}, []Outcome{lost(LossBelowFloor, 0)}},
		{"own bids compete, first price", FirstPrice, 0.5, 1.0, []float64{1.5, 2.5, 2.0},
			[]Outcome{lost(LossOutbid, 2.5), won(2.5, 2.0), lost(LossOutbid, 2.5)}},
		{"own bids compete, second price", SecondPrice, 0.5, 1.0, []float64{1.5, 2.5, 2.0},
			[]Outcome{lost(LossOutbid, 2.5), won(2.01, 2.0), lost(LossOutbid, 2.5)}},
		{"own tie goes to the earlier bid", FirstPrice, 0, 1.0, []float64{2.0, 2.0},
			[]Outcome{won(2.0, 2.0), lost(LossOutbid, 2.0)}},
		{"below-floor bid does not set the second price", SecondPrice, 1.0, 0.5, []float64{0.8, 3.0},
			[]Outcome{lost(LossBelowFloor, 3.0), won(1.01, 1.0)}},
		{"everyone outbid", SecondPrice, 0, 5.0, []float64{1.0, 2.0},
			[]Outcome{lost(LossOutbid, 5.0), lost(LossOutbid, 5.0)}},
		{"no bids", FirstPrice, 1, 1, nil, []Outcome{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Auction(tc.kind, tc.floor, tc.competing, tc.prices)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Auction(%s, floor %v, competing %v, %v)\n got %+v\nwant %+v", tc.kind, tc.floor, tc.competing, tc.prices, got, tc.want)
			}
		})
	}
}

func TestCompetitionDraw(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	if got := (Competition{}).draw(rng); got != 0 {
		t.Errorf("no competition drew %v", got)
	}
	if got := (Competition{Median: 1.25}).draw(rng); got != 1.25 {
		t.Errorf("sigma 0 drew %v, want the median", got)
	}
	c := Competition{Median: 2, Sigma: 0.6}
	below := 0
	const n = 10000
	for range n {
		p := c.draw(rng)
		if p <= 0 {
			t.Fatalf("drew %v", p)
		}
		if p < c.Median {
			below++
		}
	}
	// The median of a log-normal is its median: about half fall below it.
	if below < n*45/100 || below > n*55/100 {
		t.Errorf("%d of %d draws below the median", below, n)
	}
}
