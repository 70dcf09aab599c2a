package lookalike

import (
	"context"
	"math"
	"runtime"
	"sync"
	"time"
)

// Alternative models, kept in tests to measure the production model
// against (see doc.go for the numbers).

// minHashLSH scores a user by the density of seed members among the users
// that share its LSH buckets: MinHash signatures of the feature sets
// (k = bands × rows independent hash functions), banded; a user's score is
// the mean over bands of the smoothed seed share of its bucket.
type minHashLSH struct {
	bands, rows int
	smooth      float64 // pseudo-count pulling a bucket's share to the seed's base rate
}

func (m minHashLSH) fitScore(ctx context.Context, f *fit, out []float32) error {
	t := time.Now()
	d := f.d
	k := m.bands * m.rows
	n := d.n()
	keys := make([]uint64, n*m.bands) // user i's band keys at [i*bands, (i+1)*bands)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			sig := make([]uint32, k)
			for i := lo; i < hi; i++ {
				for j := range sig {
					sig[j] = math.MaxUint32
				}
				for _, b := range d.features(i) {
					if d.df[b] < defaultModel.minDF {
						continue
					}
					for j := range sig {
						if h := uint32(mix64(uint64(b) ^ uint64(j)<<32)); h < sig[j] {
							sig[j] = h
						}
					}
				}
				for bd := 0; bd < m.bands; bd++ {
					h := uint64(bd) + 1
					for _, v := range sig[bd*m.rows : (bd+1)*m.rows] {
						h = mix64(h ^ uint64(v))
					}
					keys[i*m.bands+bd] = h
				}
			}
		}(lo, hi)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	type cnt struct{ seed, all float64 }
	buckets := make(map[uint64]cnt, n)
	for i := 0; i < n; i++ {
		for _, key := range keys[i*m.bands : (i+1)*m.bands] {
			c := buckets[key]
			c.all++
			if f.positive[i] {
				c.seed++
			}
			buckets[key] = c
		}
	}
	base := float64(f.npos) / float64(n)
	for i := 0; i < n; i++ {
		var s float64
		for _, key := range keys[i*m.bands : (i+1)*m.bands] {
			c := buckets[key]
			if f.positive[i] { // leave the user itself out
				c.seed--
				c.all--
			}
			s += (c.seed + m.smooth*base) / (c.all + m.smooth)
		}
		out[i] = float32(s / float64(m.bands))
	}
	f.st.score += time.Since(t)
	return nil
}

// naiveBayes scores a user by the sum over its features of the log ratio
// of the feature's frequency among positives to that among the unlabeled
// (Bernoulli naive Bayes without the absence terms: "feature lift").
type naiveBayes struct{ alpha float64 }

func (m naiveBayes) fitScore(ctx context.Context, f *fit, out []float32) error {
	t := time.Now()
	d := f.d
	pos := make([]float64, 1<<featureBits)
	for i, p := range f.positive {
		if p {
			for _, b := range d.features(i) {
				pos[b]++
			}
		}
	}
	np, nu := float64(f.npos), float64(d.n()-f.npos)
	w := make([]float32, 1<<featureBits+1)
	for b := range pos {
		if d.df[b] < defaultModel.minDF {
			continue
		}
		u := float64(d.df[b]) - pos[b]
		w[b] = float32(math.Log((pos[b]+m.alpha)/(np+2*m.alpha)) - math.Log((u+m.alpha)/(nu+2*m.alpha)))
	}
	f.st.train += time.Since(t)
	t = time.Now()
	err := score(ctx, d, w, out)
	f.st.score += time.Since(t)
	return err
}
