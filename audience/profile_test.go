package audience

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestProfileRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	v := &profView{}
	add := func(e Event) {
		t.Helper()
		if _, err := v.add(&e, now.Unix()); err != nil {
			t.Fatal(err)
		}
	}
	add(ev(EventProductView, now.Add(-3*time.Hour), "sku-1", "sku-2"))
	add(ev(EventAddToCart, now.Add(-2*time.Hour), "sku-2"))
	p := ev(EventPurchase, now.Add(-time.Hour), "sku-2")
	p.ValueMicros = 12_500_000
	add(p)
	add(ev("custom.signup", now.Add(-4*time.Hour))) // out of order: sorted in
	b := v.encode(nil)
	var w profView
	if err := w.decode(b); err != nil {
		t.Fatal(err)
	}
	got := w.profile()
	if n := len(got.Events); n != 4 {
		t.Fatalf("%d events, want 4", n)
	}
	if got.Events[0].Type != "custom.signup" || got.Events[3].Type != EventPurchase || got.Events[3].ValueMicros != 12_500_000 {
		t.Errorf("events %+v", got.Events)
	}
	if got.Purchases != 1 || got.MonetaryMicros != 12_500_000 || got.LastPurchase != now.Add(-time.Hour).Unix() {
		t.Errorf("RFM %+v", got)
	}
	if got.Counts[EventProductView] != 1 || got.Counts[EventAddToCart] != 1 || got.FirstSeen != now.Add(-4*time.Hour).Unix() {
		t.Errorf("counts %+v first %d", got.Counts, got.FirstSeen)
	}
	if len(got.Products) != 4 { // sku-1 view, sku-2 view, sku-2 cart, sku-2 purchase
		t.Errorf("product stats %+v", got.Products)
	}
	// Re-encoding a decoded view gives the same bytes.
	if b2 := w.encode(nil); string(b2) != string(b) {
		t.Errorf("re-encoding differs")
	}
}

func TestProfileBounds(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	v := &profView{}
	// An old event beyond retention is dropped from recent events but
	// counted for life.
	old := ev(EventPageView, now.Add(-(ProfileRetentionDays+1)*24*time.Hour))
	if _, err := v.add(&old, now.Unix()); err != nil {
		t.Fatal(err)
	}
	if len(v.events) != 0 || v.types[0].count != 1 {
		t.Fatalf("old event kept: %d events, count %d", len(v.events), v.types[0].count)
	}
	for i := 0; i < 3*MaxProfileEvents; i++ {
		e := ev(EventProductView, now.Add(time.Duration(i-3*MaxProfileEvents)*time.Minute), fmt.Sprintf("sku-%d", i))
		if _, err := v.add(&e, now.Unix()); err != nil {
			t.Fatal(err)
		}
	}
	if len(v.events) != MaxProfileEvents || len(v.stats) != MaxProductStats {
		t.Fatalf("%d events, %d stats; want %d, %d", len(v.events), len(v.stats), MaxProfileEvents, MaxProductStats)
	}
	b := v.encode(nil)
	var w profView
	if err := w.decode(b); err != nil {
		t.Fatal(err)
	}
	p := w.profile()
	if p.Events[len(p.Events)-1].Products[0] != fmt.Sprintf("sku-%d", 3*MaxProfileEvents-1) {
		t.Errorf("newest event lost: %+v", p.Events[len(p.Events)-1])
	}
	if p.Counts[EventProductView] != 3*MaxProfileEvents {
		t.Errorf("lifetime count %d", p.Counts[EventProductView])
	}
	// Product table holds only referenced products: 200 events' products
	// (the stats are the newest 100 of them).
	if len(w.prods) != MaxProfileEvents {
		t.Errorf("%d products stored, want %d", len(w.prods), MaxProfileEvents)
	}
	t.Logf("profile of %d events: %d bytes", MaxProfileEvents, len(b))

	// Too many event types.
	for i := len(v.types); i < MaxProfileTypes; i++ {
		e := ev(fmt.Sprintf("t%d", i), now)
		if _, err := v.add(&e, now.Unix()); err != nil {
			t.Fatal(err)
		}
	}
	e := ev("one.too.many", now)
	if _, err := v.add(&e, now.Unix()); !errors.Is(err, ErrTooManyTypes) {
		t.Errorf("type %d: err %v", MaxProfileTypes+1, err)
	}
}

func TestProfileDedupe(t *testing.T) {
	now := time.Now()
	v := &profView{}
	e := ev(EventPurchase, now, "sku-1")
	e.ID, e.ValueMicros = "order-1", 5e6
	if _, err := v.add(&e, now.Unix()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.add(&e, now.Unix()); !errors.Is(err, ErrDuplicateEvent) {
		t.Fatalf("repeat: %v", err)
	}
	e2 := e
	e2.Type = "refund" // same id, other type: a different event
	if _, err := v.add(&e2, now.Unix()); err != nil {
		t.Fatal(err)
	}
	if v.orders != 1 || v.monetary != 5e6 {
		t.Errorf("orders %d monetary %d", v.orders, v.monetary)
	}
}

func TestProfileLegacyJSON(t *testing.T) {
	old := map[string]any{"events": []map[string]any{
		{"t": "product_view", "p": []string{"sku-1"}, "ts": 1700000000},
		{"t": "add_to_cart", "p": []string{"sku-1"}, "ts": 1700000100},
		{"t": "BAD TYPE", "ts": 1700000200},
	}}
	b, _ := json.Marshal(old)
	var v profView
	if err := v.decode(b); err != nil {
		t.Fatal(err)
	}
	p := v.profile()
	if len(p.Events) != 2 || p.Events[1].Type != EventAddToCart || p.Events[1].Products[0] != "sku-1" {
		t.Fatalf("legacy profile %+v", p)
	}
}

func TestProfileCorrupt(t *testing.T) {
	now := time.Now()
	v := viewOf(t, now, ev(EventProductView, now, "sku-1"), ev(EventPurchase, now, "sku-1"))
	good := v.encode(nil)
	for i := 0; i < len(good); i++ {
		var w profView
		_ = w.decode(good[:i]) // truncated: an error, never a panic
		bad := append([]byte(nil), good...)
		bad[i] ^= 0xff
		_ = w.decode(bad)
	}
	var w profView
	if err := w.decode([]byte{9, 1, 2}); err == nil {
		t.Error("unknown version accepted")
	}
}

func FuzzProfileDecode(f *testing.F) {
	now := time.Now()
	var v profView
	for _, e := range []Event{ev(EventProductView, now, "a", "b"), ev(EventPurchase, now, "b"), {Type: "x", Time: now, ID: "1"}} {
		_, _ = v.add(&e, now.Unix())
	}
	f.Add(v.encode(nil))
	f.Add([]byte(`{"events":[{"t":"page_view","ts":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var w profView
		if err := w.decode(b); err != nil {
			return
		}
		p := w.profile()
		// Whatever decoded must survive another event and a round trip.
		e := ev(EventAddToCart, now, "c")
		if _, err := w.add(&e, now.Unix()); err != nil && !errors.Is(err, ErrTooManyTypes) {
			t.Fatal(err)
		}
		var u profView
		if err := u.decode(w.encode(nil)); err != nil {
			t.Fatalf("re-encoded profile does not decode: %v (from %+v)", err, p)
		}
	})
}

// TestProfileLinkedMark: the linked-copy mark survives encoding, and a
// profile written in version 2 (before the mark) still reads, unmarked,
// with its event ids (duplicates still refused).
func TestProfileLinkedMark(t *testing.T) {
	at := time.Unix(1_790_000_000, 0)
	var v profView
	if _, err := v.addAs(&Event{Type: EventProductView, Products: []string{"sku-1"}, Time: at}, 0, true); err != nil {
		t.Fatal(err)
	}
	if _, err := v.addAs(&Event{Type: EventPurchase, Products: []string{"sku-1"}, ID: "o-1", ValueMicros: 5, Time: at.Add(time.Second)}, 0, false); err != nil {
		t.Fatal(err)
	}
	var back profView
	if err := back.decode(v.encode(nil)); err != nil {
		t.Fatal(err)
	}
	evs := back.profile().Events
	if len(evs) != 2 || !evs[0].Linked || evs[1].Linked {
		t.Fatalf("events after a round trip: %+v", evs)
	}
	if _, err := back.add(&Event{Type: EventPurchase, ID: "o-1", Time: at}, 0); !errors.Is(err, ErrDuplicateEvent) {
		t.Fatalf("event id lost in the round trip: %v", err)
	}

	// Written by the version-2 encoder: a view of sku-1 and sku-2, a
	// purchase of sku-2 with id "order-7" an hour later, a cart of sku-3.
	v2, err := hex.DecodeString("0280ee89ab0dc0de8aab0d030c70726f647563745f766965770180ee89ab0d08707572636861736501a0a68aab0d0b6164645f746f5f6361727401c0de8aab0d0305736b752d3105736b752d3205736b752d3301a0f8fa05a0a68aab0da0a68aab0d030080ee89ab0d0002000103a038a0f8fa050101db2f5c6648781b3a04a0380001020400000180ee89ab0d01000180ee89ab0d010101a0a68aab0d020201c0de8aab0d")
	if err != nil {
		t.Fatal(err)
	}
	var old profView
	if err := old.decode(v2); err != nil {
		t.Fatalf("version 2 profile: %v", err)
	}
	p := old.profile()
	want := []ProfileEvent{
		{Type: EventProductView, Products: []string{"sku-1", "sku-2"}, Unix: at.Unix()},
		{Type: EventPurchase, Products: []string{"sku-2"}, ValueMicros: 12_500_000, Unix: at.Unix() + 3600},
		{Type: EventAddToCart, Products: []string{"sku-3"}, Unix: at.Unix() + 7200},
	}
	if !reflect.DeepEqual(p.Events, want) {
		t.Fatalf("version 2 events:\ngot  %+v\nwant %+v", p.Events, want)
	}
	if _, err := old.add(&Event{Type: EventPurchase, ID: "order-7", Time: at}, 0); !errors.Is(err, ErrDuplicateEvent) {
		t.Fatalf("version 2 event id lost: %v", err)
	}
	// Rewritten, it becomes version 3 and reads back the same.
	var again profView
	if err := again.decode(old.encode(nil)); err != nil || !reflect.DeepEqual(again.profile().Events, old.profile().Events) {
		t.Fatalf("version 2 profile rewritten: %v %+v", err, again.profile().Events)
	}
}

// TestRecordEventMarksLinkedCopies: an e-mail-keyed event lands in the
// e-mail's profile unmarked and in its linked ids' profiles as copies.
func TestRecordEventMarksLinkedCopies(t *testing.T) {
	clk := newClock()
	m := newEventsManager(t, openTestDB(t, t.TempDir()), clk, EventOptions{})
	pz := m.Pseudonymizer()
	email := pz.Of(IDEmailSHA256, hashA)
	cookie := pz.Of(IDUID, "cookie-1")
	at := clk.Now().Add(-time.Hour)
	if err := m.RecordEvent(Event{AdvertiserID: "adv", Type: EventPageView, User: email, UserKind: IDEmailSHA256,
		Links: []LinkedID{{ID: cookie, Kind: IDUID}}, Time: at}); err != nil {
		t.Fatal(err)
	}
	if err := m.RecordEvent(Event{AdvertiserID: "adv", Type: EventProductView, User: email, UserKind: IDEmailSHA256,
		Products: []string{"sku-1"}, Time: at.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	own, err := m.Profile("adv", email)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := m.Profile("adv", cookie)
	if err != nil {
		t.Fatal(err)
	}
	if len(own.Events) != 2 || own.Events[0].Linked || own.Events[1].Linked {
		t.Fatalf("e-mail's own events: %+v", own.Events)
	}
	if len(cp.Events) != 1 || !cp.Events[0].Linked || cp.Events[0].Type != EventProductView {
		t.Fatalf("linked cookie's events: %+v", cp.Events)
	}
}
