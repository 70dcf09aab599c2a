package audience

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// Audience types.
const (
	TypeList      = "list"
	TypeRule      = "rule"
	TypeLookalike = "lookalike"
)

// Audience statuses.
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
	Size         int64           `json:"size"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	Uploads      UploadTotals    `json:"uploads"`
	LastUpload   *UploadStats    `json:"last_upload,omitempty"`
}

// UploadTotals sums every upload an audience received.
type UploadTotals struct {
	Jobs       int64   `json:"jobs"`
	RowsRead   int64   `json:"rows_read"`
	Valid      int64   `json:"valid"`
	Invalid    int64   `json:"invalid"`
	Duplicates int64   `json:"duplicates"`
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
}

// Manager owns audiences: metadata and members in Pebble, filters in memory.
type Manager struct {
	db  *pebble.DB
	pz  *Pseudonymizer
	now func() time.Time
	log *slog.Logger

	mu   sync.Mutex // serialises writers; readers use snap
	auds map[string]*Audience
	snap atomic.Pointer[Snapshot]
	// upMu serialises uploads per audience.
	upMu sync.Map // id → *sync.Mutex
}

// NewManager loads every audience from db and builds the filters.
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
	m := &Manager{db: db, pz: pz, now: opts.Now, log: opts.Logger, auds: map[string]*Audience{}}
	err = store.Scan(db, []byte(store.PrefixAudience), func(_, v []byte) error {
		var a Audience
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("decode audience: %w", err)
		}
		m.auds[a.ID] = &a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audience: load: %w", err)
	}
	if err := m.rebuildAll(); err != nil {
		return nil, err
	}
	return m, nil
}

// Pseudonymizer returns the manager's pseudonymizer (for the bid path).
func (m *Manager) Pseudonymizer() *Pseudonymizer { return m.pz }

// Snapshot returns the current immutable membership view.
func (m *Manager) Snapshot() *Snapshot { return m.snap.Load() }

func newID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func audKey(id string) []byte { return []byte(store.PrefixAudience + id) }

func memPrefix(id string) []byte { return []byte(store.PrefixMember + id + "/") }

func memKey(id string, p Pseudonym) []byte {
	k := make([]byte, 0, len(store.PrefixMember)+len(id)+1+len(p))
	k = append(k, store.PrefixMember...)
	k = append(k, id...)
	k = append(k, '/')
	return append(k, p[:]...)
}

// memValue encodes a membership: expiry (unix seconds, 0 = never) and id kind.
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
	case TypeRule, TypeLookalike:
		// Rule and lookalike audiences are validated by their builders.
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
	a.Size = 0
	a.Status = StatusReady
	if a.Type != TypeList {
		a.Status = StatusBuilding
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.putLocked(&a); err != nil {
		return Audience{}, err
	}
	m.auds[a.ID] = &a
	old := m.snap.Load()
	next := m.cloneSnapshot(old)
	next.sets[a.ID] = newMemberSet(1024)
	m.snap.Store(next)
	return a, nil
}

func (m *Manager) putLocked(a *Audience) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return m.db.Set(audKey(a.ID), b, pebble.Sync)
}

// Get returns an audience by id.
func (m *Manager) Get(id string) (Audience, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.auds[id]
	if a == nil {
		return Audience{}, ErrNotFound
	}
	return *a, nil
}

// List returns the audiences of an advertiser (all when advertiserID is
// empty), ordered by id.
func (m *Manager) List(advertiserID string) []Audience {
	m.mu.Lock()
	out := make([]Audience, 0, len(m.auds))
	for _, a := range m.auds {
		if advertiserID == "" || a.AdvertiserID == advertiserID {
			out = append(out, *a)
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Delete removes an audience and all its members.
func (m *Manager) Delete(id string) error {
	mu := m.uploadLock(id)
	mu.Lock()
	defer mu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.auds[id] == nil {
		return ErrNotFound
	}
	b := m.db.NewBatch()
	p := memPrefix(id)
	_ = b.DeleteRange(p, store.PrefixEnd(p), nil)
	_ = b.Delete(audKey(id), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("delete audience %s: %w", id, err)
	}
	delete(m.auds, id)
	next := m.cloneSnapshot(m.snap.Load())
	delete(next.sets, id)
	m.snap.Store(next)
	return nil
}

func (m *Manager) uploadLock(id string) *sync.Mutex {
	v, _ := m.upMu.LoadOrStore(id, &sync.Mutex{})
	return v.(*sync.Mutex)
}

func (m *Manager) cloneSnapshot(old *Snapshot) *Snapshot {
	n := &Snapshot{sets: make(map[string]*memberSet, len(old.sets)+1), known: old.known, erased: old.erased}
	for k, v := range old.sets {
		n.sets[k] = v
	}
	return n
}

// rebuildAll builds every audience's filter from the store.
func (m *Manager) rebuildAll() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().Unix()
	snap := &Snapshot{sets: map[string]*memberSet{}, erased: map[Pseudonym]struct{}{}}
	if err := store.Scan(m.db, []byte(store.PrefixErase), func(k, _ []byte) error {
		var p Pseudonym
		if len(k) >= len(store.PrefixErase)+len(p) {
			copy(p[:], k[len(store.PrefixErase):])
			snap.erased[p] = struct{}{}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("audience: load erase log: %w", err)
	}
	var total uint
	for id, a := range m.auds {
		set, n, err := m.buildSet(id, now)
		if err != nil {
			return fmt.Errorf("audience %s: build filter: %w", id, err)
		}
		snap.sets[id] = set
		a.Size = int64(n)
		total += n
	}
	known := newMemberSet(total + total/4)
	for _, set := range snap.sets {
		_ = set // members are re-read below to fill the known filter
	}
	for id := range m.auds {
		p := memPrefix(id)
		if err := store.Scan(m.db, p, func(k, v []byte) error {
			if exp, _ := decodeMem(v); exp != 0 && exp <= now {
				return nil
			}
			known.filter.Add(k[len(p):])
			known.added++
			return nil
		}); err != nil {
			return err
		}
	}
	snap.known = known
	m.snap.Store(snap)
	return nil
}

func (m *Manager) buildSet(id string, now int64) (*memberSet, uint, error) {
	p := memPrefix(id)
	var n uint
	if err := store.Scan(m.db, p, func(_, v []byte) error {
		if exp, _ := decodeMem(v); exp == 0 || exp > now {
			n++
		}
		return nil
	}); err != nil {
		return nil, 0, err
	}
	set := newMemberSet(n + n/4)
	err := store.Scan(m.db, p, func(k, v []byte) error {
		if exp, _ := decodeMem(v); exp != 0 && exp <= now {
			return nil
		}
		set.filter.Add(k[len(p):])
		set.added++
		return nil
	})
	return set, n, err
}

// addMembers publishes ps as members of audience id (and of the known set).
// Caller holds m.mu.
func (m *Manager) addMembersLocked(id string, ps []Pseudonym) {
	old := m.snap.Load()
	next := m.cloneSnapshot(old)
	set := next.sets[id]
	if set == nil {
		set = newMemberSet(uint(len(ps)))
	}
	next.sets[id] = set.withAdded(ps)
	next.known = old.known.withAdded(ps)
	m.snap.Store(next)
}

// Contains reports, exactly (from the store), whether the raw id of type t is
// a member of audience id.
func (m *Manager) Contains(id string, t IDType, raw string) (bool, error) {
	m.mu.Lock()
	a := m.auds[id]
	m.mu.Unlock()
	if a == nil {
		return false, ErrNotFound
	}
	p, err := m.pz.Raw(t, raw, "")
	if err != nil {
		return false, nil
	}
	return m.isMember(id, p)
}

func (m *Manager) isMember(id string, p Pseudonym) (bool, error) {
	if _, gone := m.snap.Load().erased[p]; gone {
		return false, nil
	}
	v, err := store.Get(m.db, memKey(id, p))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	exp, _ := decodeMem(v)
	return exp == 0 || exp > m.now().Unix(), nil
}
