package audience

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// Event types of the pixel and the events API. Others are kept and usable
// in rules.
const (
	EventPageView    = "page_view"
	EventProductView = "product_view"
	EventAddToCart   = "add_to_cart"
	EventPurchase    = "purchase"
	EventLogin       = "login"
)

// MaxProfileEvents bounds the events kept per user and advertiser.
const MaxProfileEvents = 200

// Event is one site event after its identifiers were pseudonymised.
type Event struct {
	AdvertiserID string
	Type         string
	User         Pseudonym   // the event's primary user (cookie id when present)
	Links        []Pseudonym // other ids of the same person in this event
	Products     []string
	ValueMicros  int64
	Currency     string
	Time         time.Time
}

// ProfileEvent is one event as kept in a profile.
type ProfileEvent struct {
	Type        string   `json:"t"`
	Products    []string `json:"p,omitempty"`
	ValueMicros int64    `json:"v,omitempty"`
	Unix        int64    `json:"ts"`
}

// Profile is what Chaser knows of one (pseudonymous) user at one advertiser.
type Profile struct {
	Events []ProfileEvent `json:"events"` // oldest first, at most MaxProfileEvents
}

func profileKey(adv string, p Pseudonym) []byte {
	k := make([]byte, 0, len(store.PrefixProfile)+len(adv)+1+len(p))
	k = append(k, store.PrefixProfile...)
	k = append(k, adv...)
	k = append(k, '/')
	return append(k, p[:]...)
}

// RecordEvent appends ev to the user's profile and records identity links.
func (m *Manager) RecordEvent(ev Event) error {
	if ev.AdvertiserID == "" || ev.User.IsZero() {
		return fmt.Errorf("record event: %w: advertiser and user required", ErrInvalid)
	}
	if _, gone := m.snap.Load().erased[ev.User]; gone {
		return nil // an erased person is not tracked again through the same id
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prof, err := m.profileLocked(ev.AdvertiserID, ev.User)
	if err != nil {
		return err
	}
	prof.Events = append(prof.Events, ProfileEvent{Type: ev.Type, Products: ev.Products, ValueMicros: ev.ValueMicros, Unix: ev.Time.Unix()})
	if n := len(prof.Events); n > MaxProfileEvents {
		prof.Events = append(prof.Events[:0], prof.Events[n-MaxProfileEvents:]...)
	}
	b, err := json.Marshal(prof)
	if err != nil {
		return err
	}
	batch := m.db.NewBatch()
	defer batch.Close()
	_ = batch.Set(profileKey(ev.AdvertiserID, ev.User), b, nil)
	for _, l := range ev.Links {
		if l == ev.User || l.IsZero() {
			continue
		}
		_ = batch.Set(append(linkPrefix(l), ev.User[:]...), nil, nil)
		_ = batch.Set(append(linkPrefix(ev.User), l[:]...), nil, nil)
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	return nil
}

func (m *Manager) profileLocked(adv string, p Pseudonym) (*Profile, error) {
	v, err := store.Get(m.db, profileKey(adv, p))
	if errors.Is(err, store.ErrNotFound) {
		return &Profile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	var prof Profile
	if err := json.Unmarshal(v, &prof); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	return &prof, nil
}

// Profile returns the user's profile at an advertiser (empty when unknown).
func (m *Manager) Profile(adv string, p Pseudonym) (*Profile, error) {
	v, err := store.Get(m.db, profileKey(adv, p))
	if errors.Is(err, store.ErrNotFound) {
		return &Profile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	var prof Profile
	if err := json.Unmarshal(v, &prof); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	return &prof, nil
}
