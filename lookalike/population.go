package lookalike

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// UserID is a pseudonym: a keyed hash of an identifier, never a raw id.
type UserID [16]byte

// Observation is what one bid request tells about a user. Its strings and
// slice are borrowed for the duration of the call: Observe hashes what it
// keeps and holds no reference afterwards.
type Observation struct {
	Domain, Bundle string   // site.domain or app.bundle
	Categories     []string // IAB content categories (site/app .cat); the first 4 are used
	Country        string   // device.geo.country
	Region         string   // device.geo.region
	DeviceType     int      // OpenRTB devicetype; 0 = unknown
	OS             string   // device.os
	Hour           int      // local hour of day 0..23; -1 = unknown
}

// Key layout under "lk/" (see package store).
const (
	keyPrefix     = "lk/"
	userKeyPrefix = "lk/u/"
	sizeKey       = "lk/m/size"
)

var (
	userKeyLower = []byte(userKeyPrefix)
	userKeyUpper = []byte("lk/u0") // '0' is the byte after '/'
)

func userKey(dst []byte, u UserID) []byte {
	dst = append(dst, userKeyPrefix...)
	return append(dst, u[:]...)
}

// ErrClosed is returned by Flush on a closed Population.
var ErrClosed = errors.New("lookalike: population closed")

// PopulationOptions configure a Population. The zero value of every field
// means its default.
type PopulationOptions struct {
	// SampleRate is the share of Observe calls kept, in (0, 1]. Calls are
	// sampled, not users, so every user seen often enough is in the
	// population. Site events are not sampled. Default 0.1.
	SampleRate float64
	// MaxFeaturesPerUser bounds the features stored for one user, 1..255;
	// beyond it the least recently seen (then least frequent) are evicted.
	// Default 64.
	MaxFeaturesPerUser int
	// TTL is how long a user (and each of a user's features) lives after it
	// was last seen: Expire removes users not seen within it and Build
	// ignores them and their stale features. Default 30 days.
	TTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// QueueSize is how many accepted observations may wait for the writer;
	// when the queue is full, Observe drops the observation and counts it.
	// Default 65536 (about 6 MiB).
	QueueSize int
	// BatchSize is the most observations written in one Pebble batch.
	// Default 4096.
	BatchSize int
	// FlushInterval is the longest an accepted observation waits before it
	// is written (the writer looks every 100 ms at most). Default 1 s.
	FlushInterval time.Duration
}

// Defaults.
const (
	DefaultSampleRate         = 0.1
	DefaultMaxFeaturesPerUser = 64
	DefaultTTL                = 30 * 24 * time.Hour
	DefaultQueueSize          = 1 << 16
	DefaultBatchSize          = 4096
	DefaultFlushInterval      = time.Second
)

// EnsureDefaults fills zero fields with their defaults.
func (o *PopulationOptions) EnsureDefaults() {
	if o.SampleRate == 0 {
		o.SampleRate = DefaultSampleRate
	}
	if o.MaxFeaturesPerUser == 0 {
		o.MaxFeaturesPerUser = DefaultMaxFeaturesPerUser
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
}

// Validate reports the first out-of-range field.
func (o *PopulationOptions) Validate() error {
	switch {
	case !(o.SampleRate > 0 && o.SampleRate <= 1):
		return fmt.Errorf("lookalike: SampleRate %v: must be in (0, 1]", o.SampleRate)
	case o.MaxFeaturesPerUser < 1 || o.MaxFeaturesPerUser > 255:
		return fmt.Errorf("lookalike: MaxFeaturesPerUser %d: must be in 1..255", o.MaxFeaturesPerUser)
	case o.TTL < time.Hour:
		return fmt.Errorf("lookalike: TTL %v: must be at least 1h", o.TTL)
	case o.QueueSize < 1:
		return fmt.Errorf("lookalike: QueueSize %d: must be positive", o.QueueSize)
	case o.BatchSize < 1:
		return fmt.Errorf("lookalike: BatchSize %d: must be positive", o.BatchSize)
	case o.FlushInterval <= 0:
		return fmt.Errorf("lookalike: FlushInterval %v: must be positive", o.FlushInterval)
	}
	return nil
}

// item is one accepted observation waiting for the writer.
type item struct {
	uid UserID
	t   int64 // unix seconds
	f   featureSet
}

// Population is the set of users Chaser has seen, with their hashed
// features, kept in Pebble under "lk/". Observe and ObserveSiteEvent are safe
// for concurrent use on the bid path; one background goroutine writes.
type Population struct {
	db        *pebble.DB
	opts      PopulationOptions
	sampleAll bool
	sampleLim uint64 // keep a call when rand.Uint64() < sampleLim

	q        chan item
	flushReq chan flushRequest
	stop     chan struct{}
	done     chan struct{}
	closed   atomic.Bool

	closeOnce sync.Once
	closeErr  error

	// wmu serialises every change to "lk/": the writer's batches, Erase and
	// Expire. It is never taken on the Observe path.
	wmu  sync.Mutex
	size atomic.Int64

	accepted     atomic.Uint64
	dropped      atomic.Uint64
	usersWritten atomic.Uint64
	writeErrors  atomic.Uint64
	erased       atomic.Uint64
	expired      atomic.Uint64
	corrupt      atomic.Uint64
}

// OpenPopulation opens the population stored in db (under "lk/" only) and
// starts its writer. Close it before closing db.
func OpenPopulation(db *pebble.DB, opts PopulationOptions) (*Population, error) {
	p, err := newPopulation(db, opts)
	if err != nil {
		return nil, err
	}
	go p.run()
	return p, nil
}

// newPopulation opens the population without starting its writer.
func newPopulation(db *pebble.DB, opts PopulationOptions) (*Population, error) {
	if db == nil {
		return nil, errors.New("lookalike: nil *pebble.DB")
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &Population{
		db:        db,
		opts:      opts,
		sampleAll: opts.SampleRate >= 1,
		q:         make(chan item, opts.QueueSize),
		flushReq:  make(chan flushRequest),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if !p.sampleAll {
		p.sampleLim = uint64(math.Ldexp(opts.SampleRate, 64))
	}
	n, err := p.loadSize()
	if err != nil {
		return nil, err
	}
	p.size.Store(n)
	return p, nil
}

// loadSize reads the stored user count, or counts the users when it is
// missing or unreadable.
func (p *Population) loadSize() (int64, error) {
	v, closer, err := p.db.Get([]byte(sizeKey))
	switch {
	case err == nil:
		ok := len(v) == 8
		n := int64(0)
		if ok {
			n = int64(binary.LittleEndian.Uint64(v))
		}
		closer.Close()
		if ok && n >= 0 {
			return n, nil
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return 0, fmt.Errorf("lookalike: read %s: %w", sizeKey, err)
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: userKeyLower, UpperBound: userKeyUpper})
	if err != nil {
		return 0, err
	}
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("lookalike: count users: %w", err)
	}
	return n, nil
}

func sizeValue(n int64) []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(n))
}

// sample decides whether to keep one Observe call.
func (p *Population) sample() bool {
	return p.sampleAll || rand.Uint64() < p.sampleLim
}

// Observe records what one bid request tells about u. It is sampled
// (SampleRate), never blocks, allocates nothing, and drops the observation
// (counted in Stats) when the writer's queue is full.
func (p *Population) Observe(u UserID, o Observation) {
	if !p.sample() {
		return
	}
	if len(p.q) == cap(p.q) { // full: drop before doing any work
		p.dropped.Add(1)
		return
	}
	var it item
	observationFeatures(&it.f, &o)
	p.enqueue(u, &it)
}

// ObserveSiteEvent records an advertiser-site event of u (a page or product
// view, a cart, a purchase; category is the product's category, if any) as
// features. Site events are not sampled; like Observe it never blocks.
func (p *Population) ObserveSiteEvent(u UserID, advertiser, event, category string) {
	var it item
	siteEventFeatures(&it.f, advertiser, event, category)
	p.enqueue(u, &it)
}

func (p *Population) enqueue(u UserID, it *item) {
	if it.f.n == 0 {
		return
	}
	if p.closed.Load() {
		p.dropped.Add(1)
		return
	}
	it.uid = u
	it.t = p.opts.Now().Unix()
	select {
	case p.q <- *it:
		p.accepted.Add(1)
	default:
		p.dropped.Add(1)
	}
}

// Flush writes every observation accepted before the call and returns the
// first write error since the previous Flush, if any.
func (p *Population) Flush() error {
	return p.flush(false)
}

type flushRequest struct {
	reply   chan error
	keepErr bool // report the error but leave it for the next Flush
}

func (p *Population) flush(keepErr bool) error {
	req := flushRequest{reply: make(chan error, 1), keepErr: keepErr}
	select {
	case p.flushReq <- req:
		return <-req.reply
	case <-p.done:
		return ErrClosed
	}
}

// Close writes what is queued and stops the writer. It does not close the
// Pebble DB. Observations after Close are dropped.
func (p *Population) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		close(p.stop)
		<-p.done
	})
	return p.closeErr
}

// Size returns the number of users stored, expired or not (Expire removes
// the expired ones).
func (p *Population) Size() int { return int(p.size.Load()) }

// Stats is a snapshot of a Population's counters, for the embedding program
// to export.
type Stats struct {
	Users        int    // users stored (Size)
	Queued       int    // observations waiting for the writer now
	Accepted     uint64 // observations queued since open (after sampling)
	Dropped      uint64 // observations dropped: queue full, or closed
	UsersWritten uint64 // user records written
	WriteErrors  uint64 // failed Pebble batches (their observations are lost)
	Erased       uint64 // users erased
	Expired      uint64 // users expired
	Corrupt      uint64 // unreadable records met (rewritten, expired or skipped)
}

// Stats returns the current counters.
func (p *Population) Stats() Stats {
	return Stats{
		Users:        p.Size(),
		Queued:       len(p.q),
		Accepted:     p.accepted.Load(),
		Dropped:      p.dropped.Load(),
		UsersWritten: p.usersWritten.Load(),
		WriteErrors:  p.writeErrors.Load(),
		Erased:       p.erased.Load(),
		Expired:      p.expired.Load(),
		Corrupt:      p.corrupt.Load(),
	}
}

// writer is the state of the background writer goroutine.
type writer struct {
	buf     []item
	feats   []feat
	key     []byte
	val     []byte
	lastErr error // first error since the last Flush
}

func (p *Population) run() {
	defer close(p.done)
	w := &writer{buf: make([]item, 0, p.opts.BatchSize)}
	tick := time.NewTicker(min(writerPoll, p.opts.FlushInterval))
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			p.drain(w)
		case req := <-p.flushReq:
			p.drain(w)
			req.reply <- w.lastErr
			if !req.keepErr {
				w.lastErr = nil
			}
		case <-p.stop:
			p.drain(w)
			p.closeErr = w.lastErr
			return
		}
	}
}

// writerPoll is how often the writer takes what is queued. It never waits
// on the queue itself: Observe, on the bid path, is then a send into a
// buffered channel that wakes no goroutine. Woken by every observation,
// the writer went to the head of the scheduler's run queue, ahead of the
// bid requests waiting there (their tail latency showed it).
const writerPoll = 100 * time.Millisecond

// writerYieldEvery is how many users commit merges between yields to the
// scheduler, so that a large batch does not hold a P away from bid
// requests for milliseconds.
const writerYieldEvery = 64

// drain writes everything queued now.
func (p *Population) drain(w *writer) {
	for n := len(p.q); n > 0; n-- {
		w.buf = append(w.buf, <-p.q)
		if len(w.buf) >= p.opts.BatchSize {
			p.commit(w)
		}
	}
	p.commit(w)
}

// commit merges the buffered observations into their users' records in one
// Pebble batch.
func (p *Population) commit(w *writer) {
	if len(w.buf) == 0 {
		return
	}
	defer func() {
		w.buf = w.buf[:0]
		// A bug here must cost a batch, not the process or the writer.
		if r := recover(); r != nil {
			p.writeFailed(w, fmt.Errorf("lookalike: writer panic: %v", r))
		}
	}()
	slices.SortStableFunc(w.buf, func(a, b item) int { return bytes.Compare(a.uid[:], b.uid[:]) })
	now := p.opts.Now()
	minDay := dayOf(now.Add(-p.opts.TTL).Unix())

	p.wmu.Lock()
	defer p.wmu.Unlock()
	b := p.db.NewBatch()
	defer b.Close()
	var added int64
	users := 0
	for i := 0; i < len(w.buf); {
		j := i + 1
		for j < len(w.buf) && w.buf[j].uid == w.buf[i].uid {
			j++
		}
		group := w.buf[i:j]
		i = j

		w.key = userKey(w.key[:0], group[0].uid)
		w.feats = w.feats[:0]
		var lastSeen int64
		v, closer, err := p.db.Get(w.key)
		switch {
		case err == nil:
			var derr error
			lastSeen, w.feats, derr = decodeRecord(w.feats, v)
			closer.Close()
			if derr != nil {
				p.corrupt.Add(1)
				lastSeen, w.feats = 0, w.feats[:0]
			}
		case errors.Is(err, pebble.ErrNotFound):
			added++
		default:
			p.writeFailed(w, fmt.Errorf("lookalike: read user: %w", err))
			return
		}
		for k := range group {
			it := &group[k]
			lastSeen = max(lastSeen, it.t)
			day := dayOf(it.t)
			for _, id := range it.f.id[:it.f.n] {
				w.feats = append(w.feats, feat{id: id, count: 1, day: day})
			}
		}
		w.feats = mergeFeatures(w.feats, minDay, p.opts.MaxFeaturesPerUser)
		w.val = encodeRecord(w.val[:0], lastSeen, w.feats)
		if err := b.Set(w.key, w.val, nil); err != nil {
			p.writeFailed(w, err)
			return
		}
		if users++; users%writerYieldEvery == 0 {
			runtime.Gosched()
		}
	}
	if added > 0 {
		if err := b.Set([]byte(sizeKey), sizeValue(p.size.Load()+added), nil); err != nil {
			p.writeFailed(w, err)
			return
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		p.writeFailed(w, fmt.Errorf("lookalike: write %d users: %w", users, err))
		return
	}
	p.size.Add(added)
	p.usersWritten.Add(uint64(users))
}

func (p *Population) writeFailed(w *writer, err error) {
	p.writeErrors.Add(1)
	if w.lastErr == nil {
		w.lastErr = err
	}
}

// Erase removes u's features at once: what is queued for u is written
// first, then u's record is deleted with a synced write. Observations of u
// made after Erase returns start a new record, so the caller must stop
// observing an erased user.
func (p *Population) Erase(u UserID) error {
	// A failed write only loses observations (the next Flush reports it);
	// u is erased either way.
	_ = p.flush(true)
	return p.erase(u)
}

func (p *Population) erase(u UserID) error {
	key := userKey(nil, u)
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, closer, err := p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lookalike: erase: %w", err)
	}
	closer.Close()
	b := p.db.NewBatch()
	defer b.Close()
	if err := b.Delete(key, nil); err != nil {
		return fmt.Errorf("lookalike: erase: %w", err)
	}
	n := p.size.Load() - 1
	if err := b.Set([]byte(sizeKey), sizeValue(n), nil); err != nil {
		return fmt.Errorf("lookalike: erase: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("lookalike: erase: %w", err)
	}
	p.size.Store(n)
	p.erased.Add(1)
	return nil
}

// expireChunk is how many expired users Expire deletes per batch.
const expireChunk = 4096

// Expire removes the users not seen within TTL (and unreadable records) and
// returns how many it removed. It scans without holding up the writer, then
// deletes in batches, re-checking each user under the write lock.
func (p *Population) Expire() (removed int, err error) {
	cutoff := p.opts.Now().Add(-p.opts.TTL).Unix()
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: userKeyLower, UpperBound: userKeyUpper})
	if err != nil {
		return 0, fmt.Errorf("lookalike: expire: %w", err)
	}
	defer it.Close()
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return removed, fmt.Errorf("lookalike: expire: %w", err)
		}
		if lastSeen, _, err := checkRecord(v); err == nil && lastSeen >= cutoff {
			continue
		}
		keys = append(keys, slices.Clone(it.Key()))
		if len(keys) == expireChunk {
			n, err := p.expireKeys(keys, cutoff)
			removed += n
			if err != nil {
				return removed, err
			}
			keys = keys[:0]
		}
	}
	if err := it.Error(); err != nil {
		return removed, fmt.Errorf("lookalike: expire: %w", err)
	}
	n, err := p.expireKeys(keys, cutoff)
	return removed + n, err
}

func (p *Population) expireKeys(keys [][]byte, cutoff int64) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	b := p.db.NewBatch()
	defer b.Close()
	n := 0
	for _, k := range keys {
		v, closer, err := p.db.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue // erased meanwhile
		}
		if err != nil {
			return 0, fmt.Errorf("lookalike: expire: %w", err)
		}
		lastSeen, _, cerr := checkRecord(v)
		closer.Close()
		if cerr == nil && lastSeen >= cutoff {
			continue // seen again meanwhile
		}
		if cerr != nil {
			p.corrupt.Add(1)
		}
		if err := b.Delete(k, nil); err != nil {
			return 0, fmt.Errorf("lookalike: expire: %w", err)
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	size := p.size.Load() - int64(n)
	if err := b.Set([]byte(sizeKey), sizeValue(size), nil); err != nil {
		return 0, fmt.Errorf("lookalike: expire: %w", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("lookalike: expire: %w", err)
	}
	p.size.Store(size)
	p.expired.Add(uint64(n))
	return n, nil
}
