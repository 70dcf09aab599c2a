package lookalike

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// openPop opens a population on a fresh Pebble DB in t.TempDir(), closed at
// the end of the test.
func openPop(t *testing.T, opts PopulationOptions) (*Population, *pebble.DB) {
	t.Helper()
	db := openDB(t, t.TempDir())
	p, err := OpenPopulation(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		db.Close()
	})
	return p, db
}

// readUser returns u's stored record, or ok == false.
func readUser(t *testing.T, db *pebble.DB, u UserID) (lastSeen int64, fs []feat, ok bool) {
	t.Helper()
	v, closer, err := db.Get(userKey(nil, u))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	lastSeen, fs, err = decodeRecord(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return lastSeen, fs, true
}

func hasFeature(fs []feat, id uint32) bool {
	return slices.ContainsFunc(fs, func(f feat) bool { return f.id == id })
}

func uid(i int) UserID { return synthUID(uint64(i)) }

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts PopulationOptions
		want string // substring of the error; "" = valid
	}{
		{PopulationOptions{}, ""},
		{PopulationOptions{SampleRate: 1}, ""},
		{PopulationOptions{SampleRate: -0.1}, "SampleRate"},
		{PopulationOptions{SampleRate: 1.5}, "SampleRate"},
		{PopulationOptions{MaxFeaturesPerUser: 256}, "MaxFeaturesPerUser"},
		{PopulationOptions{MaxFeaturesPerUser: -1}, "MaxFeaturesPerUser"},
		{PopulationOptions{TTL: time.Minute}, "TTL"},
		{PopulationOptions{QueueSize: -1}, "QueueSize"},
		{PopulationOptions{BatchSize: -1}, "BatchSize"},
		{PopulationOptions{FlushInterval: -time.Second}, "FlushInterval"},
	} {
		o := tc.opts
		o.EnsureDefaults()
		err := o.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.opts, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: got %v, want an error about %s", tc.opts, err, tc.want)
		}
	}
	if _, err := OpenPopulation(nil, PopulationOptions{}); err == nil {
		t.Error("OpenPopulation(nil) succeeded")
	}
}

func TestObserveStoresFeatures(t *testing.T) {
	clk := newClock(synthNow)
	p, db := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now})
	u := uid(1)
	p.Observe(u, Observation{
		Domain: "WWW.News.Example", Categories: []string{"IAB12-3"}, Country: "KOR", Region: "11",
		DeviceType: 4, OS: "Android", Hour: 21,
	})
	p.Observe(u, Observation{Bundle: "com.game.app", Hour: -1})
	p.ObserveSiteEvent(u, "adv_1", "add_to_cart", "shoes")
	p.Observe(uid(2), Observation{Hour: -1}) // no feature: not stored
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	lastSeen, fs, ok := readUser(t, db, u)
	if !ok {
		t.Fatal("user not stored")
	}
	if lastSeen != synthNow.Unix() {
		t.Errorf("last seen %d, want %d", lastSeen, synthNow.Unix())
	}
	for name, id := range map[string]uint32{
		"domain, case and www. folded": featureString(nsDomain, "news.example"),
		"bundle":                       featureString(nsBundle, "com.game.app"),
		"category":                     featureString(nsCategory, "IAB12-3"),
		"parent category":              featureString(nsCategory, "IAB12"),
		"country":                      featureString(nsCountry, "KOR"),
		"region":                       featurePair(nsRegion, "KOR", "11"),
		"device type":                  featureInt(nsDevice, 4),
		"os":                           featureString(nsOS, "android"),
		"hour bucket":                  featureInt(nsHour, 5),
		"site advertiser":              featureString(nsSiteAdv, "adv_1"),
		"site event":                   featurePair(nsSiteEvent, "adv_1", "add_to_cart"),
		"site category":                featureString(nsSiteCat, "shoes"),
		"site advertiser category":     featurePair(nsSiteAdvCat, "adv_1", "shoes"),
	} {
		if !hasFeature(fs, id) {
			t.Errorf("missing feature: %s", name)
		}
	}
	if len(fs) != 13 {
		t.Errorf("%d features stored, want 13", len(fs))
	}
	if _, _, ok := readUser(t, db, uid(2)); ok {
		t.Error("a user observed without any feature was stored")
	}
	if p.Size() != 1 {
		t.Errorf("Size %d, want 1", p.Size())
	}
}

func TestFeaturesBoundedPerUser(t *testing.T) {
	clk := newClock(synthNow)
	p, db := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now, MaxFeaturesPerUser: 10})
	u := uid(1)
	// 30 domains over 30 days; the oldest feature lives 30 days.
	for d := 0; d < 30; d++ {
		p.Observe(u, Observation{Domain: fmt.Sprintf("d%d.example", d), Hour: -1})
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		clk.advance(24 * time.Hour)
	}
	_, fs, _ := readUser(t, db, u)
	if len(fs) != 10 {
		t.Fatalf("%d features stored, want 10", len(fs))
	}
	for d := 20; d < 30; d++ {
		if !hasFeature(fs, featureString(nsDomain, fmt.Sprintf("d%d.example", d))) {
			t.Errorf("the recent domain d%d was evicted", d)
		}
	}
	if !slices.IsSortedFunc(fs, func(a, b feat) int { return int(int64(a.id) - int64(b.id)) }) {
		t.Error("features not sorted by id")
	}
}

func TestFeatureCountsAndStaleFeatures(t *testing.T) {
	clk := newClock(synthNow)
	p, db := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now, TTL: 7 * 24 * time.Hour})
	u := uid(1)
	for i := 0; i < 3; i++ {
		p.Observe(u, Observation{Domain: "old.example", Hour: -1})
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	_, fs, _ := readUser(t, db, u)
	if len(fs) != 1 || fs[0].count != 3 {
		t.Fatalf("features %+v, want old.example seen 3 times", fs)
	}
	clk.advance(10 * 24 * time.Hour)
	p.Observe(u, Observation{Domain: "new.example", Hour: -1})
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	lastSeen, fs, _ := readUser(t, db, u)
	if len(fs) != 1 || fs[0].id != featureString(nsDomain, "new.example") {
		t.Errorf("features %+v: the feature older than TTL should be gone", fs)
	}
	if lastSeen != clk.now().Unix() {
		t.Errorf("last seen not advanced")
	}
}

func TestExpire(t *testing.T) {
	clk := newClock(synthNow)
	p, db := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now})
	obs := Observation{Domain: "a.example", Hour: -1}
	for i := 0; i < 100; i++ {
		p.Observe(uid(i), obs)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	clk.advance(20 * 24 * time.Hour)
	for i := 0; i < 40; i++ { // seen again
		p.Observe(uid(i), obs)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Expire(); err != nil || n != 0 {
		t.Fatalf("Expire before TTL: removed %d, %v", n, err)
	}
	clk.advance(11 * 24 * time.Hour) // 31 days after the first sighting
	n, err := p.Expire()
	if err != nil {
		t.Fatal(err)
	}
	if n != 60 || p.Size() != 40 {
		t.Fatalf("removed %d, size %d; want 60 removed, 40 left", n, p.Size())
	}
	for i := 0; i < 100; i++ {
		_, _, ok := readUser(t, db, uid(i))
		if ok != (i < 40) {
			t.Errorf("user %d stored = %v", i, ok)
		}
	}
	if s := p.Stats(); s.Expired != 60 {
		t.Errorf("Stats.Expired %d", s.Expired)
	}
	// The size survives a reopen.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p2, err := OpenPopulation(db, PopulationOptions{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if p2.Size() != 40 {
		t.Errorf("Size after reopen %d, want 40", p2.Size())
	}
}

func TestExpireManyInChunks(t *testing.T) {
	clk := newClock(synthNow)
	p, _ := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now})
	n := expireChunk*2 + 17
	for i := 0; i < n; i++ {
		p.Observe(uid(i), Observation{Domain: "a.example", Hour: -1})
		if i%10000 == 0 {
			if err := p.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	clk.advance(31 * 24 * time.Hour)
	removed, err := p.Expire()
	if err != nil || removed != n || p.Size() != 0 {
		t.Fatalf("removed %d of %d (%v), size %d", removed, n, err, p.Size())
	}
}

func TestErase(t *testing.T) {
	clk := newClock(synthNow)
	p, db := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now, FlushInterval: time.Hour})
	for i := 0; i < 10; i++ {
		p.Observe(uid(i), Observation{Domain: "a.example", Hour: -1})
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	// An observation still queued (FlushInterval is long) must not bring
	// the user back after Erase.
	p.Observe(uid(3), Observation{Domain: "b.example", Hour: -1})
	if err := p.Erase(uid(3)); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := readUser(t, db, uid(3)); ok {
		t.Fatal("erased user still stored")
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := readUser(t, db, uid(3)); ok {
		t.Fatal("erased user came back")
	}
	if p.Size() != 9 {
		t.Errorf("Size %d, want 9", p.Size())
	}
	if _, _, ok := readUser(t, db, uid(4)); !ok {
		t.Error("another user was erased")
	}
	// Erasing an unknown user is not an error and changes nothing.
	if err := p.Erase(uid(99)); err != nil {
		t.Fatal(err)
	}
	if p.Size() != 9 || p.Stats().Erased != 1 {
		t.Errorf("Size %d, Erased %d", p.Size(), p.Stats().Erased)
	}
	// Erase works after Close too.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Erase(uid(4)); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := readUser(t, db, uid(4)); ok {
		t.Error("erase after Close left the user")
	}
}

func TestCloseThenObserve(t *testing.T) {
	p, db := openPop(t, PopulationOptions{SampleRate: 1, FlushInterval: time.Hour})
	p.Observe(uid(1), Observation{Domain: "a.example", Hour: -1})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := readUser(t, db, uid(1)); !ok {
		t.Error("Close did not write what was queued")
	}
	p.Observe(uid(2), Observation{Domain: "a.example", Hour: -1})
	if s := p.Stats(); s.Dropped != 1 {
		t.Errorf("Dropped %d after Close, want 1", s.Dropped)
	}
	if err := p.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestQueueFullDrops(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	p, err := newPopulation(db, PopulationOptions{SampleRate: 1, QueueSize: 3}) // no writer yet
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		p.Observe(uid(i), Observation{Domain: "a.example", Hour: -1})
	}
	if s := p.Stats(); s.Accepted != 3 || s.Dropped != 7 || s.Queued != 3 {
		t.Fatalf("stats %+v, want 3 accepted and queued, 7 dropped", s)
	}
	go p.run()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Size() != 3 {
		t.Errorf("Size %d, want 3", p.Size())
	}
}

func TestSampleRate(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	const calls = 100000
	p, err := newPopulation(db, PopulationOptions{SampleRate: 0.1, QueueSize: calls})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < calls; i++ {
		p.Observe(uid(i), Observation{Domain: "a.example", Hour: -1})
	}
	// Binomial(100000, 0.1): mean 10000, sd 95; the bounds are 20 sd away.
	if a := p.Stats().Accepted; a < 8000 || a > 12000 {
		t.Errorf("accepted %d of %d at rate 0.1", a, calls)
	}
	// Site events are not sampled.
	before := p.Stats().Accepted
	for i := 0; i < 100; i++ {
		p.ObserveSiteEvent(uid(i), "adv_1", "purchase", "")
	}
	if a := p.Stats().Accepted - before; a != 100 {
		t.Errorf("%d of 100 site events accepted", a)
	}
}

func TestObserveConcurrent(t *testing.T) {
	clk := newClock(synthNow)
	p, db := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now, QueueSize: 2048, BatchSize: 64, FlushInterval: time.Millisecond})
	const (
		goroutines = 4
		perG       = 3000
	)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			cats := []string{"IAB1-2", "IAB3"}
			for i := 0; i < perG; i++ {
				u := uid(g*perG + i%500)
				if i%7 == 0 {
					p.ObserveSiteEvent(u, "adv_1", "product_view", "shoes")
				} else {
					p.Observe(u, Observation{Domain: fmt.Sprintf("d%d.example", i%50), Categories: cats, Country: "KOR", Hour: i % 24})
				}
			}
		}(g)
	}
	// Maintenance runs at the same time.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			if err := p.Flush(); err != nil {
				t.Error(err)
			}
			if err := p.Erase(uid(i)); err != nil {
				t.Error(err)
			}
			if _, err := p.Expire(); err != nil {
				t.Error(err)
			}
			clk.advance(time.Minute)
		}
	}()
	wg.Wait()
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.Accepted+s.Dropped != goroutines*perG {
		t.Errorf("accepted %d + dropped %d != %d calls", s.Accepted, s.Dropped, goroutines*perG)
	}
	if s.Queued != 0 || s.WriteErrors != 0 {
		t.Errorf("stats after Flush: %+v", s)
	}
	// The kept count matches what is stored.
	stored := 0
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: userKeyLower, UpperBound: userKeyUpper})
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		stored++
	}
	it.Close()
	if stored != p.Size() || stored == 0 {
		t.Errorf("%d users stored, Size says %d", stored, p.Size())
	}
	t.Logf("stats %+v", s)
}

func TestSizeRecountedWhenMissing(t *testing.T) {
	p, db := openPop(t, PopulationOptions{SampleRate: 1})
	for i := 0; i < 25; i++ {
		p.Observe(uid(i), Observation{Domain: "a.example", Hour: -1})
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for name, damage := range map[string]func() error{
		"missing": func() error { return db.Delete([]byte(sizeKey), pebble.Sync) },
		"short":   func() error { return db.Set([]byte(sizeKey), []byte{1, 2}, pebble.Sync) },
		"negative": func() error {
			return db.Set([]byte(sizeKey), sizeValue(-3), pebble.Sync)
		},
	} {
		if err := damage(); err != nil {
			t.Fatal(err)
		}
		p2, err := OpenPopulation(db, PopulationOptions{})
		if err != nil {
			t.Fatalf("%s count: %v", name, err)
		}
		if p2.Size() != 25 {
			t.Errorf("%s count: recounted Size %d, want 25", name, p2.Size())
		}
		p2.Close()
	}
}

func TestKeysStayUnderPrefix(t *testing.T) {
	clk := newClock(synthNow)
	p, db := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now})
	if err := db.Set([]byte("aud/x"), []byte("other package"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("lkz"), []byte("not ours"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		p.Observe(uid(i), Observation{Domain: "a.example", Hour: -1})
	}
	if err := p.Erase(uid(1)); err != nil {
		t.Fatal(err)
	}
	clk.advance(40 * 24 * time.Hour)
	if _, err := p.Expire(); err != nil {
		t.Fatal(err)
	}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var others []string
	for ok := it.First(); ok; ok = it.Next() {
		if k := string(it.Key()); !strings.HasPrefix(k, keyPrefix) {
			others = append(others, k)
		}
	}
	if !slices.Equal(others, []string{"aud/x", "lkz"}) {
		t.Errorf("keys outside lk/: %q", others)
	}
}

func TestCorruptRecordIsReplacedAndExpired(t *testing.T) {
	clk := newClock(synthNow)
	p, db := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now})
	if err := db.Set(userKey(nil, uid(1)), []byte{9, 9, 9}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(userKey(nil, uid(2)), []byte{recordVersion, 1}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	p.Observe(uid(1), Observation{Domain: "a.example", Hour: -1})
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, fs, ok := readUser(t, db, uid(1)); !ok || len(fs) != 1 {
		t.Errorf("corrupt record not replaced: %v %v", ok, fs)
	}
	n, err := p.Expire()
	if err != nil || n != 1 {
		t.Errorf("Expire removed %d (%v), want the one corrupt record", n, err)
	}
	if c := p.Stats().Corrupt; c != 2 {
		t.Errorf("Corrupt %d, want 2", c)
	}
}

// Observe on the bid path must not allocate, sampled or not, queued or
// dropped.
func TestObserveAllocations(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	obs := Observation{Domain: "www.news.example", Categories: []string{"IAB12-3", "IAB12"}, Country: "KOR", Region: "11", DeviceType: 4, OS: "android", Hour: 21}
	for _, tc := range []struct {
		name string
		opts PopulationOptions
	}{
		{"unsampled", PopulationOptions{SampleRate: 1e-18, QueueSize: 1}},
		{"queued then dropped", PopulationOptions{SampleRate: 1, QueueSize: 50}},
		{"default rate", PopulationOptions{QueueSize: 50}},
	} {
		p, err := newPopulation(db, tc.opts) // no writer: the queue fills up
		if err != nil {
			t.Fatal(err)
		}
		u := uid(1)
		if a := testing.AllocsPerRun(200, func() {
			p.Observe(u, obs)
			p.ObserveSiteEvent(u, "adv_1", "purchase", "shoes")
		}); a != 0 {
			t.Errorf("%s: %.1f allocations per call", tc.name, a)
		}
	}
}

// TestWriterWritesWithoutFlush: the writer, which polls the queue instead
// of waiting on it, writes what is observed within FlushInterval, in
// batches of at most BatchSize, with no Flush.
func TestWriterWritesWithoutFlush(t *testing.T) {
	clk := newClock(synthNow)
	p, db := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now, BatchSize: 16, FlushInterval: 10 * time.Millisecond})
	const users = 500 // several batches and several yields per batch
	for i := range users {
		p.Observe(uid(i), Observation{Domain: "news.example", Hour: -1})
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().UsersWritten < users {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d users written without Flush", p.Stats().UsersWritten, users)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, i := range []int{0, 17, users - 1} {
		if _, _, ok := readUser(t, db, uid(i)); !ok {
			t.Errorf("user %d not stored", i)
		}
	}
	if p.Size() != users {
		t.Errorf("size %d, want %d", p.Size(), users)
	}
}
