package audience

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/chaser-dsp/chaser/lookalike"
)

// LookalikeSpec is what a lookalike audience is made from: the "lookalike"
// object of POST /v1/audiences.
type LookalikeSpec struct {
	// Seed is the id of a list or rule audience of the same advertiser.
	Seed string `json:"seed"`
	// Percent is the expansion's size as a share of the population, 1..10.
	Percent float64 `json:"percent"`
	// IncludeSeed makes the seed's members members of the lookalike too.
	IncludeSeed bool `json:"include_seed"`
}

// LookalikeState is the "lookalike" block of a lookalike audience: its spec
// and the state of its last build.
type LookalikeState struct {
	LookalikeSpec
	// Status is the last build's: building, ready or failed (with Error).
	Status   string            `json:"status"`
	Error    string            `json:"error,omitempty"`
	Progress LookalikeProgress `json:"progress"`
	// Quality is the last successful build's quality report.
	Quality *LookalikeQuality `json:"quality,omitempty"`
	// BuiltAt is when the members were last replaced.
	BuiltAt *time.Time `json:"built_at,omitempty"`
	// AttemptedAt is when the last build started.
	AttemptedAt *time.Time `json:"attempted_at,omitempty"`
	// SeedSizeAtBuild is the seed audience's size when the last build
	// started; a seed that moved by more than the refresh threshold since
	// triggers a rebuild.
	SeedSizeAtBuild int64 `json:"seed_size_at_build"`
}

// LookalikeProgress is a build's progress: done of total steps.
type LookalikeProgress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

// LookalikeQuality is lookalike.Quality as the API shows it.
type LookalikeQuality struct {
	HeldOutRecall    float64 `json:"held_out_recall"`
	RandomRate       float64 `json:"random_rate"`
	Lift             float64 `json:"lift"`
	AUC              float64 `json:"auc"`
	SeedSize         int     `json:"seed_size"`
	SeedInPopulation int     `json:"seed_in_population"`
	PopulationSize   int     `json:"population_size"`
	ExpansionSize    int     `json:"expansion_size"`
	HeldOut          int     `json:"held_out"`
	Note             string  `json:"note"`
}

// LookalikeOptions configure the lookalike builder.
type LookalikeOptions struct {
	// RefreshEvery is how often a lookalike is rebuilt; default 24 h.
	RefreshEvery time.Duration
	// SeedChange is the relative change of the seed's size that triggers a
	// rebuild at the next Maintain; default 0.1.
	SeedChange float64
	// RetryAfter is how long after a failed build Maintain tries again;
	// default 1 h.
	RetryAfter time.Duration
	// RandSeed makes builds deterministic; default 1.
	RandSeed int64
	Logger   *slog.Logger
}

// Lookalikes builds lookalike audiences from a seed audience and the
// lookalike population, one build at a time in a background goroutine, and
// keeps them fresh (Maintain). It owns the "lookalike" block of lookalike
// audiences. Dependencies run one way: audience imports lookalike.
type Lookalikes struct {
	m    *Manager
	pop  *lookalike.Population
	opts LookalikeOptions
	log  *slog.Logger

	mu      sync.Mutex
	pending map[string]bool // queued or running
	queue   chan string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

var (
	lkBuildsReady   = metrics.NewCounter(`chaser_lookalike_builds_total{outcome="ready"}`)
	lkBuildsRefused = metrics.NewCounter(`chaser_lookalike_builds_total{outcome="refused"}`)
	lkBuildsFailed  = metrics.NewCounter(`chaser_lookalike_builds_total{outcome="failed"}`)
	lkBuildSeconds  = metrics.NewHistogram(`chaser_lookalike_build_seconds`)

	// lkPop is the population the gauges below report (the last opened).
	lkPop = new(atomic.Pointer[lookalike.Population])
	_     = metrics.NewGauge(`chaser_lookalike_population_users`, func() float64 { return popStat(func(s lookalike.Stats) float64 { return float64(s.Users) }) })
	_     = metrics.NewGauge(`chaser_lookalike_observations_accepted`, func() float64 { return popStat(func(s lookalike.Stats) float64 { return float64(s.Accepted) }) })
	_     = metrics.NewGauge(`chaser_lookalike_observations_dropped`, func() float64 { return popStat(func(s lookalike.Stats) float64 { return float64(s.Dropped) }) })
	_     = metrics.NewGauge(`chaser_lookalike_population_write_errors`, func() float64 { return popStat(func(s lookalike.Stats) float64 { return float64(s.WriteErrors) }) })
)

func popStat(f func(lookalike.Stats) float64) float64 {
	if p := lkPop.Load(); p != nil {
		return f(p.Stats())
	}
	return 0
}

// NewLookalikes starts the builder of m's lookalike audiences over pop.
// Builds a stop left running are marked failed and queued again.
func NewLookalikes(m *Manager, pop *lookalike.Population, opts LookalikeOptions) (*Lookalikes, error) {
	if opts.RefreshEvery <= 0 {
		opts.RefreshEvery = 24 * time.Hour
	}
	if opts.SeedChange <= 0 {
		opts.SeedChange = 0.1
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Hour
	}
	if opts.RandSeed == 0 {
		opts.RandSeed = 1
	}
	if opts.Logger == nil {
		opts.Logger = m.log
	}
	l := &Lookalikes{m: m, pop: pop, opts: opts, log: opts.Logger, pending: map[string]bool{},
		queue: make(chan string, 1024), done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	lkPop.Store(pop)
	for _, a := range m.List("") {
		if a.Type != TypeLookalike {
			continue
		}
		var s LookalikeState
		_ = json.Unmarshal(a.Lookalike, &s)
		if s.Status == StatusBuilding || a.Status == StatusBuilding {
			err := l.update(a.ID, func(a *Audience, s *LookalikeState) {
				s.Status, s.Error = StatusFailed, "interrupted: the server stopped during the build; retrying"
				a.Status = StatusFailed
			})
			if err != nil {
				return nil, fmt.Errorf("lookalike %s: mark interrupted: %w", a.ID, err)
			}
			l.log.Warn("lookalike build was interrupted; retrying", "audience", a.ID)
			l.enqueue(a.ID)
		}
	}
	go l.run()
	return l, nil
}

// Close stops the builder; a running build stops and is retried at the next
// start. Call it before closing the population.
func (l *Lookalikes) Close() {
	l.cancel()
	<-l.done
}

// Create validates spec (in a.Lookalike) and creates the lookalike audience
// in status building, with its first build queued.
func (l *Lookalikes) Create(a Audience) (Audience, error) {
	a.Type = TypeLookalike
	spec, err := l.validate(a.AdvertiserID, a.Lookalike)
	if err != nil {
		return Audience{}, err
	}
	b, err := json.Marshal(LookalikeState{LookalikeSpec: spec, Status: StatusBuilding})
	if err != nil {
		return Audience{}, err
	}
	a.Lookalike = b
	out, err := l.m.Create(a)
	if err != nil {
		return Audience{}, err
	}
	l.enqueue(out.ID)
	return out, nil
}

func (l *Lookalikes) validate(adv string, raw json.RawMessage) (LookalikeSpec, error) {
	var spec LookalikeSpec
	if len(raw) == 0 || string(raw) == "null" {
		return spec, &FieldError{"lookalike", "required for a lookalike audience"}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return spec, &FieldError{"lookalike", "must be an object with seed, percent and include_seed"}
	}
	if spec.Seed == "" {
		return spec, &FieldError{"lookalike.seed", "required"}
	}
	seed, err := l.m.Get(spec.Seed)
	if err != nil || seed.AdvertiserID != adv {
		return spec, &FieldError{"lookalike.seed", "no such audience of this advertiser"}
	}
	if seed.Type == TypeLookalike {
		return spec, &FieldError{"lookalike.seed", "must be a list or rule audience"}
	}
	if !(spec.Percent >= 1 && spec.Percent <= 10) {
		return spec, &FieldError{"lookalike.percent", "must be between 1 and 10"}
	}
	return spec, nil
}

func (l *Lookalikes) enqueue(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending[id] {
		return
	}
	select {
	case l.queue <- id:
		l.pending[id] = true
	default: // full: Maintain queues it again later
	}
}

func (l *Lookalikes) run() {
	defer close(l.done)
	for {
		select {
		case <-l.ctx.Done():
			return
		case id := <-l.queue:
			l.build(l.ctx, id)
			l.mu.Lock()
			delete(l.pending, id)
			l.mu.Unlock()
		}
	}
}

// Maintain queues the lookalikes due for a rebuild: built RefreshEvery ago,
// failed RetryAfter ago, or whose seed's size moved by more than SeedChange
// since their last build. The program calls it from a ticker.
func (l *Lookalikes) Maintain(now time.Time) {
	for _, a := range l.m.List("") {
		if a.Type != TypeLookalike {
			continue
		}
		var s LookalikeState
		if json.Unmarshal(a.Lookalike, &s) != nil {
			continue
		}
		l.mu.Lock()
		busy := l.pending[a.ID]
		l.mu.Unlock()
		if busy {
			continue
		}
		due := s.AttemptedAt == nil || s.Status == StatusBuilding
		if !due {
			every := l.opts.RefreshEvery
			if s.Status == StatusFailed {
				every = min(every, l.opts.RetryAfter)
			}
			due = now.Sub(*s.AttemptedAt) >= every
		}
		if !due {
			if seed, err := l.m.Get(s.Seed); err == nil {
				was := float64(max(s.SeedSizeAtBuild, 1))
				due = math.Abs(float64(seed.Size)-float64(s.SeedSizeAtBuild))/was > l.opts.SeedChange
			}
		}
		if due {
			l.enqueue(a.ID)
		}
	}
}

// ObserveSiteEvent feeds an advertiser-site event into the population (the
// events code calls it); erased people are ignored.
func (l *Lookalikes) ObserveSiteEvent(p Pseudonym, advertiser, event, category string) {
	if p.IsZero() || l.m.Snapshot().Erased(p) {
		return
	}
	l.pop.ObserveSiteEvent(lookalike.UserID(p), advertiser, event, category)
}

// update applies change to audience id's metadata and lookalike block and
// stores them.
func (l *Lookalikes) update(id string, change func(a *Audience, s *LookalikeState)) error {
	st := l.m.state(id)
	if st == nil {
		return ErrNotFound
	}
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if st.deleted.Load() {
		return ErrNotFound
	}
	var cerr error
	_, err := l.m.saveMeta(st, nil, func(a *Audience) {
		var s LookalikeState
		_ = json.Unmarshal(a.Lookalike, &s)
		change(a, &s)
		b, err := json.Marshal(&s)
		if err != nil {
			cerr = err
			return
		}
		a.Lookalike = b
		a.UpdatedAt = l.m.now().UTC()
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// build runs one build of lookalike audience id and records its outcome.
func (l *Lookalikes) build(ctx context.Context, id string) {
	t0 := time.Now()
	a, err := l.m.Get(id)
	if err != nil {
		return // deleted meanwhile
	}
	var s LookalikeState
	if err := json.Unmarshal(a.Lookalike, &s); err != nil {
		l.finish(id, "failed", fmt.Errorf("bad lookalike block: %w", err), nil, t0)
		return
	}
	seedA, err := l.m.Get(s.Seed)
	if err != nil {
		l.finish(id, "failed", fmt.Errorf("seed audience %s no longer exists", s.Seed), nil, t0)
		return
	}
	now := l.m.now().UTC()
	if err := l.update(id, func(a *Audience, s *LookalikeState) {
		a.Status, s.Status, s.Error = StatusBuilding, StatusBuilding, ""
		s.Progress = LookalikeProgress{}
		s.AttemptedAt, s.SeedSizeAtBuild = &now, seedA.Size
	}); err != nil {
		return
	}
	seed, err := l.m.memberIDs(s.Seed)
	if err != nil {
		l.finish(id, "failed", fmt.Errorf("read seed %s: %w", s.Seed, err), nil, t0)
		return
	}
	if err := l.pop.Flush(); err != nil {
		l.log.Warn("lookalike: population flush", "err", err)
	}
	var lastSaved time.Time
	res, err := lookalike.Build(ctx, l.pop, seed, lookalike.BuildOptions{Percent: s.Percent, IncludeSeed: s.IncludeSeed,
		RandSeed: l.opts.RandSeed, Progress: func(done, total int) {
			if done < total && time.Since(lastSaved) < time.Second {
				return
			}
			lastSaved = time.Now()
			_ = l.update(id, func(_ *Audience, s *LookalikeState) { s.Progress = LookalikeProgress{done, total} })
		}})
	if ctx.Err() != nil {
		return // stopping: the next start marks it interrupted and retries
	}
	if err != nil {
		outcome := "failed"
		if errors.Is(err, lookalike.ErrSeedTooSmall) || errors.Is(err, lookalike.ErrPopulationTooThin) || errors.Is(err, lookalike.ErrInvalidOptions) {
			outcome = "refused"
		}
		l.finish(id, outcome, err, nil, t0)
		return
	}
	if err := l.replaceMembers(id, res.Members); err != nil {
		l.finish(id, "failed", err, nil, t0)
		return
	}
	l.finish(id, "ready", nil, &res.Quality, t0)
}

// finish records a build's outcome.
func (l *Lookalikes) finish(id, outcome string, cause error, q *lookalike.Quality, t0 time.Time) {
	d := time.Since(t0)
	lkBuildSeconds.Update(d.Seconds())
	now := l.m.now().UTC()
	err := l.update(id, func(a *Audience, s *LookalikeState) {
		if cause != nil {
			a.Status, s.Status, s.Error = StatusFailed, StatusFailed, cause.Error()
			return
		}
		a.Status, s.Status, s.Error = StatusReady, StatusReady, ""
		s.BuiltAt = &now
		s.Progress.Done = s.Progress.Total
		s.Quality = &LookalikeQuality{HeldOutRecall: q.HeldOutRecall, RandomRate: q.RandomRate, Lift: q.Lift, AUC: q.AUC,
			SeedSize: q.SeedSize, SeedInPopulation: q.SeedInPopulation, PopulationSize: q.PopulationSize,
			ExpansionSize: q.Expansion, HeldOut: q.HeldOut, Note: q.Note}
	})
	switch outcome {
	case "ready":
		lkBuildsReady.Inc()
		l.log.Info("lookalike built", "audience", id, "lift", q.Lift, "auc", q.AUC, "expansion", q.Expansion,
			"took", d.Round(time.Millisecond))
	case "refused":
		lkBuildsRefused.Inc()
		l.log.Info("lookalike build refused", "audience", id, "reason", cause)
	default:
		lkBuildsFailed.Inc()
		l.log.Error("lookalike build failed", "audience", id, "err", cause)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		l.log.Error("lookalike: record build outcome", "audience", id, "err", err)
	}
}

// replaceMembers makes want exactly audience id's members: adds the new ones
// first (so nobody drops out meanwhile), then removes the others.
func (l *Lookalikes) replaceMembers(id string, want []lookalike.UserID) error {
	have, err := l.m.memberIDs(id)
	if err != nil {
		return fmt.Errorf("read members of %s: %w", id, err)
	}
	cmp := func(a, b lookalike.UserID) int { return bytes.Compare(a[:], b[:]) }
	want = slices.Clone(want)
	slices.SortFunc(want, cmp)
	want = slices.Compact(want)
	slices.SortFunc(have, cmp)
	var add []Member
	var remove []Pseudonym
	i, j := 0, 0
	for i < len(want) || j < len(have) {
		switch {
		case j == len(have) || (i < len(want) && cmp(want[i], have[j]) < 0):
			add = append(add, Member{P: Pseudonym(want[i]), Kind: IDUID})
			i++
		case i == len(want) || cmp(want[i], have[j]) > 0:
			remove = append(remove, Pseudonym(have[j]))
			j++
		default:
			i++
			j++
		}
	}
	if _, err := l.m.AddMembers(id, add); err != nil {
		return err
	}
	if len(remove) > 0 {
		if _, err := l.m.RemoveMembers(id, remove); err != nil {
			return err
		}
	}
	return nil
}

// memberIDs returns the live members of audience id, with the cookie and
// device ids linked to its e-mail and phone members (the ids the bid stream
// carries), in no particular order.
func (m *Manager) memberIDs(id string) ([]lookalike.UserID, error) {
	var mu sync.Mutex
	var out []lookalike.UserID
	_, err := m.ForEachMember(id, func(ps []Pseudonym) {
		mu.Lock()
		for _, p := range ps {
			out = append(out, lookalike.UserID(p))
		}
		mu.Unlock()
	})
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i][:], out[j][:]) < 0 })
	return slices.Compact(out), err
}

// ForEachMember passes every live member of audience id stored under "mem/"
// (and the ids linked to its e-mail and phone members) to visit, in batches,
// possibly from several goroutines at once; it returns how many members
// there were.
func (m *Manager) ForEachMember(id string, visit func([]Pseudonym)) (int64, error) {
	if m.state(id) == nil {
		return 0, ErrNotFound
	}
	if n, ok := m.ruleMembers(id, visit); ok { // a rule audience keeps its members in memory
		return n, nil
	}
	res, err := m.scanAudience(id, m.now().Unix(), false, visit)
	return res.members, err
}
