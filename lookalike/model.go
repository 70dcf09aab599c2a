package lookalike

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// The model: logistic regression over the hashed features, seed members as
// positives and the rest of the population as unlabeled negatives (PU
// learning: ranking by P(seed | x) ranks by P(like the seed | x) when the
// seed is a random sample of the people like it). Trained by FTRL-Proximal
// (McMahan et al. 2013) with per-coordinate learning rates, L1 (which keeps
// the features that separate the seed and zeroes the rest) and L2. Each
// epoch sees every positive and a fresh random sample of negRatio times as
// many unlabeled users, so training costs O(seed), not O(population).
type modelParams struct {
	alpha, beta, l1, l2 float64
	epochs              int
	negRatio            int // unlabeled users sampled per positive per epoch
	minDF               uint32
}

var defaultModel = modelParams{
	alpha:    0.05,
	beta:     1,
	l1:       1,
	l2:       1,
	epochs:   4,
	negRatio: 4,
	minDF:    5,
}

// ftrl is the per-coordinate FTRL-Proximal state; index len-1 is the bias.
type ftrl struct {
	p    modelParams
	z, n []float64
}

func newFTRL(p modelParams) *ftrl {
	return &ftrl{p: p, z: make([]float64, 1<<featureBits+1), n: make([]float64, 1<<featureBits+1)}
}

func (m *ftrl) weight(i uint32) float64 {
	z := m.z[i]
	if math.Abs(z) <= m.p.l1 {
		return 0
	}
	s := m.p.l1
	if z < 0 {
		s = -s
	}
	return -(z - s) / ((m.p.beta+math.Sqrt(m.n[i]))/m.p.alpha + m.p.l2)
}

// update takes one gradient step on example (fs, y); fs are bucket ids
// already filtered to the usable ones, plus the bias.
func (m *ftrl) update(fs []uint32, w []float64, y float64) {
	var s float64
	for k, i := range fs {
		w[k] = m.weight(i)
		s += w[k]
	}
	g := sigmoid(s) - y
	g2 := g * g
	for k, i := range fs {
		n := m.n[i]
		sigma := (math.Sqrt(n+g2) - math.Sqrt(n)) / m.p.alpha
		m.z[i] += g - sigma*w[k]
		m.n[i] = n + g2
	}
}

func sigmoid(x float64) float64 {
	if x > 35 {
		x = 35
	} else if x < -35 {
		x = -35
	}
	return 1 / (1 + math.Exp(-x))
}

// weights returns the final dense weights (bias last) as float32.
func (m *ftrl) weights() []float32 {
	w := make([]float32, len(m.z))
	for i := range w {
		w[i] = float32(m.weight(uint32(i)))
	}
	return w
}

// train fits the model with positive[i] marking the positives, and returns
// its weights. It is deterministic for a given rng.
func train(ctx context.Context, d *dataset, positive []bool, npos int, p modelParams, rng *rand.Rand, prog *progress, share int) ([]float32, error) {
	m := newFTRL(p)
	bias := uint32(1 << featureBits)
	nu := d.n() - npos
	neg := min(p.negRatio*npos, nu)
	order := make([]int32, 0, npos+neg)
	var fs []uint32
	var w []float64
	for epoch := 0; epoch < p.epochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		order = order[:0]
		for i, pos := range positive {
			if pos {
				order = append(order, int32(i))
			}
		}
		for k := 0; k < neg; {
			i := rng.IntN(d.n())
			if positive[i] {
				continue
			}
			order = append(order, int32(i))
			k++
		}
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, i := range order {
			fs = fs[:0]
			for _, b := range d.features(int(i)) {
				if d.df[b] >= p.minDF {
					fs = append(fs, b)
				}
			}
			fs = append(fs, bias)
			if cap(w) < len(fs) {
				w = make([]float64, len(fs)*2)
			}
			y := 0.0
			if positive[i] {
				y = 1
			}
			m.update(fs, w[:len(fs)], y)
		}
		prog.add(share / p.epochs)
	}
	return m.weights(), nil
}

// score writes every user's linear score (the log-odds of being like the
// seed) to out, in parallel over GOMAXPROCS workers.
func score(ctx context.Context, d *dataset, w []float32, out []float32) error {
	bias := w[len(w)-1]
	workers := runtime.GOMAXPROCS(0)
	n := d.n()
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if (i-lo)&0xffff == 0 && ctx.Err() != nil {
					return
				}
				s := bias
				for _, b := range d.features(i) {
					s += w[b]
				}
				out[i] = s
			}
		}(lo, hi)
	}
	wg.Wait()
	return ctx.Err()
}
