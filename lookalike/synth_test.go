package lookalike

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A synthetic population with planted structure. Users belong (or not) to
// interest groups; a group has its own domains and apps, content categories,
// and mild device, OS and hour preferences. Everyone also browses a shared,
// Zipf-popular long tail of domains, which carries no group signal. A
// "structured" seed is drawn mostly from a few target groups (plus random
// noise users), so group membership drives both the features and the seed;
// an unstructured seed is drawn uniformly.

type synthConfig struct {
	Users           int
	Groups          int     // interest groups
	GroupShare      float64 // share of users in one group; the others in none
	DomainsPerGroup int
	GlobalDomains   int     // the shared long tail
	GroupVisit      float64 // share of a group member's visits within the group
	MeanObs         float64 // mean bid requests per user (at least 1)
	SiteEventShare  float64 // share of users with advertiser-site events
	TargetGroups    int     // groups the structured seed comes from
	SeedSize        int
	SeedNoise       float64 // share of the structured seed drawn at random
	SeedAbsent      int     // extra seed ids never seen in the population
	Structured      bool
	RandSeed        uint64
}

// smallSynth is the test population: big enough for stable numbers, small
// enough for the race detector.
func smallSynth() synthConfig {
	return synthConfig{
		Users:           20000,
		Groups:          20,
		GroupShare:      0.8,
		DomainsPerGroup: 30,
		GlobalDomains:   5000,
		GroupVisit:      0.3,
		MeanObs:         6,
		SiteEventShare:  0.05,
		TargetGroups:    2,
		SeedSize:        1000,
		SeedNoise:       0.3,
		SeedAbsent:      50,
		Structured:      true,
		RandSeed:        1,
	}
}

// bigSynth scales the same world to users users and a seed of 5 %.
func bigSynth(users int) synthConfig {
	c := smallSynth()
	c.Users = users
	c.Groups = 20
	c.GlobalDomains = 50000
	c.DomainsPerGroup = 100
	c.SeedSize = users / 20
	c.SeedAbsent = c.SeedSize / 20
	return c
}

// synthUID is user i's pseudonym: a bijective mix of i, so distinct.
func synthUID(i uint64) UserID {
	var u UserID
	binary.BigEndian.PutUint64(u[:8], mix64(i))
	binary.BigEndian.PutUint64(u[8:], mix64(i^0x9e3779b97f4a7c15))
	return u
}

func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

var (
	synthCountries = []string{"KOR", "KOR", "KOR", "KOR", "KOR", "KOR", "KOR", "USA", "JPN", "VNM"}
	synthOS        = []string{"android", "ios", "windows", "macos"}
	synthDevices   = []int{4, 1, 2, 5}
)

type synthWorld struct {
	c          synthConfig
	group      []int16    // per user, -1 none
	seed       []UserID   // the seed (with absent ids)
	inSeed     []bool     // per user
	globalCats [][]string // per global domain
	groupCats  [][]string // per group
}

func newSynthWorld(c synthConfig) *synthWorld {
	rng := rand.New(rand.NewPCG(c.RandSeed, 1))
	w := &synthWorld{c: c, group: make([]int16, c.Users), inSeed: make([]bool, c.Users)}
	for i := range w.group {
		w.group[i] = -1
		if rng.Float64() < c.GroupShare {
			w.group[i] = int16(rng.IntN(c.Groups))
		}
	}
	cat := func() string { return fmt.Sprintf("IAB%d-%d", 1+rng.IntN(26), 1+rng.IntN(10)) }
	w.globalCats = make([][]string, c.GlobalDomains)
	for i := range w.globalCats {
		w.globalCats[i] = []string{cat()}
		if rng.IntN(2) == 0 {
			w.globalCats[i] = append(w.globalCats[i], cat())
		}
	}
	w.groupCats = make([][]string, c.Groups)
	for g := range w.groupCats {
		w.groupCats[g] = []string{cat(), cat(), cat()}
	}

	// The seed.
	var picked []int
	if c.Structured {
		var target []int
		for i, g := range w.group {
			if g >= 0 && int(g) < c.TargetGroups {
				target = append(target, i)
			}
		}
		rng.Shuffle(len(target), func(a, b int) { target[a], target[b] = target[b], target[a] })
		n := min(len(target), int(math.Round((1-c.SeedNoise)*float64(c.SeedSize))))
		picked = append(picked, target[:n]...)
		for _, i := range picked {
			w.inSeed[i] = true
		}
	}
	for len(picked) < c.SeedSize {
		i := rng.IntN(c.Users)
		if !w.inSeed[i] {
			w.inSeed[i] = true
			picked = append(picked, i)
		}
	}
	for _, i := range picked {
		w.seed = append(w.seed, synthUID(uint64(i)))
	}
	for k := 0; k < c.SeedAbsent; k++ {
		w.seed = append(w.seed, synthUID(uint64(c.Users+k)))
	}
	return w
}

// synthEvent is one generated event: a bid request or a site event.
type synthEvent struct {
	obs              Observation
	site             bool
	adv, ev, siteCat string
}

// user generates user i's events, calling emit for each. Deterministic in
// (config, i).
func (w *synthWorld) user(i int, emit func(*synthEvent)) {
	c := &w.c
	rng := rand.New(rand.NewPCG(c.RandSeed^0xabcdef, uint64(i)))
	g := int(w.group[i])
	country := synthCountries[rng.IntN(len(synthCountries))]
	region := fmt.Sprintf("R%d", rng.IntN(10))
	os := rng.IntN(len(synthOS))
	dev := rng.IntN(len(synthDevices))
	hour := rng.IntN(24)
	if g >= 0 && rng.Float64() < 0.4 {
		os, dev = g%len(synthOS), (g/len(synthOS))%len(synthDevices)
		hour = (g * 5) % 24
	}
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(c.GlobalDomains-1))
	nobs := 1 + int(rng.ExpFloat64()*(c.MeanObs-1))
	var ev synthEvent
	for k := 0; k < nobs; k++ {
		ev = synthEvent{}
		o := &ev.obs
		if g >= 0 && rng.Float64() < c.GroupVisit {
			d := rng.IntN(c.DomainsPerGroup)
			if d%3 == 0 {
				o.Bundle = fmt.Sprintf("com.group%d.app%d", g, d)
			} else {
				o.Domain = fmt.Sprintf("www.g%d-site%d.example", g, d)
			}
			cats := w.groupCats[g]
			o.Categories = cats[d%len(cats) : d%len(cats)+1]
		} else {
			d := int(zipf.Uint64())
			o.Domain = fmt.Sprintf("site%d.example", d)
			o.Categories = w.globalCats[d]
		}
		o.Country, o.Region = country, region
		o.OS, o.DeviceType = synthOS[os], synthDevices[dev]
		o.Hour = (hour + rng.IntN(5) - 2 + 24) % 24
		emit(&ev)
	}
	if rng.Float64() < c.SiteEventShare {
		adv := fmt.Sprintf("adv_%d", rng.IntN(50))
		cat := w.globalCats[rng.IntN(len(w.globalCats))][0]
		if g >= 0 {
			cat = w.groupCats[g][rng.IntN(3)]
		}
		for _, e := range []string{"page_view", "product_view", "add_to_cart"}[:1+rng.IntN(3)] {
			ev = synthEvent{site: true, adv: adv, ev: e, siteCat: cat}
			emit(&ev)
		}
	}
}

// observeAll feeds every user's events through the real Observe path
// (SampleRate must be 1), flushing often enough that nothing is dropped.
func (w *synthWorld) observeAll(t testing.TB, p *Population) {
	for i := 0; i < w.c.Users; i++ {
		u := synthUID(uint64(i))
		w.user(i, func(e *synthEvent) {
			if e.site {
				p.ObserveSiteEvent(u, e.adv, e.ev, e.siteCat)
			} else {
				p.Observe(u, e.obs)
			}
		})
		if i%2000 == 1999 {
			if err := p.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Dropped != 0 {
		t.Fatalf("%d observations dropped while loading", s.Dropped)
	}
}

// bulkLoad writes every user's record directly (what the writer would
// write), for populations too big to feed through Observe quickly.
func (w *synthWorld) bulkLoad(t testing.TB, db *pebble.DB, now time.Time, maxFeatures int) {
	b := db.NewBatch()
	var (
		fs   []feat
		fset featureSet
		key  []byte
		val  []byte
	)
	unix := now.Unix()
	day := dayOf(unix)
	for i := 0; i < w.c.Users; i++ {
		fs = fs[:0]
		w.user(i, func(e *synthEvent) {
			fset = featureSet{}
			if e.site {
				siteEventFeatures(&fset, e.adv, e.ev, e.siteCat)
			} else {
				observationFeatures(&fset, &e.obs)
			}
			for _, id := range fset.id[:fset.n] {
				fs = append(fs, feat{id: id, count: 1, day: day})
			}
		})
		fs = mergeFeatures(fs, 0, maxFeatures)
		key = userKey(key[:0], synthUID(uint64(i)))
		val = encodeRecord(val[:0], unix, fs)
		if err := b.Set(key, val, nil); err != nil {
			t.Fatal(err)
		}
		if b.Len() > 16<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			b.Close()
			b = db.NewBatch()
		}
	}
	if err := b.Set([]byte(sizeKey), sizeValue(int64(w.c.Users)), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	b.Close()
}

// quietLogger keeps Pebble's informational logs out of test output.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}

func openDB(t testing.TB, dir string) *pebble.DB {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// testClock is an injectable clock, safe to read from the writer while a
// test moves it.
type testClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *testClock) now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

var synthNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func sortedIDs(ids []UserID) []UserID {
	s := slices.Clone(ids)
	slices.SortFunc(s, func(a, b UserID) int { return slices.Compare(a[:], b[:]) })
	return s
}
