package audience

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
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

// Limits on events from outside.
const (
	// MaxEventAge is how far in the past an event's ts may be.
	MaxEventAge = 30 * 24 * time.Hour
	// MaxEventSkew is how far in the future an event's ts may be.
	MaxEventSkew = 5 * time.Minute
	// MaxEventValue bounds an event's value, in currency units.
	MaxEventValue = 1e9
	// MaxEventIDLen bounds an event id (the dedupe key).
	MaxEventIDLen = 128
	// MaxLineBytes bounds one JSON line of the events API.
	MaxLineBytes = 16 << 10
	// maxFanOut bounds the linked cookie and ad ids an e-mail-keyed event
	// also updates.
	maxFanOut = 4
)

var identityLinks = metrics.NewCounter(`chaser_identity_links_total`)

// EventOptions configure events, profiles and rule segments.
type EventOptions struct {
	// CategoryOf returns the category of product in the advertiser's feed,
	// "" when unknown. Rule leaves with a category use it. Default: none
	// (category leaves match nothing).
	CategoryOf func(adv, product string) string
	// OnEvent, when set, is called after an event was stored in its user's
	// profile, with the profile as it was before the event (oldest event
	// first). It runs synchronously on the ingesting goroutine with no lock
	// held and must be quick: the recommender takes its co-view and
	// co-purchase signal from it. Default: none.
	OnEvent func(ev Event, before *Profile)
}

// Event is one site event after its identifiers were pseudonymised.
type Event struct {
	AdvertiserID string
	Type         string
	User         Pseudonym  // the event's primary user: cookie id, else ad id, else e-mail
	UserKind     IDType     // the kind of User; IDUnknown is read as IDUID
	Links        []LinkedID // other ids of the same person in this event
	Products     []string
	ValueMicros  int64
	Currency     string
	Time         time.Time
	// ID, when set, makes the event idempotent: a second event of the same
	// type and id for the same user is dropped (ErrDuplicateEvent).
	ID string
}

// EventInput is an event as it arrives from outside (pixel query or a JSON
// line of the events API), before validation and pseudonymisation.
type EventInput struct {
	AdvertiserID string    `json:"advertiser_id"`
	Event        string    `json:"event"`
	ID           string    `json:"event_id,omitempty"`
	UID          string    `json:"uid,omitempty"`
	EmailSHA256  string    `json:"email_sha256,omitempty"`
	MAID         string    `json:"maid,omitempty"`
	Products     []string  `json:"products,omitempty"`
	Value        float64   `json:"value,omitempty"`
	Currency     string    `json:"currency,omitempty"`
	TS           time.Time `json:"ts,omitempty"`
	// LinkUID is a second cookie-kind id of the same browser (the pixel's
	// uid parameter when the browser also sent Chaser's cookie).
	LinkUID string `json:"-"`
}

// ParseEventLine parses one JSON line of the events API. Unknown fields,
// wrong types and trailing data are errors (*FieldError); the content is
// checked by Resolve.
func ParseEventLine(line []byte) (EventInput, error) {
	var in EventInput
	if len(line) > MaxLineBytes {
		return in, &FieldError{"line", fmt.Sprintf("longer than %d bytes", MaxLineBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var ute *json.UnmarshalTypeError
		var te *time.ParseError
		switch {
		case errors.As(err, &ute):
			return EventInput{}, &FieldError{ute.Field, "wrong type: want " + ute.Type.String()}
		case errors.As(err, &te):
			return EventInput{}, &FieldError{"ts", "not an RFC 3339 time"}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return EventInput{}, &FieldError{f, "unknown field"}
		}
		return EventInput{}, &FieldError{"line", "malformed JSON: " + err.Error()}
	}
	if dec.More() {
		return EventInput{}, &FieldError{"line", "more than one JSON value on the line"}
	}
	return in, nil
}

// ValidProductID reports whether s is an acceptable product id: 1 to
// MaxProductIDLen printable ASCII characters without commas.
func ValidProductID(s string) bool {
	if len(s) == 0 || len(s) > MaxProductIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// Resolve validates in at time now and pseudonymises its ids. The primary
// user is the cookie id when present, else the mobile ad id, else the hashed
// e-mail; the others become identity links. A zero ts means now; a ts older
// than MaxEventAge or more than MaxEventSkew ahead is refused. Errors are
// *FieldError named after the JSON fields.
func (m *Manager) Resolve(in EventInput, now time.Time) (Event, error) {
	ev := Event{AdvertiserID: in.AdvertiserID, Type: in.Event, ID: in.ID}
	if in.AdvertiserID == "" {
		return Event{}, &FieldError{"advertiser_id", "required"}
	}
	if len(in.AdvertiserID) > 64 || strings.ContainsAny(in.AdvertiserID, "/ \t\r\n") {
		return Event{}, &FieldError{"advertiser_id", "not an advertiser id"}
	}
	if !validEventType(in.Event) {
		return Event{}, &FieldError{"event", "required: 1–64 of a-z, 0-9, _ . - (page_view, product_view, add_to_cart, purchase, login, or your own)"}
	}
	if len(in.ID) > MaxEventIDLen {
		return Event{}, &FieldError{"event_id", fmt.Sprintf("longer than %d bytes", MaxEventIDLen)}
	}
	type idIn struct {
		field string
		t     IDType
		raw   string
	}
	ids := [...]idIn{{"uid", IDUID, in.UID}, {"maid", IDMAID, in.MAID}, {"email_sha256", IDEmailSHA256, in.EmailSHA256}, {"uid", IDUID, in.LinkUID}}
	for _, id := range ids {
		if id.raw == "" {
			continue
		}
		kind, norm, err := Normalize(id.t, id.raw, "")
		if err != nil {
			return Event{}, &FieldError{id.field, err.Error()}
		}
		p := m.pz.Of(kind, norm)
		if ev.User.IsZero() {
			ev.User, ev.UserKind = p, kind
			continue
		}
		if p != ev.User {
			ev.Links = append(ev.Links, LinkedID{ID: p, Kind: kind})
		}
	}
	if ev.User.IsZero() {
		return Event{}, &FieldError{"uid", "at least one of uid, maid, email_sha256 is required"}
	}
	if len(in.Products) > MaxEventProducts {
		return Event{}, &FieldError{"products", fmt.Sprintf("more than %d products", MaxEventProducts)}
	}
	for i, p := range in.Products {
		if !ValidProductID(p) {
			return Event{}, &FieldError{fmt.Sprintf("products[%d]", i), fmt.Sprintf("a product id is 1–%d printable characters without commas", MaxProductIDLen)}
		}
		dup := false
		for _, q := range ev.Products {
			dup = dup || q == p
		}
		if !dup {
			ev.Products = append(ev.Products, p)
		}
	}
	if v := in.Value; v < 0 || v > MaxEventValue || math.IsNaN(v) || math.IsInf(v, 0) {
		return Event{}, &FieldError{"value", fmt.Sprintf("must be from 0 to %g currency units", float64(MaxEventValue))}
	}
	ev.ValueMicros = int64(math.Round(in.Value * 1e6))
	if c := in.Currency; c != "" {
		if len(c) != 3 || !isLetters(c) {
			return Event{}, &FieldError{"currency", "must be a three-letter ISO 4217 code"}
		}
		ev.Currency = strings.ToUpper(c)
	}
	ev.Time = now
	if !in.TS.IsZero() {
		if in.TS.Before(now.Add(-MaxEventAge)) {
			return Event{}, &FieldError{"ts", fmt.Sprintf("older than %d days", int(MaxEventAge/(24*time.Hour)))}
		}
		if in.TS.After(now.Add(MaxEventSkew)) {
			return Event{}, &FieldError{"ts", fmt.Sprintf("more than %s in the future", MaxEventSkew)}
		}
		ev.Time = in.TS
	}
	return ev, nil
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// RecordEvent records ev: it appends the event to its user's profile at the
// advertiser (and, for an event keyed by e-mail, to the profiles of up to
// four cookie or ad ids linked to that e-mail), stores identity links,
// re-evaluates the advertiser's rule audiences for those users, and calls
// the OnEvent hook. It returns ErrDuplicateEvent for a repeated event id.
func (m *Manager) RecordEvent(ev Event) error {
	if ev.AdvertiserID == "" || ev.User.IsZero() {
		return fmt.Errorf("record event: %w: advertiser and user required", ErrInvalid)
	}
	if !validEventType(ev.Type) {
		return fmt.Errorf("record event: %w: bad event type", ErrInvalid)
	}
	if ev.Time.IsZero() {
		ev.Time = m.now()
	}
	snap := m.snap.Load()
	if _, gone := snap.erased[ev.User]; gone {
		return nil // an erased person is not tracked again through the same id
	}
	seg := m.seg
	users := []Pseudonym{ev.User}
	if ev.UserKind == IDEmailSHA256 || ev.UserKind == IDPhoneSHA256 {
		links, err := m.Links(ev.User, 64)
		if err != nil {
			return fmt.Errorf("record event: %w", err)
		}
		for _, l := range links {
			if len(users) > maxFanOut {
				break
			}
			if _, gone := snap.erased[l.ID]; !gone && (l.Kind == IDUID || l.Kind == IDMAID) {
				users = append(users, l.ID)
			}
		}
	}
	// New links only: existing ones are not rewritten (nor announced again).
	var newLinks []LinkedID
	for _, l := range ev.Links {
		if _, gone := snap.erased[l.ID]; gone || l.ID.IsZero() || l.ID == ev.User {
			continue
		}
		if _, err := store.Get(m.db, linkKey(ev.User, l.ID)); errors.Is(err, store.ErrNotFound) {
			newLinks = append(newLinks, l)
		} else if err != nil {
			return fmt.Errorf("record event: read link: %w", err)
		}
	}

	now := m.now()
	var before *Profile
	seg.mu.RLock()
	unlock := seg.lockUsers(users)
	views := make([]*profView, len(users))
	batch := m.db.NewBatch()
	var dupErr error
	for i, u := range users {
		v := &profView{}
		raw, err := store.Get(m.db, profileKey(ev.AdvertiserID, u))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			unlock()
			seg.mu.RUnlock()
			batch.Close()
			return fmt.Errorf("record event: read profile: %w", err)
		}
		if err := v.decode(raw); err != nil {
			m.log.Warn("audience: unreadable profile replaced", "advertiser", ev.AdvertiserID, "user", u.String(), "err", err)
			v.reset()
		}
		if i == 0 && m.seg.opts.OnEvent != nil {
			before = v.profile()
		}
		if _, err := v.addAs(&ev, now.Unix(), i > 0); err != nil { // users[1:] hold linked copies
			if i == 0 {
				dupErr = err
			}
			continue
		}
		_ = batch.Set(profileKey(ev.AdvertiserID, u), v.encode(nil), nil)
		views[i] = v
	}
	for _, l := range newLinks {
		_ = batch.Set(linkKey(ev.User, l.ID), []byte{byte(l.Kind)}, nil)
		_ = batch.Set(linkKey(l.ID, ev.User), []byte{byte(userKind(ev.UserKind))}, nil)
	}
	err := batch.Commit(pebble.NoSync)
	batch.Close()
	if err == nil {
		for i, u := range users {
			if views[i] != nil {
				m.profiles.invalidate(ev.AdvertiserID, u)
				seg.evaluateUser(ev.AdvertiserID, u, views[i], now)
			}
		}
	}
	unlock()
	seg.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	if err := m.undoIfErased(ev, users, newLinks); err != nil {
		return err
	}
	for _, l := range newLinks {
		m.linkAdded(LinkedID{ID: ev.User, Kind: userKind(ev.UserKind)}, l)
	}
	if dupErr != nil {
		return dupErr
	}
	if m.seg.opts.OnEvent != nil {
		m.seg.opts.OnEvent(ev, before)
	}
	return nil
}

func userKind(k IDType) IDType {
	if k == IDUnknown {
		return IDUID
	}
	return k
}

// linkAdded is called, with no lock held and after the link is committed,
// for every new identity link an event brings: a and b are the same person.
// An e-mail or phone linked to a cookie or ad id goes to the list audiences
// (OnLink), so a list of e-mails also reaches the cookie ids seen in bid
// requests.
func (m *Manager) linkAdded(a, b LinkedID) {
	identityLinks.Inc()
	from, to := a, b
	if to.Kind == IDEmailSHA256 || to.Kind == IDPhoneSHA256 {
		from, to = b, a
	}
	if (from.Kind != IDEmailSHA256 && from.Kind != IDPhoneSHA256) || (to.Kind != IDUID && to.Kind != IDMAID) {
		return
	}
	if err := m.OnLink(from.ID, to.ID); err != nil {
		m.log.Warn("audience: apply identity link", "from", from.ID.String(), "to", to.ID.String(), "err", err)
	}
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
	var view profView
	if err := view.decode(v); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	return view.profile(), nil
}

// undoIfErased deletes what RecordEvent just wrote for ids erased meanwhile.
// Erase marks a person erased before it deletes their data, so a write that
// committed after that deletion is seen here and removed again.
func (m *Manager) undoIfErased(ev Event, users []Pseudonym, links []LinkedID) error {
	snap := m.snap.Load()
	if len(snap.erased) == 0 {
		return nil
	}
	b := m.db.NewBatch()
	defer b.Close()
	for _, u := range users {
		if snap.Erased(u) {
			_ = b.Delete(profileKey(ev.AdvertiserID, u), nil)
			m.profiles.invalidate(ev.AdvertiserID, u)
		}
	}
	for _, l := range links {
		if snap.Erased(l.ID) || snap.Erased(ev.User) {
			_ = b.Delete(linkKey(ev.User, l.ID), nil)
			_ = b.Delete(linkKey(l.ID, ev.User), nil)
		}
	}
	if b.Count() == 0 {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("record event: undo for an erased id: %w", err)
	}
	return nil
}
