package lookalike

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Limits below which Build refuses.
const (
	// MinSeedMembers is the fewest seed members present in the population.
	MinSeedMembers = 100
	// MinPopulation is the fewest active users in the population.
	MinPopulation = 1000
	// MinPopulationPerSeed is how many times larger than the seed's present
	// members the population must be.
	MinPopulationPerSeed = 10
)

var (
	// ErrSeedTooSmall: fewer than MinSeedMembers seed members are present in
	// the population.
	ErrSeedTooSmall = fmt.Errorf("lookalike: seed too small: it must have at least %d members present in the population", MinSeedMembers)
	// ErrPopulationTooThin: fewer than MinPopulation active users, or fewer
	// than MinPopulationPerSeed times the seed's present members.
	ErrPopulationTooThin = fmt.Errorf("lookalike: population too thin: it must have at least %d active users and at least %d times the seed members present in it", MinPopulation, MinPopulationPerSeed)
	// ErrInvalidOptions: a BuildOptions field is out of range.
	ErrInvalidOptions = errors.New("lookalike: invalid build options")
)

// BuildOptions configure one Build.
type BuildOptions struct {
	// Percent is the size of the expansion as a share of the active
	// population, in percent, 1..10.
	Percent float64
	// IncludeSeed appends the seed's (deduplicated) members after the
	// expansion in Result.Members. The expansion itself never holds a seed
	// member.
	IncludeSeed bool
	// HoldoutFraction is the share of the seed's present members held out
	// from training to measure quality, in (0, 0.5]. Default 0.2.
	HoldoutFraction float64
	// RandSeed makes the build deterministic: the same population, seed and
	// options give the same result.
	RandSeed int64
	// Progress, if set, is called from Build's goroutine with a monotone
	// done ≤ total; the last call has done == total.
	Progress func(done, total int)
}

// DefaultHoldoutFraction is BuildOptions.HoldoutFraction's default.
const DefaultHoldoutFraction = 0.2

// Result is a built lookalike audience.
type Result struct {
	// Members are the expansion, most seed-like first, followed by the seed
	// with IncludeSeed.
	Members []UserID
	Quality Quality
}

// Quality reports how well the model finds seed-like users, measured on the
// held-out part of the seed with a model trained without it.
type Quality struct {
	SeedSize         int // distinct seed members given
	SeedInPopulation int // of those, active in the population
	PopulationSize   int // active users
	Expansion        int // users in the expansion: Percent of PopulationSize
	HeldOut          int // seed members held out of training

	// HeldOutRecall is the share of held-out members that the held-out model
	// puts in an expansion of the same size.
	HeldOutRecall float64
	// RandomRate is the recall a random expansion would get: expansion size
	// over candidates (population less the training seed).
	RandomRate float64
	// Lift is HeldOutRecall / RandomRate: 1 means no better than random.
	Lift float64
	// AUC is the chance that a held-out member scores above a random
	// non-seed user (0.5 = random, 1 = perfect).
	AUC float64
	// Note says in words what the numbers mean.
	Note string
}

type role uint8

const (
	roleNone    role = iota // population, not in the seed
	roleTrain               // seed member used in training
	roleHeldOut             // seed member held out
)

// Build learns what sets the seed apart from the population and returns the
// Percent % of the population most like the seed (seed members excluded),
// with a quality report. It reads the population as it is stored (call
// Population.Flush first for the latest observations) in one pass, holding
// about 4 bytes per user feature plus 50 bytes per user in memory.
func Build(ctx context.Context, pop *Population, seed []UserID, opts BuildOptions) (*Result, error) {
	return build(ctx, pop, seed, opts, logistic{defaultModel}, nil)
}

// model learns from a dataset with positives marked and scores every user:
// the higher, the more like the positives.
type model interface {
	fitScore(ctx context.Context, f *fit, out []float32) error
}

// fit is one model fit's input.
type fit struct {
	d        *dataset
	positive []bool // positive[i]: user i is a training seed member
	npos     int    // number of positives
	rng      *rand.Rand
	prog     *progress
	share    int // progress units this fit may report
	st       *buildStats
}

// logistic is the production model (see model.go).
type logistic struct{ p modelParams }

func (l logistic) fitScore(ctx context.Context, f *fit, out []float32) error {
	t := time.Now()
	w, err := train(ctx, f.d, f.positive, f.npos, l.p, f.rng, f.prog, f.share)
	if err != nil {
		return err
	}
	f.st.train += time.Since(t)
	t = time.Now()
	err = score(ctx, f.d, w, out)
	f.st.score += time.Since(t)
	return err
}

// buildStats times a build's phases, for benchmarks.
type buildStats struct {
	load, train, score, rank time.Duration
	features                 int // features held in the arena
}

func build(ctx context.Context, pop *Population, seed []UserID, opts BuildOptions, m model, st *buildStats) (*Result, error) {
	if pop == nil {
		return nil, fmt.Errorf("%w: nil population", ErrInvalidOptions)
	}
	if opts.HoldoutFraction == 0 {
		opts.HoldoutFraction = DefaultHoldoutFraction
	}
	if !(opts.Percent >= 1 && opts.Percent <= 10) {
		return nil, fmt.Errorf("%w: Percent %v: must be in 1..10", ErrInvalidOptions, opts.Percent)
	}
	if !(opts.HoldoutFraction > 0 && opts.HoldoutFraction <= 0.5) {
		return nil, fmt.Errorf("%w: HoldoutFraction %v: must be in (0, 0.5]", ErrInvalidOptions, opts.HoldoutFraction)
	}
	if st == nil {
		st = &buildStats{}
	}

	// Progress units: reading the population, then fitting and scoring
	// the held-out model and the final model, one estimated population each.
	est := max(pop.Size(), 1)
	prog := &progress{fn: opts.Progress, total: 3 * est}

	t := time.Now()
	d, err := loadDataset(ctx, pop, prog)
	if err != nil {
		return nil, err
	}
	st.load = time.Since(t)
	st.features = d.nf
	prog.set(est)

	seeds := dedupSeed(seed)
	q := Quality{SeedSize: len(seeds), PopulationSize: d.n()}
	inPop := joinSeed(d.uids, seeds)
	q.SeedInPopulation = len(inPop)
	switch {
	case d.n() < MinPopulation:
		return nil, fmt.Errorf("%w (it has %d active users)", ErrPopulationTooThin, d.n())
	case len(inPop) < MinSeedMembers:
		return nil, fmt.Errorf("%w (%d of its %d members are)", ErrSeedTooSmall, len(inPop), len(seeds))
	case d.n() < MinPopulationPerSeed*len(inPop):
		return nil, fmt.Errorf("%w (it has %d active users for %d seed members)", ErrPopulationTooThin, d.n(), len(inPop))
	}
	q.Expansion = max(1, int(math.Round(opts.Percent/100*float64(d.n()))))

	// Hold out a random part of the seed.
	rng := rand.New(rand.NewPCG(uint64(opts.RandSeed), 0x6c6f6f6b616c696b))
	shuffled := slices.Clone(inPop)
	rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
	q.HeldOut = max(1, int(math.Round(opts.HoldoutFraction*float64(len(inPop)))))
	roles := make([]role, d.n())
	positive := make([]bool, d.n())
	for k, i := range shuffled {
		if k < q.HeldOut {
			roles[i] = roleHeldOut
		} else {
			roles[i] = roleTrain
			positive[i] = true
		}
	}

	// Quality: fit without the held-out members, rank everyone but the
	// training seed, and see where the held-out members land.
	scores := make([]float32, d.n())
	f := &fit{d: d, positive: positive, npos: len(inPop) - q.HeldOut, rng: rng, prog: prog, share: est, st: st}
	if err := m.fitScore(ctx, f, scores); err != nil {
		return nil, err
	}
	t = time.Now()
	ranked := rank(scores, roles, func(r role) bool { return r != roleTrain }, nil)
	evaluate(&q, ranked, roles)
	st.rank += time.Since(t)
	prog.set(2 * est)

	// The audience: fit on the whole seed, rank the non-seed users.
	for _, i := range inPop {
		positive[i] = true
	}
	f.npos = len(inPop)
	if err := m.fitScore(ctx, f, scores); err != nil {
		return nil, err
	}
	t = time.Now()
	ranked = rank(scores, roles, func(r role) bool { return r == roleNone }, ranked)
	st.rank += time.Since(t)
	n := min(q.Expansion, len(ranked))
	members := make([]UserID, 0, n+len(seeds)*boolInt(opts.IncludeSeed))
	for _, r := range ranked[:n] {
		members = append(members, d.uids[r.i])
	}
	if opts.IncludeSeed {
		members = append(members, seeds...)
	}
	prog.finish()
	return &Result{Members: members, Quality: q}, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// dedupSeed returns the distinct seed members, sorted.
func dedupSeed(seed []UserID) []UserID {
	s := slices.Clone(seed)
	slices.SortFunc(s, func(a, b UserID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(s)
}

// joinSeed returns the indices in uids (sorted) of the members of seeds
// (sorted, distinct).
func joinSeed(uids, seeds []UserID) []int32 {
	var out []int32
	i, j := 0, 0
	for i < len(uids) && j < len(seeds) {
		switch c := bytes.Compare(uids[i][:], seeds[j][:]); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			out = append(out, int32(i))
			i++
			j++
		}
	}
	return out
}

// ranked is one candidate's score and index.
type ranked struct {
	s float32
	i uint32
}

// rank returns the users whose role passes keep, best score first, ties in
// index order (so the order is deterministic). It reuses buf.
func rank(scores []float32, roles []role, keep func(role) bool, buf []ranked) []ranked {
	out := buf[:0]
	for i, s := range scores {
		if keep(roles[i]) {
			out = append(out, ranked{s: s, i: uint32(i)})
		}
	}
	slices.SortFunc(out, func(a, b ranked) int {
		switch {
		case a.s > b.s:
			return -1
		case a.s < b.s:
			return 1
		case a.i < b.i:
			return -1
		case a.i > b.i:
			return 1
		}
		return 0
	})
	return out
}

// evaluate fills q's recall, random rate, lift, AUC and note from the
// candidates ranked by the held-out model.
func evaluate(q *Quality, ranked []ranked, roles []role) {
	k := min(q.Expansion, len(ranked))
	found := 0
	for _, r := range ranked[:k] {
		if roles[r.i] == roleHeldOut {
			found++
		}
	}
	q.HeldOutRecall = float64(found) / float64(q.HeldOut)
	q.RandomRate = float64(k) / float64(len(ranked))
	q.Lift = q.HeldOutRecall / q.RandomRate
	q.AUC = auc(ranked, roles)
	q.Note = note(q, found)
}

// auc is the Mann-Whitney statistic of held-out members against non-seed
// users over candidates ranked best first, counting ties as one half.
func auc(ranked []ranked, roles []role) float64 {
	var npos, nneg float64
	for _, r := range ranked {
		if roles[r.i] == roleHeldOut {
			npos++
		} else {
			nneg++
		}
	}
	if npos == 0 || nneg == 0 {
		return 0.5
	}
	var sum, negAbove float64
	for i := 0; i < len(ranked); {
		j := i
		var p, n float64
		for ; j < len(ranked) && ranked[j].s == ranked[i].s; j++ {
			if roles[ranked[j].i] == roleHeldOut {
				p++
			} else {
				n++
			}
		}
		// Positives in this group beat every negative below it.
		sum += p * (nneg - negAbove - n)
		sum += 0.5 * p * n
		negAbove += n
		i = j
	}
	return sum / (npos * nneg)
}

// note puts the quality numbers in words.
func note(q *Quality, found int) string {
	// Under no structure, found is binomial(HeldOut, RandomRate).
	expect := float64(q.HeldOut) * q.RandomRate
	sd := math.Sqrt(expect * (1 - q.RandomRate))
	switch {
	case q.Lift < 1.5 || float64(found) < expect+2*sd || q.AUC < 0.55:
		return fmt.Sprintf("no structure: lift near 1 (%.2f, AUC %.2f): held-out seed members are found about as often as random users; the seed does not differ from the population in what Chaser observes, so the expansion is close to a random sample", q.Lift, q.AUC)
	case q.Lift < 2:
		return fmt.Sprintf("weak structure: lift %.2f, AUC %.2f: the expansion is only somewhat more seed-like than a random sample", q.Lift, q.AUC)
	case q.HeldOut < 50:
		return fmt.Sprintf("lift %.2f, AUC %.2f, but measured on only %d held-out members: a rough estimate", q.Lift, q.AUC, q.HeldOut)
	}
	return fmt.Sprintf("held-out seed members found at %.1f× the random rate (AUC %.2f)", q.Lift, q.AUC)
}

// progress reports monotone progress to an optional callback.
type progress struct {
	fn          func(done, total int)
	done, total int
}

func (p *progress) add(k int) {
	if p != nil {
		p.set(p.done + k)
	}
}

// set reports done, kept monotone and below total until finish.
func (p *progress) set(done int) {
	if p == nil || p.fn == nil {
		return
	}
	done = min(done, p.total-1)
	if done <= p.done {
		return
	}
	p.done = done
	p.fn(done, p.total)
}

// finish reports done == total.
func (p *progress) finish() {
	if p == nil || p.fn == nil {
		return
	}
	p.done = p.total
	p.fn(p.total, p.total)
}
