package audience

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/store"
)

func newExchangeIDs(t testing.TB, now func() time.Time) *ExchangeIDs {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pz, err := NewPseudonymizer([]byte("exchange-ids-test-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewExchangeIDs(db, pz, []string{"pbs", "adx"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestExchangeIDs(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	x := newExchangeIDs(t, func() time.Time { return clock })
	a, b := Pseudonym{1}, Pseudonym{2}
	if err := x.Set("pbs", "E1", a); err != nil {
		t.Fatal(err)
	}
	if p, ok := x.Lookup([]byte("pbs"), []byte("E1")); !ok || p != a {
		t.Fatalf("lookup %v %v", p, ok)
	}
	if _, ok := x.Lookup([]byte("adx"), []byte("E1")); ok {
		t.Fatal("another exchange's id matched")
	}
	for _, tc := range []struct {
		ex, id string
		want   error
	}{{"evil", "E1", ErrUnknownExchange}, {"pbs", "", ErrBadExchangeID}, {"pbs", "a b", ErrBadExchangeID}, {"pbs", string(make([]byte, 200)), ErrBadExchangeID}} {
		if err := x.Set(tc.ex, tc.id, a); !errors.Is(err, tc.want) {
			t.Fatalf("%q %q: %v", tc.ex, tc.id, err)
		}
	}
	// Re-mapping to another uid: erasing the old uid leaves the new mapping.
	if err := x.Set("pbs", "E1", b); err != nil {
		t.Fatal(err)
	}
	if err := x.Erase(a); err != nil {
		t.Fatal(err)
	}
	if p, ok := x.Lookup([]byte("pbs"), []byte("E1")); !ok || p != b {
		t.Fatalf("after erasing the old uid: %v %v", p, ok)
	}
	_ = x.Set("adx", "X9", b)
	if err := x.Erase(b); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][2]string{{"pbs", "E1"}, {"adx", "X9"}} {
		if _, ok := x.Lookup([]byte(k[0]), []byte(k[1])); ok {
			t.Fatalf("%v survived erase", k)
		}
	}
	n := 0
	_ = store.Scan(x.db, []byte(store.PrefixSync), func(_, _ []byte) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d syn/ keys left after erase", n)
	}
	// Expiry.
	_ = x.Set("pbs", "E2", a)
	clock = clock.Add(2 * time.Hour)
	if _, ok := x.Lookup([]byte("pbs"), []byte("E2")); ok {
		t.Fatal("expired mapping matched")
	}
	if _, err := NewExchangeIDs(x.db, x.pz, []string{"Bad Name"}, 0, nil); err == nil {
		t.Fatal("bad exchange name accepted")
	}
}

func BenchmarkExchangeIDsLookup(b *testing.B) {
	x := newExchangeIDs(b, nil)
	const n = 100_000
	for i := 0; i < n; i++ {
		if err := x.Set("pbs", fmt.Sprintf("user-%d", i), Pseudonym{byte(i), byte(i >> 8), 1}); err != nil {
			b.Fatal(err)
		}
	}
	if err := x.db.Flush(); err != nil {
		b.Fatal(err)
	}
	ids := make([][]byte, 1024)
	for i := range ids {
		ids[i] = []byte(fmt.Sprintf("user-%d", i*97%(2*n))) // half hit, half miss
	}
	ex := []byte("pbs")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.Lookup(ex, ids[i%len(ids)])
	}
}
