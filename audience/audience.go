package audience

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// Audience types.
const (
	TypeList      = "list"
	TypeRule      = "rule"
	TypeLookalike = "lookalike"
)

// Audience statuses. A list audience is building while an upload job runs,
// failed when its last job stopped after applying part of its rows (the
// members it applied stay and match; upload again to finish: uploads are
// idempotent), ready otherwise.
const (
	StatusBuilding = "building"
	StatusReady    = "ready"
	StatusFailed   = "failed"
)

// Errors returned by the Manager; the admin API maps them to status codes.
var (
	ErrNotFound = errors.New("audience: not found")
	ErrInvalid  = errors.New("audience: invalid")
)

// FieldError is a validation error naming the offending field.
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Audience is an audience's definition and its state.
type Audience struct {
	ID           string          `json:"id"`
	AdvertiserID string          `json:"advertiser_id"`
	Name         string          `json:"name"`
	Type         string          `json:"type"`
	TTLDays      int             `json:"ttl_days,omitempty"`
	Rule         json.RawMessage `json:"rule,omitempty"`
	Lookalike    json.RawMessage `json:"lookalike,omitempty"`
	Status       string          `json:"status"`
	// Size is the number of members in the store (expired ones until the next
	// Maintain).
	Size int64 `json:"size"`
	// LinkedIDs is the number of cookie and device ids that match through an
	// identity link to an e-mail or phone member (as of the last filter build,
	// plus links added since).
	LinkedIDs int64        `json:"linked_ids"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
	Uploads   UploadTotals `json:"uploads"`
	// Upload is the running upload job, or the last one.
	Upload *Job `json:"upload,omitempty"`
	// Filter describes the in-memory filter (not stored).
	Filter *FilterStats `json:"filter,omitempty"`
}

// UploadTotals sums every upload an audience received.
type UploadTotals struct {
	Jobs       int64   `json:"jobs"`
	RowsRead   int64   `json:"rows_read"`
	Valid      int64   `json:"valid"`
	Invalid    int64   `json:"invalid"`
	IDs        int64   `json:"ids"`
	Duplicates int64   `json:"duplicates"`
	Added      int64   `json:"added"`
	Removed    int64   `json:"removed"`
	Matched    int64   `json:"matched"`
	MatchRate  float64 `json:"match_rate"`
}

// Options configure a Manager.
type Options struct {
	// Secret keys pseudonymisation. Required, ≥ 16 bytes.
	Secret []byte
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// BuildWorkers is how many goroutines build filters from the store; default
	// GOMAXPROCS (at most 8).
	BuildWorkers int
	// ProfileCacheBytes bounds the cache of decoded profiles in front of the
	// store (see CachedProfile); default 64 MiB, negative disables it.
	ProfileCacheBytes int64
	// Events configures events, profiles and rule audiences (events.go).
	Events EventOptions
}

// Manager owns audiences: metadata and members in Pebble, filters in memory.
type Manager struct {
	db      *pebble.DB
	pz      *Pseudonymizer
	now     func() time.Time
	log     *slog.Logger
	workers int

	// mu guards auds, states, every *Audience in auds and snapshot swaps
	// (RecordEvent also serialises profile writes with it). It is never held
	// across a member scan.
	mu     sync.Mutex
	auds   map[string]*Audience // metadata; the same pointers as states[id].meta
	states map[string]*audState
	snap   atomic.Pointer[Snapshot]

	knownMu    sync.Mutex // one rebuild of the known filter at a time
	maintainMu sync.Mutex // one Maintain at a time
	erasing    sync.Mutex // one Erase at a time (copy-on-write of the erased set)

	profiles *profileCache
	// seg maintains rule audiences from events (segments.go).
	seg *segments
}

// audState is the Manager's state for one audience.
type audState struct {
	id   string
	set  *memberSet    // for the audience's life
	slot chan struct{} // one upload job at a time

	// wmu serialises writes of this audience's members and metadata: upload
	// batches, removals, rebuilds that delete expired members, deletion.
	wmu  sync.Mutex
	meta *Audience // its fields are written under mu (and wmu for list audiences), read under mu

	deleted    atomic.Bool
	dirty      atomic.Bool  // a rebuild would drop members (removals, erasure)
	nextExpiry atomic.Int64 // earliest member expiry, unix seconds; 0 none
	job        atomic.Pointer[jobState]
}

var (
	filterRebuilds   = metrics.NewCounter(`chaser_audience_filter_rebuilds_total`)
	knownRebuilds    = metrics.NewCounter(`chaser_audience_known_rebuilds_total`)
	membersExpired   = metrics.NewCounter(`chaser_audience_members_expired_total`)
	usersErased      = metrics.NewCounter(`chaser_audience_erasures_total`)
	linksApplied     = metrics.NewCounter(`chaser_audience_links_applied_total`)
	filterBuildNanos = metrics.NewHistogram(`chaser_audience_filter_build_seconds`)
)

// NewManager loads every audience from db, marks upload jobs a crash left
// running as failed, and builds the filters (one pass over the members of
// each audience, in parallel key ranges).
func NewManager(db *pebble.DB, opts Options) (*Manager, error) {
	pz, err := NewPseudonymizer(opts.Secret)
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BuildWorkers <= 0 {
		opts.BuildWorkers = min(runtime.GOMAXPROCS(0), 8)
	}
	m := &Manager{db: db, pz: pz, now: opts.Now, log: opts.Logger, workers: opts.BuildWorkers,
		auds: map[string]*Audience{}, states: map[string]*audState{}}
	m.profiles = newProfileCache(opts.ProfileCacheBytes)
	m.seg = newSegments(m, opts.Events)
	err = store.Scan(db, []byte(store.PrefixAudience), func(_, v []byte) error {
		var a Audience
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("decode audience: %w", err)
		}
		a.Filter = nil
		m.addState(newAudState(a))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audience: load: %w", err)
	}
	if err := m.recoverJobs(); err != nil {
		return nil, err
	}
	if err := m.buildAll(); err != nil {
		return nil, err
	}
	if err := m.loadRules(); err != nil {
		return nil, err
	}
	return m, nil
}

func newAudState(a Audience) *audState {
	st := &audState{id: a.ID, slot: make(chan struct{}, 1), meta: &a}
	var capacity uint64
	if storesMembers(a.Type) {
		capacity = capacityFor(a.Size + a.LinkedIDs)
	}
	st.set = newMemberSet(capacity, FalsePositiveTarget)
	return st
}

// storesMembers reports whether audiences of type t keep their members under
// "mem/" (lists, and lookalikes through AddMembers), so that filter builds,
// sizes and Maintain are this file's business. Rule audiences keep theirs
// with their rules.
func storesMembers(t string) bool { return t != TypeRule }

// addState registers st (caller holds mu, or nothing else runs yet).
func (m *Manager) addState(st *audState) {
	m.states[st.id] = st
	m.auds[st.id] = st.meta
}

// putLocked stores a's metadata; the caller holds mu and changed a in place.
func (m *Manager) putLocked(a *Audience) error {
	c := *a
	c.Filter = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return err
	}
	return m.db.Set(audKey(a.ID), b, pebble.Sync)
}

// Close stops rule back-fills and releases the profile cache. Call it
// before closing the store.
func (m *Manager) Close() {
	m.CloseRules()
	m.profiles.close()
}

// Pseudonymizer returns the manager's pseudonymizer (for the bid path).
func (m *Manager) Pseudonymizer() *Pseudonymizer { return m.pz }

// Snapshot returns the current membership view for the bid path.
func (m *Manager) Snapshot() *Snapshot { return m.snap.Load() }

func newID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func audKey(id string) []byte { return []byte(store.PrefixAudience + id) }

func memPrefix(id string) []byte { return []byte(store.PrefixMember + id + "/") }

func memKey(id string, p Pseudonym) []byte { return appendMemKey(nil, id, p) }

func appendMemKey(dst []byte, id string, p Pseudonym) []byte {
	dst = append(dst, store.PrefixMember...)
	dst = append(dst, id...)
	dst = append(dst, '/')
	return append(dst, p[:]...)
}

// memValue encodes a membership: expiry (unix seconds, 0 = never) and the id
// kind, so a filter build knows which members need an identity-link lookup.
func memValue(expiry int64, kind IDType) []byte {
	var v [9]byte
	binary.BigEndian.PutUint64(v[:8], uint64(expiry))
	v[8] = byte(kind)
	return v[:]
}

func decodeMem(v []byte) (expiry int64, kind IDType) {
	if len(v) >= 8 {
		expiry = int64(binary.BigEndian.Uint64(v[:8]))
	}
	if len(v) >= 9 {
		kind = IDType(v[8])
	}
	return
}

func live(expiry, now int64) bool { return expiry == 0 || expiry > now }

// Create validates and stores a new audience.
func (m *Manager) Create(a Audience) (Audience, error) {
	if a.AdvertiserID == "" {
		return Audience{}, &FieldError{"advertiser_id", "required"}
	}
	if a.Name == "" || len(a.Name) > 200 {
		return Audience{}, &FieldError{"name", "required, at most 200 characters"}
	}
	switch a.Type {
	case TypeList:
	case TypeRule:
		if err := validateRuleAudience(&a); err != nil {
			return Audience{}, err
		}
	case TypeLookalike:
		// Lookalike audiences are validated by their builders.
	case "":
		a.Type = TypeList
	default:
		return Audience{}, &FieldError{"type", "must be list, rule or lookalike"}
	}
	if a.TTLDays < 0 || a.TTLDays > 3650 {
		return Audience{}, &FieldError{"ttl_days", "must be between 0 and 3650"}
	}
	now := m.now().UTC()
	a.ID = newID("aud_")
	a.CreatedAt, a.UpdatedAt = now, now
	a.Size, a.LinkedIDs, a.Uploads, a.Upload, a.Filter = 0, 0, UploadTotals{}, nil, nil
	a.Status = StatusReady
	if a.Type != TypeList {
		a.Status = StatusBuilding
	}
	b, err := json.Marshal(&a)
	if err != nil {
		return Audience{}, err
	}
	if err := m.db.Set(audKey(a.ID), b, pebble.Sync); err != nil {
		return Audience{}, fmt.Errorf("create audience: %w", err)
	}
	st := newAudState(a)
	m.mu.Lock()
	m.addState(st)
	next := m.snap.Load().clone()
	next.sets[a.ID] = st.set
	m.snap.Store(next)
	m.mu.Unlock()
	if a.Type == TypeRule {
		m.startRule(&a)
	}
	return a, nil
}

func (m *Manager) state(id string) *audState {
	m.mu.Lock()
	st := m.states[id]
	m.mu.Unlock()
	return st
}

// Get returns an audience by id, with its running upload's progress and its
// filter's statistics.
func (m *Manager) Get(id string) (Audience, error) {
	st := m.state(id)
	if st == nil {
		return Audience{}, ErrNotFound
	}
	a := m.view(st)
	fs := st.set.stats()
	a.Filter = &fs
	return a, nil
}

// view returns st's metadata with the progress of a running job.
func (m *Manager) view(st *audState) Audience {
	m.mu.Lock()
	a := *st.meta
	m.mu.Unlock()
	m.ruleSize(&a)
	if js := st.job.Load(); js != nil {
		j := js.snapshot()
		a.Upload = &j
		if j.State == JobRunning {
			a.Status = StatusBuilding
		}
	}
	return a
}

// List returns the audiences of an advertiser (all when advertiserID is
// empty), ordered by id.
func (m *Manager) List(advertiserID string) []Audience {
	m.mu.Lock()
	sts := make([]*audState, 0, len(m.states))
	for _, st := range m.states {
		if advertiserID == "" || st.meta.AdvertiserID == advertiserID {
			sts = append(sts, st)
		}
	}
	m.mu.Unlock()
	out := make([]Audience, 0, len(sts))
	for _, st := range sts {
		out = append(out, m.view(st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Delete removes an audience, its members and its job records. A running
// upload into it stops at its next batch.
func (m *Manager) Delete(id string) error {
	st := m.state(id)
	if st == nil {
		return ErrNotFound
	}
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if st.deleted.Load() {
		return ErrNotFound
	}
	b := m.db.NewBatch()
	defer b.Close()
	p := memPrefix(id)
	_ = b.DeleteRange(p, store.PrefixEnd(p), nil)
	jp := jobPrefix(id)
	_ = b.DeleteRange(jp, store.PrefixEnd(jp), nil)
	_ = b.Delete(audKey(id), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("delete audience %s: %w", id, err)
	}
	st.deleted.Store(true)
	m.mu.Lock()
	delete(m.auds, id)
	delete(m.states, id)
	next := m.snap.Load().clone()
	delete(next.sets, id)
	m.snap.Store(next)
	size := st.meta.Size + st.meta.LinkedIDs
	m.mu.Unlock()
	next.known.removed.Add(size)
	m.seg.drop(id)
	return nil
}

// saveMeta applies change to st's metadata, writes it into b (or straight to
// the store when b is nil) and publishes it once written. Caller holds
// st.wmu.
func (m *Manager) saveMeta(st *audState, b *pebble.Batch, change func(a *Audience)) (commit func(), err error) {
	m.mu.Lock()
	a := *st.meta
	m.mu.Unlock()
	change(&a)
	a.Filter = nil
	v, err := json.Marshal(&a)
	if err != nil {
		return nil, err
	}
	publish := func() {
		m.mu.Lock()
		*st.meta = a
		m.mu.Unlock()
	}
	if b == nil {
		if err := m.db.Set(audKey(st.id), v, pebble.NoSync); err != nil {
			return nil, fmt.Errorf("save audience %s: %w", st.id, err)
		}
		publish()
		return func() {}, nil
	}
	if err := b.Set(audKey(st.id), v, nil); err != nil {
		return nil, err
	}
	return publish, nil
}

// buildAll builds every filter from the store at start-up: one scan of each
// audience's members (and their links), feeding the audience's filter and the
// known filter at once.
func (m *Manager) buildAll() error {
	t0 := time.Now()
	snap := &Snapshot{sets: make(map[string]*memberSet, len(m.states)), erased: map[Pseudonym]struct{}{}, rules: m.seg.reg}
	if err := store.Scan(m.db, []byte(store.PrefixErase), func(k, _ []byte) error {
		var p Pseudonym
		if len(k) == len(store.PrefixErase)+len(p) {
			copy(p[:], k[len(store.PrefixErase):])
			snap.erased[p] = struct{}{}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("audience: load erase log: %w", err)
	}
	var total uint64
	for _, st := range m.states {
		if storesMembers(st.meta.Type) {
			total += uint64(st.meta.Size + st.meta.LinkedIDs)
		}
	}
	known := newMemberSet(uint64(float64(total)*headroom), KnownFalsePositiveTarget)
	kf := known.cur.Load()
	now := m.now().Unix()
	var members, linked int64
	for id, st := range m.states {
		snap.sets[id] = st.set
		if !storesMembers(st.meta.Type) {
			continue
		}
		f := st.set.cur.Load()
		res, err := m.scanAudience(id, now, false, func(ps []Pseudonym) {
			f.addAll(ps)
			kf.addAll(ps)
		})
		if err != nil {
			return fmt.Errorf("audience %s: build filter: %w", id, err)
		}
		members += res.members
		linked += res.linked
		st.meta.Size, st.meta.LinkedIDs = res.members, res.linked
		st.nextExpiry.Store(res.nextExpiry)
		if f.full(0) {
			// The stored size was behind (an interrupted upload): build again at
			// the size found.
			if _, err := m.rebuildSet(st, 0, now, false, "startup"); err != nil {
				return err
			}
		}
	}
	snap.known = known
	m.snap.Store(snap)
	if kf.full(0) {
		if err := m.rebuildKnown(0); err != nil {
			return err
		}
	}
	d := time.Since(t0)
	filterBuildNanos.Update(d.Seconds())
	m.log.Info("audience filters built", "audiences", len(m.states), "members", members, "linked_ids", linked,
		"erased", len(snap.erased), "took", d.Round(time.Millisecond))
	return nil
}

// capacityFor is the filter capacity for an audience holding ids ids.
func capacityFor(ids int64) uint64 { return uint64(float64(ids) * headroom) }

// rebuildSet rebuilds st's filter from the store with room for capacity ids
// (0: sized from the audience's metadata; more if the scan finds more) and
// swaps it in. With gc set (caller holds st.wmu) expired members are deleted
// from the store on the way. Adds made during the rebuild reach both filters.
func (m *Manager) rebuildSet(st *audState, capacity uint64, now int64, gc bool, reason string) (scanResult, error) {
	s := st.set
	s.rebuild.Lock()
	defer s.rebuild.Unlock()
	if capacity == 0 {
		m.mu.Lock()
		capacity = capacityFor(st.meta.Size + st.meta.LinkedIDs)
		m.mu.Unlock()
	}
	filterRebuilds.Inc()
	for attempt := 0; ; attempt++ {
		f := newBloom(capacity, s.rate)
		s.beginRebuild(f)
		res, err := m.scanAudience(st.id, now, gc, f.addAll)
		if err != nil {
			s.endRebuild(nil)
			return res, fmt.Errorf("rebuild audience %s filter: %w", st.id, err)
		}
		gc = false
		if f.full(0) && attempt < 2 {
			capacity = capacityFor(int64(f.added.Load()))
			continue
		}
		s.endRebuild(f)
		st.nextExpiry.Store(res.nextExpiry)
		m.mu.Lock()
		st.meta.Size, st.meta.LinkedIDs = res.members, res.linked
		m.mu.Unlock()
		m.log.Debug("audience filter rebuilt", "audience", st.id, "reason", reason, "members", res.members,
			"linked_ids", res.linked, "expired", res.expired, "bytes", f.bytes())
		return res, nil
	}
}

// rebuildKnown rebuilds the filter of every member of every audience with
// room for capacity ids (0: the sum of the audiences' sizes).
func (m *Manager) rebuildKnown(capacity uint64) error {
	m.knownMu.Lock()
	defer m.knownMu.Unlock()
	snap := m.snap.Load()
	s := snap.known
	s.rebuild.Lock()
	defer s.rebuild.Unlock()
	if capacity == 0 {
		var total int64
		m.mu.Lock()
		for _, st := range m.states {
			if storesMembers(st.meta.Type) {
				total += st.meta.Size + st.meta.LinkedIDs
			}
		}
		m.mu.Unlock()
		capacity = capacityFor(total)
	}
	knownRebuilds.Inc()
	now := m.now().Unix()
	for attempt := 0; ; attempt++ {
		f := newBloom(capacity, s.rate)
		s.beginRebuild(f)
		// Audiences created from now on add their members through s.add.
		snap = m.snap.Load()
		for id := range snap.sets {
			if _, err := m.scanAudience(id, now, false, f.addAll); err != nil {
				s.endRebuild(nil)
				return fmt.Errorf("rebuild known filter: %w", err)
			}
		}
		if f.full(0) && attempt < 2 {
			capacity = capacityFor(int64(f.added.Load()))
			continue
		}
		s.endRebuild(f)
		return nil
	}
}

// isMember reports, from the store, whether p is a live member of audience
// id, and the kind it was uploaded as.
func (m *Manager) isMember(id string, p Pseudonym, now int64) (bool, IDType, error) {
	var kb [64]byte
	v, closer, err := m.db.Get(appendMemKey(kb[:0], id, p))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	exp, kind := decodeMem(v)
	closer.Close()
	return live(exp, now), kind, nil
}

// Contains reports, exactly (from the store), whether the raw id of type t
// is a member of audience id: directly, or, for a cookie or device id,
// through an identity link to an e-mail or phone member (what the bid path
// matches). defaultCountry is the calling code for national phone numbers.
func (m *Manager) Contains(id string, t IDType, raw, defaultCountry string) (bool, error) {
	if m.state(id) == nil {
		return false, ErrNotFound
	}
	p, kind, err := m.pz.RawKind(t, []byte(raw), defaultCountry)
	if err != nil {
		return false, nil
	}
	return m.ContainsPseudonym(id, p, kind)
}

// maxLinksChecked bounds the identity links Contains follows for one id.
const maxLinksChecked = 256

// ContainsPseudonym is Contains for a pseudonym of the given kind.
func (m *Manager) ContainsPseudonym(id string, p Pseudonym, kind IDType) (bool, error) {
	if m.snap.Load().Erased(p) {
		return false, nil
	}
	if m.seg.isRule(id) {
		return m.ruleContains(id, p), nil
	}
	now := m.now().Unix()
	ok, _, err := m.isMember(id, p, now)
	if err != nil || ok || kind.linkable() {
		return ok, err
	}
	// A cookie or device id matches through a link to an e-mail or phone member.
	n := 0
	err = store.Scan(m.db, linkPrefix(p), func(k, _ []byte) error {
		var q Pseudonym
		if len(k) != len(store.PrefixLink)+2*len(q)+1 {
			return nil
		}
		copy(q[:], k[len(k)-len(q):])
		member, qkind, err := m.isMember(id, q, now)
		if err != nil {
			return err
		}
		if member && qkind.linkable() {
			ok = true
			return errStop
		}
		if n++; n >= maxLinksChecked {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return false, err
	}
	return ok, nil
}

// OnLink tells the filters that from (an e-mail or phone pseudonym) and to (a
// cookie or device id) are the same person: to starts matching every
// audience that has from as a member. The events code calls it after it
// committed the link lnk/<from>/<to> (a filter rebuild reads links from the
// store, so calling it before the commit could lose the link until the next
// rebuild). It takes no Manager lock, so it may be called with Manager.mu
// held.
func (m *Manager) OnLink(from, to Pseudonym) error {
	snap := m.snap.Load()
	if from == to || from.IsZero() || to.IsZero() || snap.Erased(from) || snap.Erased(to) {
		return nil
	}
	now := m.now().Unix()
	add := [1]Pseudonym{to}
	linked := false
	for id, set := range snap.sets {
		if !set.test(&from) {
			continue
		}
		ok, kind, err := m.isMember(id, from, now)
		if err != nil {
			return fmt.Errorf("link: audience %s: %w", id, err)
		}
		if !ok || !kind.linkable() {
			continue
		}
		set.add(add[:])
		linked = true
		m.mu.Lock()
		if a := m.auds[id]; a != nil {
			a.LinkedIDs++
		}
		m.mu.Unlock()
	}
	if linked {
		snap.known.add(add[:])
		linksApplied.Inc()
	}
	return nil
}

// Erase removes a person known by pseudonym p: their memberships in every
// audience, their profiles at every advertiser (prf/<adv>/<p>), their
// identity links in both directions (lnk/<p>/… and lnk/<q>/<p>), and records
// ers/<p> so they never match or get tracked again by that id, though bloom
// filters cannot delete. Audiences p was a member of are rebuilt at the next
// Maintain, so ids linked through p stop matching too.
func (m *Manager) Erase(p Pseudonym) error {
	if p.IsZero() {
		return fmt.Errorf("erase: %w: zero pseudonym", ErrInvalid)
	}
	m.erasing.Lock()
	defer m.erasing.Unlock()
	now := m.now()
	b := m.db.NewBatch()
	defer b.Close()
	var touched []*audState
	m.mu.Lock()
	sts := make([]*audState, 0, len(m.states))
	for _, st := range m.states {
		sts = append(sts, st)
	}
	m.mu.Unlock()
	// Hold every audience's writer lock (in id order; writers hold one at a
	// time) so no batch in flight re-adds p after it is deleted.
	sort.Slice(sts, func(i, j int) bool { return sts[i].id < sts[j].id })
	for _, st := range sts {
		st.wmu.Lock()
		defer st.wmu.Unlock()
	}
	m.mu.Lock()
	old := m.snap.Load()
	next := old.clone()
	next.erased = make(map[Pseudonym]struct{}, len(old.erased)+1)
	for q := range old.erased {
		next.erased[q] = struct{}{}
	}
	next.erased[p] = struct{}{}
	m.snap.Store(next)
	m.mu.Unlock()
	for _, st := range sts {
		key := memKey(st.id, p)
		if _, closer, err := m.db.Get(key); err == nil {
			closer.Close()
			_ = b.Delete(key, nil)
			touched = append(touched, st)
		} else if !errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("erase: %w", err)
		}
	}
	advs, err := m.advertisersWithProfiles()
	if err != nil {
		return fmt.Errorf("erase: %w", err)
	}
	for _, adv := range advs {
		_ = b.Delete(profileKey(adv, p), nil)
	}
	lp := linkPrefix(p)
	if err := store.Scan(m.db, lp, func(k, _ []byte) error {
		_ = b.Delete(k, nil)
		if len(k) == len(lp)+len(p) {
			var q Pseudonym
			copy(q[:], k[len(lp):])
			_ = b.Delete(append(linkPrefix(q), p[:]...), nil)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("erase: %w", err)
	}
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(now.Unix()))
	_ = b.Set([]byte(store.PrefixErase+string(p[:])), ts[:], nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("erase: %w", err)
	}
	m.mu.Lock()
	for _, st := range touched {
		if st.meta.Size > 0 {
			st.meta.Size--
		}
	}
	m.mu.Unlock()
	for _, st := range touched {
		st.dirty.Store(true)
		st.set.removed.Add(1)
	}
	for _, adv := range advs {
		m.profiles.invalidate(adv, p)
	}
	m.seg.dropUser(p)
	usersErased.Inc()
	return nil
}

// advertisersWithProfiles lists the advertisers with at least one profile,
// one seek each.
func (m *Manager) advertisersWithProfiles() ([]string, error) {
	pfx := []byte(store.PrefixProfile)
	it, err := m.db.NewIter(&pebble.IterOptions{LowerBound: pfx, UpperBound: store.PrefixEnd(pfx)})
	if err != nil {
		return nil, err
	}
	var advs []string
	for ok := it.First(); ok; {
		rest := it.Key()[len(pfx):]
		i := 0
		for i < len(rest) && rest[i] != '/' {
			i++
		}
		adv := string(rest[:i])
		advs = append(advs, adv)
		ok = it.SeekGE([]byte(store.PrefixProfile + adv + "0")) // '0' follows '/'
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	return advs, nil
}

// Maintain keeps the filters honest; the program calls it from a ticker
// (every minute is plenty). It rebuilds from the store every audience whose
// members expired (deleting them), that lost members (removals, erasure),
// whose measured false-positive rate passed its target, or whose filter is
// more than twice the size its members need; and the known filter when it is
// over capacity or a quarter of it is stale. now is the clock for expiry.
func (m *Manager) Maintain(now time.Time) error {
	if !m.maintainMu.TryLock() {
		return nil
	}
	defer m.maintainMu.Unlock()
	nowU := now.Unix()
	m.mu.Lock()
	sts := make([]*audState, 0, len(m.states))
	for _, st := range m.states {
		sts = append(sts, st)
	}
	m.mu.Unlock()
	var errs []error
	var expired int64
	for _, st := range sts {
		m.mu.Lock()
		stored := storesMembers(st.meta.Type)
		m.mu.Unlock()
		if !stored {
			continue
		}
		f := st.set.cur.Load()
		added := f.added.Load()
		reason := ""
		switch {
		case st.dirty.Load():
			reason = "removed"
		case st.nextExpiry.Load() != 0 && st.nextExpiry.Load() <= nowU:
			reason = "expired"
		case f.full(0) || f.fillRate() > f.rate:
			reason = "full"
		case f.capacity > minCapacity && f.capacity > 2*capacityFor(int64(added)):
			reason = "oversized"
		}
		if reason == "" {
			continue
		}
		if err := m.maintainOne(st, nowU, reason, &expired); err != nil {
			errs = append(errs, err)
		}
	}
	if expired > 0 {
		membersExpired.Add(int(expired))
		m.snap.Load().known.removed.Add(expired)
	}
	known := m.snap.Load().known
	kf := known.cur.Load()
	if kf.full(0) || known.removed.Load() > int64(kf.added.Load()/4)+minCapacity || kf.fillRate() > kf.rate {
		if err := m.rebuildKnown(0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) maintainOne(st *audState, now int64, reason string, expired *int64) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if st.deleted.Load() {
		return nil
	}
	st.dirty.Store(false)
	res, err := m.rebuildSet(st, 0, now, true, reason)
	*expired += res.expired
	if err != nil {
		st.dirty.Store(true)
		return err
	}
	_, err = m.saveMeta(st, nil, func(a *Audience) {
		a.Size, a.LinkedIDs = res.members, res.linked
		a.UpdatedAt = m.now().UTC()
	})
	return err
}
