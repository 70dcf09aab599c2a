package audience

import (
	"encoding/json"
	"errors"
	"fmt"
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
