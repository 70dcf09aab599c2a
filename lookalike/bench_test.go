package lookalike

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Benchmarks. BenchmarkBuild runs over 100 k users by default; the target
// size (a 100 k seed over 2 M users) needs LOOKALIKE_BIG=1, and
// LOOKALIKE_USERS=N picks any size:
//
//	LOOKALIKE_BIG=1 go test -run '^$' -bench BenchmarkBuild -benchtime 1x -timeout 30m ./lookalike/

func benchUsers() int {
	if s := os.Getenv("LOOKALIKE_USERS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	if os.Getenv("LOOKALIKE_BIG") != "" {
		return 2_000_000
	}
	return 100_000
}

// benchPop is a population written once per process and size, shared by
// the benchmarks that read it.
type benchPop struct {
	dir   string
	db    *pebble.DB
	pop   *Population
	world *synthWorld
	setup time.Duration
}

var (
	benchPopsMu sync.Mutex
	benchPops   = map[string]*benchPop{}
)

// cleanups run after all tests and benchmarks (shared fixtures).
var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	benchPopsMu.Lock()
	for _, bp := range benchPops {
		bp.pop.Close()
		bp.db.Close()
		os.RemoveAll(bp.dir)
	}
	benchPopsMu.Unlock()
	os.Exit(code)
}

func sharedBenchPop(b *testing.B, c synthConfig) *benchPop {
	benchPopsMu.Lock()
	defer benchPopsMu.Unlock()
	name := fmt.Sprintf("%+v", c)
	if bp, ok := benchPops[name]; ok {
		return bp
	}
	t0 := time.Now()
	dir, err := os.MkdirTemp("", "lookalike-bench-")
	if err != nil {
		b.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}, DisableWAL: true})
	if err != nil {
		b.Fatal(err)
	}
	w := newSynthWorld(c)
	w.bulkLoad(b, db, synthNow, DefaultMaxFeaturesPerUser)
	// Settle the LSM, as in a long-running store, so background
	// compactions do not compete with the measured builds.
	if err := db.Compact(context.Background(), []byte(keyPrefix), []byte("lk0"), true); err != nil {
		b.Fatal(err)
	}
	clk := newClock(synthNow)
	pop, err := OpenPopulation(db, PopulationOptions{Now: clk.now})
	if err != nil {
		b.Fatal(err)
	}
	bp := &benchPop{dir: dir, db: db, pop: pop, world: w, setup: time.Since(t0)}
	benchPops[name] = bp
	b.Logf("population of %d users written in %v", c.Users, bp.setup.Round(time.Millisecond))
	return bp
}

// peakHeap samples HeapInuse until stopped and returns the peak.
func peakHeap() (stop func() uint64) {
	var (
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

func BenchmarkBuild(b *testing.B) {
	c := bigSynth(benchUsers())
	bp := sharedBenchPop(b, c)
	benchBuild(b, bp, logistic{defaultModel})
}

func benchBuild(b *testing.B, bp *benchPop, m model) {
	ctx := context.Background()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	stop := peakHeap()
	var (
		r         *Result
		st        buildStats
		lift, auc float64 // means over the iterations (each holds out another part of the seed)
	)
	for i := 0; i < b.N; i++ {
		st = buildStats{}
		var err error
		r, err = build(ctx, bp.pop, bp.world.seed, BuildOptions{Percent: 5, RandSeed: int64(i)}, m, &st)
		if err != nil {
			b.Fatal(err)
		}
		lift += r.Quality.Lift / float64(b.N)
		auc += r.Quality.AUC / float64(b.N)
	}
	b.StopTimer()
	peak := stop()
	cpu := cpuTime() - cpu0
	q := r.Quality
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(q.PopulationSize)/perOp, "users/s")
	b.ReportMetric(float64(q.PopulationSize)/st.score.Seconds()*2, "scored-users/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	// CPU seconds (user+system) per build: steadier than wall time on a
	// machine shared with other work.
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(lift, "lift")
	b.ReportMetric(auc, "AUC")
	b.Logf("users %d seed %d/%d: load %v train %v score %v rank %v; %.1f features/user; base heap %d MiB; quality %+v",
		q.PopulationSize, q.SeedInPopulation, q.SeedSize, st.load.Round(time.Millisecond), st.train.Round(time.Millisecond),
		st.score.Round(time.Millisecond), st.rank.Round(time.Millisecond), float64(st.features)/float64(q.PopulationSize),
		base.HeapInuse>>20, q)
}

// BenchmarkScore measures scoring alone: one pass of the trained model
// over the population held in memory.
func BenchmarkScore(b *testing.B) {
	bp := sharedBenchPop(b, bigSynth(benchUsers()))
	ctx := context.Background()
	d, err := loadDataset(ctx, bp.pop, nil)
	if err != nil {
		b.Fatal(err)
	}
	seed := joinSeed(d.uids, dedupSeed(bp.world.seed))
	positive := make([]bool, d.n())
	for _, i := range seed {
		positive[i] = true
	}
	w, err := train(ctx, d, positive, len(seed), defaultModel, rand.New(rand.NewPCG(1, 2)), nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]float32, d.n())
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if err := score(ctx, d, w, out); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(d.n())*float64(b.N)/b.Elapsed().Seconds(), "users/s")
	if cpu > 0 {
		b.ReportMetric(float64(d.n())*float64(b.N)/cpu.Seconds(), "users/cpu-s")
	}
}

// BenchmarkModels compares the production model with the alternatives on
// the benchmark population (LOOKALIKE_USERS sets its size; the default is
// 100 k users).
func BenchmarkModels(b *testing.B) {
	c := bigSynth(benchUsers())
	for _, world := range []string{"planted", "weak"} {
		cw := c
		if world == "weak" {
			cw.GroupVisit, cw.MeanObs = 0.1, 4
		}
		bp := sharedBenchPop(b, cw)
		for _, mm := range []struct {
			name string
			m    model
		}{
			{"logistic-ftrl", logistic{defaultModel}},
			{"naive-bayes", naiveBayes{alpha: 1}},
			{"minhash-lsh-32x2", minHashLSH{bands: 32, rows: 2, smooth: 5}},
		} {
			b.Run(world+"/"+mm.name, func(b *testing.B) { benchBuild(b, bp, mm.m) })
		}
	}
}

var sinkBool bool

func BenchmarkObserve(b *testing.B) {
	obs := Observation{
		Domain: "www.news.example", Categories: []string{"IAB12-3", "IAB12"},
		Country: "KOR", Region: "11", DeviceType: 4, OS: "android", Hour: 21,
	}
	open := func(b *testing.B, opts PopulationOptions) *Population {
		db := openDB(b, b.TempDir())
		p, err := OpenPopulation(db, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close(); db.Close() })
		return p
	}
	u := synthUID(7)
	b.Run("unsampled", func(b *testing.B) {
		// A rate so low that no call is kept: the cost of the sampling check.
		p := open(b, PopulationOptions{SampleRate: 1e-18})
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p.Observe(u, obs)
		}
	})
	b.Run("dropped", func(b *testing.B) {
		// Every call sampled, hashed and offered to a full queue (no
		// writer runs).
		db := openDB(b, b.TempDir())
		defer db.Close()
		p, err := newPopulation(db, PopulationOptions{SampleRate: 1, QueueSize: 1})
		if err != nil {
			b.Fatal(err)
		}
		p.Observe(u, obs)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p.Observe(u, obs)
		}
		b.StopTimer()
		if s := p.Stats(); s.Dropped != uint64(b.N) {
			b.Fatalf("dropped %d of %d", s.Dropped, b.N)
		}
	})
	b.Run("sampled-default", func(b *testing.B) {
		// The default 10 % rate, with the writer running.
		p := open(b, PopulationOptions{})
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			u[0] = byte(i)
			p.Observe(u, obs)
		}
	})
	b.Run("writer", func(b *testing.B) {
		// What the background writer sustains: every call kept, each for
		// a distinct user (a Pebble read-modify-write per observation),
		// until all are stored.
		p := open(b, PopulationOptions{SampleRate: 1, QueueSize: 1 << 20})
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p.Observe(synthUID(uint64(i)), obs)
			if i&0xffff == 0xffff {
				if err := p.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := p.Flush(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
	})
	b.Run("sampled-default-parallel", func(b *testing.B) {
		p := open(b, PopulationOptions{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			u := synthUID(9)
			i := 0
			for pb.Next() {
				i++
				u[0] = byte(i)
				p.Observe(u, obs)
			}
		})
		s := p.Stats()
		b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
	})
}
