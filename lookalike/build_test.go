package lookalike

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The small synthetic population (smallSynth: 20 000 users), fed through
// the real Observe path into a real Pebble DB once per test binary and
// shared (read-only) by the Build tests, with two seeds over it: a planted
// one (mostly from two interest groups) and a uniformly random one.
type smallFixture struct {
	pop               *Population
	planted, unplaced *synthWorld
}

var (
	smallOnce sync.Once
	small     smallFixture
	smallErr  error
)

func smallPop(t *testing.T) smallFixture {
	t.Helper()
	smallOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lookalike-test-")
		if err != nil {
			smallErr = err
			return
		}
		db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
		if err != nil {
			smallErr = err
			return
		}
		clk := newClock(synthNow)
		p, err := OpenPopulation(db, PopulationOptions{SampleRate: 1, Now: clk.now})
		if err != nil {
			smallErr = err
			return
		}
		c := smallSynth()
		small.planted = newSynthWorld(c)
		c.Structured = false
		small.unplaced = newSynthWorld(c)
		small.planted.observeAll(t, p)
		small.pop = p
		cleanups = append(cleanups, func() { p.Close(); db.Close(); os.RemoveAll(dir) })
	})
	if smallErr != nil {
		t.Fatal(smallErr)
	}
	if small.pop == nil {
		t.Fatal("small population failed to load")
	}
	return small
}

func TestBuildPlanted(t *testing.T) {
	f := smallPop(t)
	w := f.planted
	r, err := Build(context.Background(), f.pop, w.seed, BuildOptions{Percent: 5, RandSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	q := r.Quality
	t.Logf("planted: %+v", q)
	c := w.c
	if q.SeedSize != c.SeedSize+c.SeedAbsent || q.SeedInPopulation != c.SeedSize || q.PopulationSize != c.Users {
		t.Errorf("sizes: seed %d, in population %d, population %d", q.SeedSize, q.SeedInPopulation, q.PopulationSize)
	}
	if q.HeldOut != c.SeedSize/5 || q.Expansion != c.Users/20 || len(r.Members) != q.Expansion {
		t.Errorf("held out %d, expansion %d, members %d", q.HeldOut, q.Expansion, len(r.Members))
	}
	if q.Lift < 3 {
		t.Errorf("lift %.2f: held-out seed members found at less than 3× the random rate", q.Lift)
	}
	if q.AUC <= 0.7 {
		t.Errorf("AUC %.3f ≤ 0.7", q.AUC)
	}
	if want := q.HeldOutRecall / q.RandomRate; q.Lift != want {
		t.Errorf("lift %v != recall/random %v", q.Lift, want)
	}
	if strings.HasPrefix(q.Note, "no structure") || q.Note == "" {
		t.Errorf("note %q", q.Note)
	}

	// The members: distinct, in the population, not in the seed, and
	// (the ground truth) rich in the seed's interest groups.
	index := map[UserID]int{}
	for i := 0; i < c.Users; i++ {
		index[synthUID(uint64(i))] = i
	}
	seen := map[UserID]bool{}
	inTarget := 0
	for _, m := range r.Members {
		i, ok := index[m]
		switch {
		case !ok:
			t.Fatalf("member %x is not in the population", m)
		case seen[m]:
			t.Fatalf("member %x twice", m)
		case w.inSeed[i]:
			t.Fatalf("seed member %x in the expansion", m)
		}
		seen[m] = true
		if g := w.group[i]; g >= 0 && int(g) < c.TargetGroups {
			inTarget++
		}
	}
	targetAll := 0
	for _, g := range w.group {
		if g >= 0 && int(g) < c.TargetGroups {
			targetAll++
		}
	}
	share, base := float64(inTarget)/float64(len(r.Members)), float64(targetAll)/float64(c.Users)
	t.Logf("target-group share: %.3f of the expansion, %.3f of the population", share, base)
	if share < 3*base {
		t.Errorf("target-group share of the expansion %.3f < 3× its population share %.3f", share, base)
	}
}

func TestBuildNoStructure(t *testing.T) {
	f := smallPop(t)
	r, err := Build(context.Background(), f.pop, f.unplaced.seed, BuildOptions{Percent: 5, RandSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	q := r.Quality
	t.Logf("no structure: %+v", q)
	if q.Lift >= 2 {
		t.Errorf("lift %.2f ≥ 2 for a random seed", q.Lift)
	}
	if q.AUC < 0.4 || q.AUC > 0.6 {
		t.Errorf("AUC %.3f far from 0.5 for a random seed", q.AUC)
	}
	if !strings.HasPrefix(q.Note, "no structure: lift near 1") {
		t.Errorf("note %q does not say there is no structure", q.Note)
	}
}

func TestBuildDeterministic(t *testing.T) {
	f := smallPop(t)
	opts := BuildOptions{Percent: 2, RandSeed: 7}
	a, err := Build(context.Background(), f.pop, f.planted.seed, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The seed's order and duplicates do not matter.
	seed := slices.Clone(f.planted.seed)
	slices.Reverse(seed)
	seed = append(seed, seed[:10]...)
	b, err := Build(context.Background(), f.pop, seed, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Members, b.Members) || a.Quality != b.Quality {
		t.Errorf("two builds with RandSeed 7 differ: %+v vs %+v", a.Quality, b.Quality)
	}
	c, err := Build(context.Background(), f.pop, f.planted.seed, BuildOptions{Percent: 2, RandSeed: 8})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a.Members, c.Members) {
		t.Error("RandSeed 8 gave exactly the audience of RandSeed 7")
	}
}

func TestBuildIncludeSeedAndPercent(t *testing.T) {
	f := smallPop(t)
	w := f.planted
	r, err := Build(context.Background(), f.pop, w.seed, BuildOptions{Percent: 10, IncludeSeed: true, HoldoutFraction: 0.5, RandSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	q := r.Quality
	if q.Expansion != w.c.Users/10 || q.HeldOut != w.c.SeedSize/2 {
		t.Errorf("expansion %d, held out %d", q.Expansion, q.HeldOut)
	}
	if len(r.Members) != q.Expansion+len(w.seed) {
		t.Fatalf("%d members, want the expansion %d and the seed %d", len(r.Members), q.Expansion, len(w.seed))
	}
	if got, want := sortedIDs(r.Members[q.Expansion:]), sortedIDs(w.seed); !slices.Equal(got, want) {
		t.Error("the seed after the expansion is not the seed")
	}
	if s := sortedIDs(r.Members); len(slices.Compact(s)) != len(r.Members) {
		t.Error("members repeat")
	}
}

func TestBuildRefuses(t *testing.T) {
	f := smallPop(t)
	ctx := context.Background()
	seed := f.planted.seed
	for _, tc := range []struct {
		name string
		seed []UserID
		opts BuildOptions
		want error
		msg  string
	}{
		{"seed too small", seed[:99], BuildOptions{Percent: 5}, ErrSeedTooSmall, "at least 100 members present"},
		{"seed absent", seed[len(seed)-50:], BuildOptions{Percent: 5}, ErrSeedTooSmall, "0 of its 50"},
		{"seed too big for the population", uidRange(0, 2001), BuildOptions{Percent: 5}, ErrPopulationTooThin, "at least 10 times"},
		{"percent too small", seed, BuildOptions{Percent: 0.5}, ErrInvalidOptions, "Percent"},
		{"percent too big", seed, BuildOptions{Percent: 11}, ErrInvalidOptions, "Percent"},
		{"holdout", seed, BuildOptions{Percent: 5, HoldoutFraction: 0.9}, ErrInvalidOptions, "HoldoutFraction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Build(ctx, f.pop, tc.seed, tc.opts)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v (%v), want %v mentioning %q", err, r, tc.want, tc.msg)
			}
		})
	}
	// A seed of exactly the minimum is accepted.
	if _, err := Build(ctx, f.pop, seed[:100], BuildOptions{Percent: 1}); err != nil {
		t.Errorf("a seed of 100 present members: %v", err)
	}
	// A thin population.
	clk := newClock(synthNow)
	p, _ := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now})
	for i := 0; i < 999; i++ {
		p.Observe(uid(i), Observation{Domain: "a.example", Hour: -1})
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	_, err := Build(ctx, p, uidRange(0, 99), BuildOptions{Percent: 5})
	if !errors.Is(err, ErrPopulationTooThin) || !strings.Contains(err.Error(), "at least 1000 active users") {
		t.Errorf("999 users: %v", err)
	}
	if _, err := Build(ctx, nil, nil, BuildOptions{Percent: 5}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("nil population: %v", err)
	}
}

func uidRange(lo, hi int) []UserID {
	var out []UserID
	for i := lo; i < hi; i++ {
		out = append(out, uid(i))
	}
	return out
}

func TestBuildIgnoresExpiredUsers(t *testing.T) {
	clk := newClock(synthNow)
	p, db := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now})
	// An unreadable record is skipped and counted.
	if err := db.Set(userKey(nil, uid(5000)), []byte("garbage"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	observe := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p.Observe(uid(i), Observation{Domain: "a.example", Country: "KOR", Hour: i % 24})
		}
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	observe(0, 1500)
	clk.advance(20 * 24 * time.Hour)
	observe(1500, 3000)
	clk.advance(15 * 24 * time.Hour) // the first 1500 are 35 days old
	ctx := context.Background()
	r, err := Build(ctx, p, uidRange(1500, 1650), BuildOptions{Percent: 5})
	if err != nil {
		t.Fatal(err)
	}
	if r.Quality.PopulationSize != 1500 || r.Quality.SeedInPopulation != 150 {
		t.Errorf("population %d, seed present %d: expired users counted", r.Quality.PopulationSize, r.Quality.SeedInPopulation)
	}
	if c := p.Stats().Corrupt; c != 1 {
		t.Errorf("Stats.Corrupt %d, want the one unreadable record", c)
	}
	for _, m := range r.Members {
		if slices.Contains(uidRange(0, 1500), m) {
			t.Fatal("an expired user is in the audience")
		}
	}
	if _, err := Build(ctx, p, uidRange(0, 150), BuildOptions{Percent: 5}); !errors.Is(err, ErrSeedTooSmall) {
		t.Errorf("a seed of expired users: %v", err)
	}
	if p.Size() != 3000 {
		t.Errorf("Size %d before Expire", p.Size())
	}
}

func TestBuildProgressAndCancel(t *testing.T) {
	f := smallPop(t)
	var calls [][2]int
	_, err := Build(context.Background(), f.pop, f.planted.seed, BuildOptions{Percent: 5, Progress: func(done, total int) {
		calls = append(calls, [2]int{done, total})
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 3 {
		t.Fatalf("%d progress calls", len(calls))
	}
	for i, c := range calls {
		if c[0] > c[1] || c[1] != calls[0][1] || (i > 0 && c[0] <= calls[i-1][0]) {
			t.Fatalf("progress not monotone within total: %v", calls)
		}
	}
	if last := calls[len(calls)-1]; last[0] != last[1] {
		t.Errorf("last progress %v, want done == total", last)
	}

	ctx, cancel := context.WithCancel(context.Background())
	_, err = Build(ctx, f.pop, f.planted.seed, BuildOptions{Percent: 5, Progress: func(done, total int) {
		if done > total/2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled build: %v", err)
	}
}
