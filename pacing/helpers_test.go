package pacing

import (
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/store"
)

var testSecret = []byte("pacing-test-secret-0123456789abcdef")

// fakeClock is an injectable clock.
type fakeClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// campSrc is a CampaignSource whose campaigns tests replace at will.
type campSrc struct {
	mu   sync.Mutex
	snap atomic.Pointer[campaign.Snapshot]
}

func newCampSrc(cs ...*campaign.Campaign) *campSrc {
	s := &campSrc{}
	s.snap.Store(&campaign.Snapshot{ByID: map[string]*campaign.Campaign{}})
	for _, c := range cs {
		s.put(c)
	}
	return s
}

func (s *campSrc) Snapshot() *campaign.Snapshot { return s.snap.Load() }

// put stores a copy of c as a new campaign version; it returns the copy.
func (s *campSrc) put(c *campaign.Campaign) *campaign.Campaign {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *c
	old := s.snap.Load()
	n := &campaign.Snapshot{ByID: map[string]*campaign.Campaign{}}
	for k, v := range old.ByID {
		n.ByID[k] = v
	}
	n.ByID[cp.ID] = &cp
	for _, v := range n.ByID {
		n.Campaigns = append(n.Campaigns, v)
	}
	sort.Slice(n.Campaigns, func(i, j int) bool { return n.Campaigns[i].ID < n.Campaigns[j].ID })
	s.snap.Store(n)
	return &cp
}

func (s *campSrc) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	n := &campaign.Snapshot{ByID: map[string]*campaign.Campaign{}}
	for k, v := range old.ByID {
		if k != id {
			n.ByID[k] = v
			n.Campaigns = append(n.Campaigns, v)
		}
	}
	sort.Slice(n.Campaigns, func(i, j int) bool { return n.Campaigns[i].ID < n.Campaigns[j].ID })
	s.snap.Store(n)
}

func (s *campSrc) get(id string) *campaign.Campaign { return s.snap.Load().ByID[id] }

// testCampaign is a running campaign: $100 a day, CPM 2 to 5, USD.
func testCampaign(id string, pacing string) *campaign.Campaign {
	return &campaign.Campaign{ID: id, AdvertiserID: "adv_1", Name: id, Status: campaign.StatusActive,
		Start: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Currency: "USD", Pacing: pacing,
		Budget: campaign.Budget{DailyMicros: campaign.Micros(100)},
		Bid:    campaign.Bid{BaseCPMMicros: campaign.Micros(2), MaxCPMMicros: campaign.Micros(5)}}
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is a pacer over a real Pebble store with a fake clock.
type env struct {
	t      testing.TB
	dir    string // "" for an in-memory store
	fs     vfs.FS
	db     *pebble.DB
	clock  *fakeClock
	camps  *campSrc
	signer *Signer
	p      *Pacer
	opts   Options
}

// newEnv opens a pacer on a Pebble store in t.TempDir().
func newEnv(t testing.TB, start time.Time, o Options, cs ...*campaign.Campaign) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clock: newClock(start), camps: newCampSrc(cs...), signer: NewSigner(testSecret), opts: o}
	e.open()
	t.Cleanup(func() { e.close() })
	return e
}

// newMemEnv is newEnv on an in-memory file system: for simulations that
// would otherwise wait on thousands of fsyncs.
func newMemEnv(t testing.TB, start time.Time, o Options, cs ...*campaign.Campaign) *env {
	t.Helper()
	e := &env{t: t, fs: vfs.NewMem(), clock: newClock(start), camps: newCampSrc(cs...), signer: NewSigner(testSecret), opts: o}
	e.open()
	t.Cleanup(func() { e.close() })
	return e
}

func (e *env) open() {
	e.t.Helper()
	var err error
	if e.fs != nil {
		e.db, err = pebble.Open("db", &pebble.Options{FS: e.fs, Logger: quietPebble{}})
	} else {
		e.db, err = store.Open(e.dir)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	o := e.opts
	o.Now = e.clock.Now
	o.Logger = quietLog
	if e.p, err = New(e.db, e.signer, e.camps, o); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) close() {
	if e.db == nil {
		return
	}
	e.p.Flush()
	if err := e.db.Close(); err != nil {
		e.t.Error(err)
	}
	e.db = nil
}

// restart closes the store and opens it again with a new Pacer.
func (e *env) restart() {
	e.t.Helper()
	e.close()
	e.open()
}

// bid admits, quotes and reserves one bid for campaign id at the current
// time; it returns the signed token, or "" and the no-bid reason.
func (e *env) bid(id string, user byte, q Quote, auction string) (string, int64, string) {
	e.t.Helper()
	c := e.camps.get(id)
	now := e.clock.Now()
	h, why := e.p.Admit(c, [16]byte{user}, now)
	if why != "" {
		return "", 0, why
	}
	price, why := h.Quote(q)
	if why != "" {
		return "", 0, why
	}
	if !h.Reserve(price, q.FirstPrice, now) {
		return "", 0, ReasonBudget
	}
	tok := Token{Campaign: id, AuctionID: auction, ImpID: "1", BidMicros: price, Unix: now.Unix(), User: [16]byte{user}, FirstPrice: q.FirstPrice}
	return string(e.signer.Append(nil, &tok)), price, ""
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...interface{})  {}
func (quietPebble) Errorf(string, ...interface{}) {}
func (quietPebble) Fatalf(format string, args ...interface{}) {
	panic("pebble fatal: " + format)
}
