package audience

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/chaser-dsp/chaser/store"
)

// Profile bounds. A profile is what Chaser knows of one pseudonymous user at
// one advertiser: recent events (bounded in number and age), lifetime counts
// per event type, purchase totals for RFM, and per-product interaction counts.
const (
	// MaxProfileEvents bounds the recent events kept per user and advertiser.
	MaxProfileEvents = 200
	// ProfileRetentionDays is how long recent events are kept; lifetime counts
	// and purchase totals outlive them.
	ProfileRetentionDays = 180
	// MaxProfileTypes bounds the distinct event types of one profile; events
	// of further types are refused (ErrTooManyTypes).
	MaxProfileTypes = 32
	// MaxProductStats bounds the per-product counters of one profile (the
	// most recently touched are kept).
	MaxProductStats = 100
	// MaxEventProducts bounds the products of one event.
	MaxEventProducts = 20
	// MaxProductIDLen bounds a product id.
	MaxProductIDLen = 128
)

// profileVersion is the first byte of a binary profile. Profiles written
// before it were JSON (first byte '{') or version 2 (events without the
// linked-copy mark), and are still read.
const (
	profileVersion   = 3
	profileVersionV2 = 2
)

// Profile errors.
var (
	ErrTooManyTypes   = errors.New("audience: profile has too many event types")
	ErrDuplicateEvent = errors.New("audience: duplicate event id")
	errCorruptProfile = errors.New("audience: corrupt profile")
)

// ProfileEvent is one recent event as kept in a profile.
type ProfileEvent struct {
	Type        string   `json:"t"`
	Products    []string `json:"p,omitempty"`
	ValueMicros int64    `json:"v,omitempty"`
	Unix        int64    `json:"ts"`
	// Linked marks the copy of an event keyed by an e-mail or phone that
	// RecordEvent also stores in the profiles of the cookie and ad ids
	// linked to it: the event's own record is in that id's profile, so a
	// consumer of every profile (the recommenders' warm start) counts the
	// event once by skipping linked copies.
	Linked bool `json:"linked,omitempty"`
}

// ProductStat counts one kind of interaction with one product.
type ProductStat struct {
	Product string `json:"product"`
	Event   string `json:"event"`
	Count   int64  `json:"count"`
	Unix    int64  `json:"last"`
}

// Profile is what Chaser knows of one (pseudonymous) user at one advertiser.
type Profile struct {
	Events []ProfileEvent `json:"events"` // oldest first, at most MaxProfileEvents, at most ProfileRetentionDays old
	// Counts is the lifetime number of events per type.
	Counts map[string]int64 `json:"counts,omitempty"`
	// Purchases, their total value (micros, in the advertiser's currency) and
	// the first and last purchase times (unix seconds): R, F and M.
	Purchases      int64 `json:"purchases,omitempty"`
	MonetaryMicros int64 `json:"monetary_micros,omitempty"`
	FirstPurchase  int64 `json:"first_purchase,omitempty"`
	LastPurchase   int64 `json:"last_purchase,omitempty"`
	// FirstSeen and LastSeen are the times of the oldest and newest event.
	FirstSeen int64 `json:"first_seen,omitempty"`
	LastSeen  int64 `json:"last_seen,omitempty"`
	// Products counts interactions per product and event type, most recent
	// MaxProductStats kept.
	Products []ProductStat `json:"products,omitempty"`
}

func profileKey(adv string, p Pseudonym) []byte {
	k := make([]byte, 0, len(store.PrefixProfile)+len(adv)+1+len(p))
	k = append(k, store.PrefixProfile...)
	k = append(k, adv...)
	k = append(k, '/')
	return append(k, p[:]...)
}

func profilePrefix(adv string) []byte {
	return []byte(store.PrefixProfile + adv + "/")
}

// ForEachProfile calls fn for every stored profile of advertiser adv, or of
// every advertiser when adv is "", in key order: by advertiser id, then by
// user pseudonym. It streams one profile at a time from a Pebble iterator
// (a consistent view of the store as of the call; memory does not grow with
// the number of profiles) and holds no lock of the Manager, so events and
// erasure go on meanwhile, unseen by the walk. Profiles of erased users are
// skipped; so are unreadable ones, counted in one warning at the end. fn owns
// the *Profile it is given. An error from fn stops the walk and is returned.
func (m *Manager) ForEachProfile(adv string, fn func(adv string, user Pseudonym, p *Profile) error) error {
	pre := []byte(store.PrefixProfile)
	if adv != "" {
		pre = profilePrefix(adv)
	}
	var (
		v       profView
		user    Pseudonym
		corrupt int
	)
	err := store.Scan(m.db, pre, func(k, val []byte) error {
		// k is prf/<adv>/<pseudonym>; advertiser ids hold no '/'.
		if len(k) < len(store.PrefixProfile)+2+len(user) || k[len(k)-len(user)-1] != '/' {
			corrupt++
			return nil
		}
		copy(user[:], k[len(k)-len(user):])
		if m.snap.Load().Erased(user) {
			return nil // being erased: Erase deletes the profile next
		}
		if err := v.decode(val); err != nil {
			corrupt++
			return nil
		}
		return fn(string(k[len(store.PrefixProfile):len(k)-len(user)-1]), user, v.profile())
	})
	if corrupt > 0 {
		m.log.Warn("audience: unreadable profiles skipped", "advertiser", adv, "count", corrupt)
	}
	if err != nil {
		return fmt.Errorf("read profiles: %w", err)
	}
	return nil
}

// ptype is one event type of a profile with its lifetime count.
type ptype struct {
	name  []byte
	count int64
	last  int64
}

// pevent is one recent event of a profile view.
type pevent struct {
	typ    uint16
	hasID  bool
	linked bool // a copy stored for a linked id (ProfileEvent.Linked)
	unix   int64
	value  int64
	poff   uint32 // products: evProds[poff : poff+pn]
	pn     uint32
	id     uint64 // hash of (type, event id) when hasID
}

// pstat is one product counter.
type pstat struct {
	prod  uint32
	typ   uint16
	count int64
	last  int64
}

// profView is a decoded profile that borrows its strings from the encoded
// bytes, so evaluating rules over millions of stored profiles allocates
// nothing per profile. Reset and reused by decode.
type profView struct {
	firstSeen, lastSeen int64
	types               []ptype
	prods               [][]byte
	orders, monetary    int64
	firstBuy, lastBuy   int64
	events              []pevent // oldest first
	evProds             []uint32
	stats               []pstat

	cats  []string // category per product, filled lazily
	catOK []bool
}

func (v *profView) reset() {
	v.firstSeen, v.lastSeen = 0, 0
	v.types = v.types[:0]
	v.prods = v.prods[:0]
	v.orders, v.monetary, v.firstBuy, v.lastBuy = 0, 0, 0, 0
	v.events = v.events[:0]
	v.evProds = v.evProds[:0]
	v.stats = v.stats[:0]
	v.cats = v.cats[:0]
	v.catOK = v.catOK[:0]
}

func (v *profView) empty() bool { return len(v.types) == 0 }

func (v *profView) typeIndex(name string) int {
	for i := range v.types {
		if string(v.types[i].name) == name {
			return i
		}
	}
	return -1
}

func (v *profView) prodIndex(name string) int {
	for i := range v.prods {
		if string(v.prods[i]) == name {
			return i
		}
	}
	return -1
}

func (v *profView) eventProducts(e *pevent) []uint32 {
	return v.evProds[e.poff : e.poff+e.pn]
}

func (v *profView) category(ctx *evalCtx, pi uint32) string {
	for len(v.cats) < len(v.prods) {
		v.cats = append(v.cats, "")
		v.catOK = append(v.catOK, false)
	}
	if !v.catOK[pi] {
		v.cats[pi] = ctx.category(v.prods[pi])
		v.catOK[pi] = true
	}
	return v.cats[pi]
}

// reader decodes varints from a profile, remembering the first error.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	if len(r.b) > 0 && r.b[0] < 0x80 { // most values fit one byte
		x := uint64(r.b[0])
		r.b = r.b[1:]
		return x
	}
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *reader) varint() int64 {
	if len(r.b) > 0 && r.b[0] < 0x80 {
		x := int64(r.b[0] >> 1)
		if r.b[0]&1 != 0 {
			x = ^x
		}
		r.b = r.b[1:]
		return x
	}
	x, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *reader) count(max int) int {
	n := r.uvarint()
	if n > uint64(max) {
		r.bad, r.b = true, nil
		return 0
	}
	return int(n)
}

func (r *reader) bytes(max int) []byte {
	n := r.count(max)
	if r.bad || n > len(r.b) {
		r.bad, r.b = true, nil
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) fixed64() uint64 {
	if len(r.b) < 8 {
		r.bad, r.b = true, nil
		return 0
	}
	x := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return x
}

// maxStoredProducts bounds a profile's product table on decode.
const maxStoredProducts = MaxProfileEvents*MaxEventProducts + MaxProductStats

// decode fills v from an encoded profile (binary, or the legacy JSON form).
// v borrows from b.
func (v *profView) decode(b []byte) error { return v.decodeSome(b, true) }

// decodeSome is decode, leaving out the product counters unless stats: a
// rule without a lifetime product or category leaf does not read them.
func (v *profView) decodeSome(b []byte, stats bool) error {
	v.reset()
	if len(b) == 0 {
		return nil
	}
	if b[0] == '{' {
		return v.decodeLegacy(b)
	}
	if b[0] != profileVersion && b[0] != profileVersionV2 {
		return fmt.Errorf("%w: version %d", errCorruptProfile, b[0])
	}
	flagBits := uint(1) // version 2: type<<1 | hasID
	if b[0] == profileVersion {
		flagBits = 2 // type<<2 | linked<<1 | hasID
	}
	r := reader{b: b[1:]}
	v.firstSeen = r.varint()
	v.lastSeen = r.varint()
	nt := r.count(MaxProfileTypes)
	for i := 0; i < nt && !r.bad; i++ {
		name := r.bytes(64)
		v.types = append(v.types, ptype{name: name, count: int64(r.uvarint()), last: r.varint()})
	}
	np := r.count(maxStoredProducts)
	for i := 0; i < np && !r.bad; i++ {
		v.prods = append(v.prods, r.bytes(MaxProductIDLen))
	}
	v.orders = int64(r.uvarint())
	v.monetary = int64(r.uvarint())
	v.firstBuy = r.varint()
	v.lastBuy = r.varint()
	ne := r.count(MaxProfileEvents)
	var prev int64
	for i := 0; i < ne && !r.bad; i++ {
		h := r.uvarint()
		e := pevent{typ: uint16(h >> flagBits), hasID: h&1 == 1, linked: flagBits == 2 && h&2 != 0}
		prev += r.varint()
		e.unix = prev
		e.value = int64(r.uvarint())
		n := r.count(MaxEventProducts)
		e.poff, e.pn = uint32(len(v.evProds)), uint32(n)
		for j := 0; j < n && !r.bad; j++ {
			pi := r.uvarint()
			if pi >= uint64(len(v.prods)) {
				r.bad = true
			}
			v.evProds = append(v.evProds, uint32(pi))
		}
		if e.hasID {
			e.id = r.fixed64()
		}
		if h>>flagBits >= uint64(len(v.types)) || e.value < 0 {
			r.bad = true
		}
		v.events = append(v.events, e)
	}
	if !stats && !r.bad {
		return nil
	}
	ns := r.count(MaxProductStats)
	for i := 0; i < ns && !r.bad; i++ {
		s := pstat{prod: uint32(r.uvarint()), typ: uint16(r.uvarint()), count: int64(r.uvarint()), last: r.varint()}
		if int(s.prod) >= len(v.prods) || int(s.typ) >= len(v.types) {
			r.bad = true
		}
		v.stats = append(v.stats, s)
	}
	if r.bad || len(r.b) != 0 || v.orders < 0 || v.monetary < 0 {
		v.reset()
		return errCorruptProfile
	}
	return nil
}

// decodeLegacy reads the JSON profiles of earlier versions.
func (v *profView) decodeLegacy(b []byte) error {
	var old struct {
		Events []ProfileEvent `json:"events"`
	}
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("%w: %v", errCorruptProfile, err)
	}
	for _, e := range old.Events {
		if !validEventType(e.Type) {
			continue
		}
		_, _ = v.add(&Event{Type: e.Type, Products: e.Products, ValueMicros: max(e.ValueMicros, 0), Time: time.Unix(e.Unix, 0)}, 0)
	}
	return nil
}

func appendUvarint(b []byte, x uint64) []byte { return binary.AppendUvarint(b, x) }
func appendVarint(b []byte, x int64) []byte   { return binary.AppendVarint(b, x) }

// encode appends the binary form of v to dst. Products no longer referenced
// are dropped.
func (v *profView) encode(dst []byte) []byte {
	// Renumber the products still referenced.
	remap := make([]int32, len(v.prods))
	for i := range remap {
		remap[i] = -1
	}
	var order []uint32
	mark := func(pi uint32) {
		if remap[pi] < 0 {
			remap[pi] = int32(len(order))
			order = append(order, pi)
		}
	}
	for i := range v.events {
		for _, pi := range v.eventProducts(&v.events[i]) {
			mark(pi)
		}
	}
	for i := range v.stats {
		mark(v.stats[i].prod)
	}
	dst = append(dst, profileVersion)
	dst = appendVarint(dst, v.firstSeen)
	dst = appendVarint(dst, v.lastSeen)
	dst = appendUvarint(dst, uint64(len(v.types)))
	for _, t := range v.types {
		dst = appendUvarint(dst, uint64(len(t.name)))
		dst = append(dst, t.name...)
		dst = appendUvarint(dst, uint64(t.count))
		dst = appendVarint(dst, t.last)
	}
	dst = appendUvarint(dst, uint64(len(order)))
	for _, pi := range order {
		dst = appendUvarint(dst, uint64(len(v.prods[pi])))
		dst = append(dst, v.prods[pi]...)
	}
	dst = appendUvarint(dst, uint64(v.orders))
	dst = appendUvarint(dst, uint64(v.monetary))
	dst = appendVarint(dst, v.firstBuy)
	dst = appendVarint(dst, v.lastBuy)
	dst = appendUvarint(dst, uint64(len(v.events)))
	var prev int64
	for i := range v.events {
		e := &v.events[i]
		h := uint64(e.typ) << 2
		if e.linked {
			h |= 2
		}
		if e.hasID {
			h |= 1
		}
		dst = appendUvarint(dst, h)
		dst = appendVarint(dst, e.unix-prev)
		prev = e.unix
		dst = appendUvarint(dst, uint64(e.value))
		ps := v.eventProducts(e)
		dst = appendUvarint(dst, uint64(len(ps)))
		for _, pi := range ps {
			dst = appendUvarint(dst, uint64(remap[pi]))
		}
		if e.hasID {
			dst = binary.LittleEndian.AppendUint64(dst, e.id)
		}
	}
	dst = appendUvarint(dst, uint64(len(v.stats)))
	for _, s := range v.stats {
		dst = appendUvarint(dst, uint64(remap[s.prod]))
		dst = appendUvarint(dst, uint64(s.typ))
		dst = appendUvarint(dst, uint64(s.count))
		dst = appendVarint(dst, s.last)
	}
	return dst
}

// eventIDHash is the dedupe key of an event id of a given type.
func eventIDHash(typ, id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return h.Sum64() | 1 // never 0
}

// add records ev in v. Events older than retention before now (unix
// seconds; 0 = no trimming by age) are dropped, and at most
// MaxProfileEvents kept. It returns ErrDuplicateEvent when ev carries an id
// already recorded for its type, and ErrTooManyTypes when the profile holds
// MaxProfileTypes other types already.
func (v *profView) add(ev *Event, now int64) (int, error) { return v.addAs(ev, now, false) }

// addAs is add, marking the event a linked copy (ProfileEvent.Linked) when
// linked.
func (v *profView) addAs(ev *Event, now int64, linked bool) (int, error) {
	t := v.typeIndex(ev.Type)
	if t < 0 {
		if len(v.types) >= MaxProfileTypes {
			return 0, ErrTooManyTypes
		}
		v.types = append(v.types, ptype{name: []byte(ev.Type)})
		t = len(v.types) - 1
	}
	unix := ev.Time.Unix()
	e := pevent{typ: uint16(t), unix: unix, value: max(ev.ValueMicros, 0), linked: linked}
	if ev.ID != "" {
		e.hasID, e.id = true, eventIDHash(ev.Type, ev.ID)
		for i := range v.events {
			if o := &v.events[i]; o.hasID && o.id == e.id && o.typ == e.typ {
				return t, ErrDuplicateEvent
			}
		}
	}
	e.poff = uint32(len(v.evProds))
	for _, p := range ev.Products {
		if len(p) == 0 || len(p) > MaxProductIDLen || e.pn >= MaxEventProducts {
			continue
		}
		pi := v.prodIndex(p)
		if pi < 0 {
			v.prods = append(v.prods, []byte(p))
			pi = len(v.prods) - 1
		}
		v.evProds = append(v.evProds, uint32(pi))
		e.pn++
		v.touchStat(uint32(pi), uint16(t), unix)
	}
	// Insert in time order (after events of the same second).
	at := len(v.events)
	for at > 0 && v.events[at-1].unix > unix {
		at--
	}
	v.events = slices.Insert(v.events, at, e)

	ty := &v.types[t]
	ty.count++
	ty.last = max(ty.last, unix)
	if v.firstSeen == 0 || unix < v.firstSeen {
		v.firstSeen = unix
	}
	v.lastSeen = max(v.lastSeen, unix)
	if ev.Type == EventPurchase {
		v.orders++
		if v.monetary+e.value >= v.monetary { // saturate instead of overflowing
			v.monetary += e.value
		}
		if v.firstBuy == 0 || unix < v.firstBuy {
			v.firstBuy = unix
		}
		v.lastBuy = max(v.lastBuy, unix)
	}
	v.trim(now)
	return t, nil
}

// trim drops events beyond the retention window and the count bound.
func (v *profView) trim(now int64) {
	drop := 0
	if now > 0 {
		from := now - ProfileRetentionDays*daySeconds
		for drop < len(v.events) && v.events[drop].unix <= from {
			drop++
		}
	}
	if n := len(v.events) - drop; n > MaxProfileEvents {
		drop += n - MaxProfileEvents
	}
	if drop > 0 {
		v.events = append(v.events[:0], v.events[drop:]...)
	}
}

func (v *profView) touchStat(pi uint32, typ uint16, unix int64) {
	for i := range v.stats {
		if s := &v.stats[i]; s.prod == pi && s.typ == typ {
			s.count++
			s.last = max(s.last, unix)
			return
		}
	}
	if len(v.stats) >= MaxProductStats {
		oldest := 0
		for i := range v.stats {
			if v.stats[i].last < v.stats[oldest].last {
				oldest = i
			}
		}
		if v.stats[oldest].last > unix {
			return // older than everything kept
		}
		v.stats = slices.Delete(v.stats, oldest, oldest+1)
	}
	v.stats = append(v.stats, pstat{prod: pi, typ: typ, count: 1, last: unix})
}

// profile converts v to the public, self-contained form.
func (v *profView) profile() *Profile {
	p := &Profile{
		Purchases: v.orders, MonetaryMicros: v.monetary, FirstPurchase: v.firstBuy, LastPurchase: v.lastBuy,
		FirstSeen: v.firstSeen, LastSeen: v.lastSeen,
	}
	if len(v.types) == 0 {
		return p
	}
	names := make([]string, len(v.types))
	p.Counts = make(map[string]int64, len(v.types))
	for i, t := range v.types {
		names[i] = string(t.name)
		p.Counts[names[i]] = t.count
	}
	prods := make([]string, len(v.prods))
	for i, b := range v.prods {
		prods[i] = string(b)
	}
	p.Events = make([]ProfileEvent, len(v.events))
	for i := range v.events {
		e := &v.events[i]
		pe := ProfileEvent{Type: names[e.typ], ValueMicros: e.value, Unix: e.unix, Linked: e.linked}
		if e.pn > 0 {
			pe.Products = make([]string, 0, e.pn)
			for _, pi := range v.eventProducts(e) {
				pe.Products = append(pe.Products, prods[pi])
			}
		}
		p.Events[i] = pe
	}
	for _, s := range v.stats {
		p.Products = append(p.Products, ProductStat{Product: prods[s.prod], Event: names[s.typ], Count: s.count, Unix: s.last})
	}
	return p
}

// Identity links: "lnk/<a>/<b>" says ids a and b belong to the same person;
// every link is stored in both directions. The value is the kind of b (one
// byte; empty in links written before kinds were kept).

func linkPrefix(p Pseudonym) []byte {
	k := make([]byte, 0, len(store.PrefixLink)+len(p)+1)
	k = append(k, store.PrefixLink...)
	k = append(k, p[:]...)
	return append(k, '/')
}

func linkKey(a, b Pseudonym) []byte {
	return append(linkPrefix(a), b[:]...)
}

// hasLink reports whether p (an e-mail or phone pseudonym) is linked to an
// id seen in the bid stream.
func (m *Manager) hasLink(p Pseudonym) bool {
	found := false
	_ = store.Scan(m.db, linkPrefix(p), func(_, _ []byte) error {
		found = true
		return errStop
	})
	return found
}

// LinkedID is an identifier linked to another, with its kind.
type LinkedID struct {
	ID   Pseudonym
	Kind IDType
}

// Links returns up to max ids linked to p, in key order.
func (m *Manager) Links(p Pseudonym, max int) ([]LinkedID, error) {
	var out []LinkedID
	pre := linkPrefix(p)
	err := store.Scan(m.db, pre, func(k, v []byte) error {
		if len(out) >= max {
			return errStop
		}
		var l LinkedID
		if len(k) != len(pre)+len(l.ID) {
			return nil
		}
		copy(l.ID[:], k[len(pre):])
		if len(v) == 1 {
			l.Kind = IDType(v[0])
		}
		out = append(out, l)
		return nil
	})
	if err != nil && err != errStop {
		return nil, fmt.Errorf("read links: %w", err)
	}
	return out, nil
}

type stopErr struct{}

func (stopErr) Error() string { return "stop" }

var errStop error = stopErr{}

func timeDays(d int) time.Duration { return time.Duration(d) * 24 * time.Hour }
