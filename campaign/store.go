package campaign

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// Advertiser is a tenant: its campaigns, audiences and feeds belong to it.
type Advertiser struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Domain    string    `json:"domain,omitempty"`  // advertiser domain for adomain
	Country   string    `json:"country,omitempty"` // calling code for national phone numbers, e.g. "82"
	CreatedAt time.Time `json:"created_at"`
}

// Snapshot is the immutable set of campaigns and advertisers the bid path
// reads. Campaigns holds every non-deleted campaign ordered by id; the bid
// path checks LiveAt itself so a snapshot stays valid across flight edges.
type Snapshot struct {
	Campaigns   []*Campaign
	ByID        map[string]*Campaign
	Advertisers map[string]*Advertiser
}

// Store persists advertisers and campaigns and publishes snapshots.
type Store struct {
	db   *pebble.DB
	now  func() time.Time
	mu   sync.Mutex
	snap atomic.Pointer[Snapshot]
	// OnChange, when set, is called (without locks held) after every change.
	onChange []func(*Snapshot)
}

// Open loads every advertiser and campaign from db.
func Open(db *pebble.DB, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	s := &Store{db: db, now: now}
	snap := &Snapshot{ByID: map[string]*Campaign{}, Advertisers: map[string]*Advertiser{}}
	if err := store.Scan(db, []byte(store.PrefixAdvertiser), func(_, v []byte) error {
		var a Advertiser
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("decode advertiser: %w", err)
		}
		snap.Advertisers[a.ID] = &a
		return nil
	}); err != nil {
		return nil, fmt.Errorf("campaign: load advertisers: %w", err)
	}
	if err := store.Scan(db, []byte(store.PrefixCampaign), func(_, v []byte) error {
		var c Campaign
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("decode campaign: %w", err)
		}
		snap.ByID[c.ID] = &c
		return nil
	}); err != nil {
		return nil, fmt.Errorf("campaign: load campaigns: %w", err)
	}
	s.publish(snap)
	return s, nil
}

// OnChange registers fn to be called with each new snapshot.
func (s *Store) OnChange(fn func(*Snapshot)) {
	s.mu.Lock()
	s.onChange = append(s.onChange, fn)
	s.mu.Unlock()
}

// Snapshot returns the current snapshot.
func (s *Store) Snapshot() *Snapshot { return s.snap.Load() }

func (s *Store) publish(snap *Snapshot) {
	snap.Campaigns = snap.Campaigns[:0]
	for _, c := range snap.ByID {
		snap.Campaigns = append(snap.Campaigns, c)
	}
	sort.Slice(snap.Campaigns, func(i, j int) bool { return snap.Campaigns[i].ID < snap.Campaigns[j].ID })
	s.snap.Store(snap)
}

func (s *Store) clone() *Snapshot {
	old := s.snap.Load()
	n := &Snapshot{ByID: make(map[string]*Campaign, len(old.ByID)+1), Advertisers: make(map[string]*Advertiser, len(old.Advertisers)+1)}
	for k, v := range old.ByID {
		n.ByID[k] = v
	}
	for k, v := range old.Advertisers {
		n.Advertisers[k] = v
	}
	return n
}

func (s *Store) notify() {
	s.mu.Lock()
	fns := append([]func(*Snapshot){}, s.onChange...)
	s.mu.Unlock()
	snap := s.snap.Load()
	for _, fn := range fns {
		fn(snap)
	}
}

// NewID returns a fresh server-made id with the given prefix ("cmp_").
func NewID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// validateAdvertiser normalises and checks an advertiser's fields.
func validateAdvertiser(a *Advertiser) error {
	a.Name = strings.TrimSpace(a.Name)
	if a.Name == "" || len(a.Name) > 200 {
		return &FieldError{"name", "required, at most 200 characters"}
	}
	if len(a.Domain) > 253 || strings.ContainsAny(a.Domain, " /:?#") {
		return &FieldError{"domain", "a bare domain such as shop.example"}
	}
	a.Country = strings.TrimPrefix(strings.TrimSpace(a.Country), "+")
	if len(a.Country) > 4 || strings.Trim(a.Country, "0123456789") != "" {
		return &FieldError{"country", "an ITU calling code such as 82, for national phone numbers"}
	}
	return nil
}

// UpdateAdvertiser replaces an advertiser's name, domain and country,
// keeping its id and creation time.
func (s *Store) UpdateAdvertiser(a Advertiser) (Advertiser, error) {
	old, err := s.Advertiser(a.ID)
	if err != nil {
		return Advertiser{}, err
	}
	if err := validateAdvertiser(&a); err != nil {
		return Advertiser{}, err
	}
	a.CreatedAt = old.CreatedAt
	return a, s.putAdvertiser(a)
}

// CreateAdvertiser stores a new advertiser.
func (s *Store) CreateAdvertiser(a Advertiser) (Advertiser, error) {
	if err := validateAdvertiser(&a); err != nil {
		return Advertiser{}, err
	}
	if a.ID == "" {
		a.ID = NewID("adv_")
	}
	a.CreatedAt = s.now().UTC()
	return a, s.putAdvertiser(a)
}

// PutAdvertiser stores a with its given id (used by the demo seed).
func (s *Store) putAdvertiser(a Advertiser) error {
	b, _ := json.Marshal(a)
	s.mu.Lock()
	if err := s.db.Set([]byte(store.PrefixAdvertiser+a.ID), b, pebble.Sync); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("store advertiser %s: %w", a.ID, err)
	}
	n := s.clone()
	n.Advertisers[a.ID] = &a
	s.publish(n)
	s.mu.Unlock()
	s.notify()
	return nil
}

// Advertiser returns an advertiser by id.
func (s *Store) Advertiser(id string) (Advertiser, error) {
	a := s.snap.Load().Advertisers[id]
	if a == nil {
		return Advertiser{}, ErrNotFound
	}
	return *a, nil
}

// Advertisers lists advertisers ordered by id.
func (s *Store) Advertisers() []Advertiser {
	snap := s.snap.Load()
	out := make([]Advertiser, 0, len(snap.Advertisers))
	for _, a := range snap.Advertisers {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Create validates and stores a new campaign.
func (s *Store) Create(c Campaign) (Campaign, error) {
	if c.Status == "" {
		c.Status = StatusActive
	}
	if c.Pacing == "" {
		c.Pacing = PacingEven
	}
	if c.Currency == "" {
		c.Currency = "USD"
	}
	if c.Start.IsZero() {
		c.Start = s.now().UTC().Truncate(time.Second)
	}
	if err := c.Validate(); err != nil {
		return Campaign{}, err
	}
	if _, ok := s.snap.Load().Advertisers[c.AdvertiserID]; !ok {
		return Campaign{}, &FieldError{"advertiser_id", "no such advertiser"}
	}
	if c.ID == "" {
		c.ID = NewID("cmp_")
	}
	now := s.now().UTC()
	c.CreatedAt, c.UpdatedAt = now, now
	return c, s.put(&c)
}

func (s *Store) put(c *Campaign) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if err := s.db.Set([]byte(store.PrefixCampaign+c.ID), b, pebble.Sync); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("store campaign %s: %w", c.ID, err)
	}
	n := s.clone()
	n.ByID[c.ID] = c
	s.publish(n)
	s.mu.Unlock()
	s.notify()
	return nil
}

// Get returns a campaign by id.
func (s *Store) Get(id string) (Campaign, error) {
	c := s.snap.Load().ByID[id]
	if c == nil {
		return Campaign{}, ErrNotFound
	}
	return *c, nil
}

// List returns the campaigns of an advertiser (all when empty), by id.
func (s *Store) List(advertiserID string) []Campaign {
	snap := s.snap.Load()
	out := make([]Campaign, 0, len(snap.Campaigns))
	for _, c := range snap.Campaigns {
		if advertiserID == "" || c.AdvertiserID == advertiserID {
			out = append(out, *c)
		}
	}
	return out
}

// Update replaces a campaign's definition after validation, keeping its id,
// advertiser and creation time.
func (s *Store) Update(c Campaign) (Campaign, error) {
	old, err := s.Get(c.ID)
	if err != nil {
		return Campaign{}, err
	}
	c.AdvertiserID = old.AdvertiserID
	c.CreatedAt = old.CreatedAt
	c.UpdatedAt = s.now().UTC()
	if err := c.Validate(); err != nil {
		return Campaign{}, err
	}
	return c, s.put(&c)
}

// Delete removes a campaign.
func (s *Store) Delete(id string) error {
	s.mu.Lock()
	if s.snap.Load().ByID[id] == nil {
		s.mu.Unlock()
		return ErrNotFound
	}
	if err := s.db.Delete([]byte(store.PrefixCampaign+id), pebble.Sync); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("delete campaign %s: %w", id, err)
	}
	n := s.clone()
	delete(n.ByID, id)
	s.publish(n)
	s.mu.Unlock()
	s.notify()
	return nil
}
