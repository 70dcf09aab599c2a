package pacing

import (
	"math/bits"
	"sync/atomic"
)

// Price buckets: 8 per octave from 2^13 micros (0.008 CPM) up, enough for a
// KRW or JPY CPM in the tens of thousands.
const (
	bucketMinExp = 13
	bucketSubs   = 8
	nBuckets     = 22 * bucketSubs
)

// bucketOf returns the price bucket of a CPM in micros.
func bucketOf(micros int64) int {
	if micros < 1<<bucketMinExp {
		return 0
	}
	e := bits.Len64(uint64(micros)) - 1
	sub := int(micros>>(e-3)) & (bucketSubs - 1)
	b := (e-bucketMinExp)*bucketSubs + sub
	return min(b, nBuckets-1)
}

// bucketHigh returns the smallest price above bucket b.
func bucketHigh(b int) int64 {
	e := b/bucketSubs + bucketMinExp
	sub := int64(b % bucketSubs)
	return (bucketSubs + sub + 1) << (e - 3)
}

// market learns, for first-price auctions, how likely a bid at a price is
// to win: from the minimum bid to win exchanges report (${AUCTION_MIN_TO_WIN}
// on win and loss notices) when there are enough of those, else from the
// share of bids won per price bucket. Counters are atomics written by the
// bid path and notices; the curve the bid path reads is rebuilt by Tick.
type market struct {
	bids  [nBuckets]atomic.Int64
	wins  [nBuckets]atomic.Int64
	mtw   [nBuckets]atomic.Int64
	curve atomic.Pointer[winCurve]
}

// winCurve is W(p): the estimated probability that a first-price bid of
// bucketHigh(b) wins, for buckets with ok[b].
type winCurve struct {
	source string // "min_to_win" or "win_rate"
	w      [nBuckets]float64
	ok     [nBuckets]bool
}

// Minimum observations before a curve is trusted.
const (
	minMTWSamples = 50
	minBidSamples = 200
	minBucketBids = 10
)

func (m *market) bid(price int64)      { m.bids[bucketOf(price)].Add(1) }
func (m *market) win(price int64)      { m.wins[bucketOf(price)].Add(1) }
func (m *market) minToWin(price int64) { m.mtw[bucketOf(price)].Add(1) }

// rebuild recomputes the win curve from the counters, then halves them when
// decay is set so old market conditions fade.
func (m *market) rebuild(decay bool) {
	var mtw, bids, wins [nBuckets]float64
	var nm, nb float64
	for i := range mtw {
		mtw[i] = float64(m.mtw[i].Load())
		bids[i] = float64(m.bids[i].Load())
		wins[i] = min(float64(m.wins[i].Load()), bids[i])
		nm += mtw[i]
		nb += bids[i]
	}
	switch {
	case nm >= minMTWSamples:
		c := &winCurve{source: "min_to_win"}
		cum := 0.0
		for i := range mtw {
			cum += mtw[i]
			c.w[i], c.ok[i] = cum/nm, true
		}
		m.curve.Store(c)
	case nb >= minBidSamples:
		m.curve.Store(isotonicCurve(&bids, &wins))
	default:
		m.curve.Store(nil)
	}
	if decay {
		for i := range m.bids {
			for _, c := range []*atomic.Int64{&m.bids[i], &m.wins[i], &m.mtw[i]} {
				if v := c.Load(); v > 0 {
					c.Add(-(v / 2))
				}
			}
		}
	}
}

// isotonicCurve fits a non-decreasing win rate over price buckets with
// enough bids (pool adjacent violators, weighted by bids).
func isotonicCurve(bids, wins *[nBuckets]float64) *winCurve {
	type block struct {
		w, n     float64
		from, to int
	}
	var st []block
	for i := range bids {
		if bids[i] < minBucketBids {
			continue
		}
		st = append(st, block{w: wins[i] / bids[i], n: bids[i], from: i, to: i})
		for len(st) > 1 && st[len(st)-2].w > st[len(st)-1].w {
			a, b := st[len(st)-2], st[len(st)-1]
			st = st[:len(st)-2]
			st = append(st, block{w: (a.w*a.n + b.w*b.n) / (a.n + b.n), n: a.n + b.n, from: a.from, to: b.to})
		}
	}
	if len(st) == 0 {
		return nil
	}
	c := &winCurve{source: "win_rate"}
	for _, bl := range st {
		for i := bl.from; i <= bl.to; i++ {
			if bids[i] >= minBucketBids {
				c.w[i], c.ok[i] = bl.w, true
			}
		}
	}
	return c
}

// shade returns the first-price bid for a campaign valuing the impression at
// v micros CPM: the price p in [lo, v] that maximises the expected surplus
// (v − p) · W(p), never below minFrac·v. With no trusted curve it bids v.
func (m *market) shade(v, lo int64, minFrac float64) int64 {
	c := m.curve.Load()
	if c == nil || v <= 0 {
		return v
	}
	lo = max(lo, int64(float64(v)*minFrac))
	best, bestU := v, 0.0
	for b := bucketOf(lo); b < nBuckets; b++ {
		p := bucketHigh(b)
		if p > v {
			break
		}
		if !c.ok[b] || p < lo {
			continue
		}
		if u := float64(v-p) * c.w[b]; u > bestU {
			best, bestU = p, u
		}
	}
	return best
}
