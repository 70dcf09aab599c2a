package audience

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/store"
)

// synKeys counts the forward and reverse keys under syn/.
func synKeys(t *testing.T, x *ExchangeIDs) (fwd, rev int) {
	t.Helper()
	err := store.Scan(x.db, []byte(store.PrefixSync), func(k, _ []byte) error {
		if len(k) > len(reverseSync) && string(k[:len(reverseSync)]) == reverseSync {
			rev++
		} else {
			fwd++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fwd, rev
}

func TestSweepExpired(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	x := newExchangeIDs(t, func() time.Time { return clock }) // ttl 1h
	// More than two steps' worth of stale mappings on two exchanges, one
	// refreshed later, and fresh ones written after the clock moved.
	const stale = 2*SweepBatch + 37
	for i := 0; i < stale; i++ {
		ex := []string{"pbs", "adx"}[i%2]
		if err := x.Set(ex, fmt.Sprintf("old-%d", i), Pseudonym{byte(i), byte(i >> 8), 1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range [][2]string{{"pbs", "old-0"}, {"adx", "old-1"}} { // cached before expiry
		if _, ok := x.Lookup([]byte(k[0]), []byte(k[1])); !ok {
			t.Fatalf("%v not found", k)
		}
	}
	clock = clock.Add(30 * time.Minute)
	if err := x.Set("pbs", "old-2", Pseudonym{9, 9}); err != nil { // refreshed: lives to +90 min
		t.Fatal(err)
	}
	clock = clock.Add(31 * time.Minute) // the others expired a minute ago
	for i := 0; i < 10; i++ {
		if err := x.Set("adx", fmt.Sprintf("new-%d", i), Pseudonym{byte(i), 2}); err != nil {
			t.Fatal(err)
		}
	}
	if f, r := synKeys(t, x); f != stale+10 || r != stale+10 {
		t.Fatalf("before the sweep: %d forward, %d reverse keys", f, r)
	}
	before := exchangeIDsSwept.Get()
	n, err := x.SweepExpired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != stale-1 || exchangeIDsSwept.Get() != before+uint64(stale-1) {
		t.Fatalf("deleted %d (counted %d), want %d", n, exchangeIDsSwept.Get()-before, stale-1)
	}
	if f, r := synKeys(t, x); f != 11 || r != 11 {
		t.Fatalf("after the sweep: %d forward, %d reverse keys, want 11 and 11", f, r)
	}
	if p, ok := x.Lookup([]byte("pbs"), []byte("old-2")); !ok || p != (Pseudonym{9, 9}) {
		t.Fatalf("refreshed mapping: %v %v", p, ok)
	}
	for i := 0; i < 10; i++ {
		if _, ok := x.Lookup([]byte("adx"), []byte(fmt.Sprintf("new-%d", i))); !ok {
			t.Fatalf("fresh mapping new-%d lost", i)
		}
	}
	for _, k := range [][2]string{{"pbs", "old-0"}, {"adx", "old-1"}, {"pbs", "old-4"}} {
		if _, ok := x.Lookup([]byte(k[0]), []byte(k[1])); ok {
			t.Fatalf("%v still found", k)
		}
	}
	// Erase still finds nothing left behind for a swept uid; a second sweep
	// has nothing to do.
	if err := x.Erase(Pseudonym{0, 0, 1}); err != nil {
		t.Fatal(err)
	}
	if n, err := x.SweepExpired(context.Background()); n != 0 || err != nil {
		t.Fatalf("second sweep: %d %v", n, err)
	}
	// Later still, everything has expired.
	clock = clock.Add(2 * time.Hour)
	if n, err := x.SweepExpired(context.Background()); n != 11 || err != nil {
		t.Fatalf("final sweep: %d %v", n, err)
	}
	if f, r := synKeys(t, x); f != 0 || r != 0 {
		t.Fatalf("after the final sweep: %d forward, %d reverse keys", f, r)
	}
}

// A /setuid that refreshes a mapping between a sweep step's read and its
// commit wins: the step reads again and keeps the refreshed mapping.
func TestSweepLosesRaceToSet(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	x := newExchangeIDs(t, func() time.Time { return clock })
	for _, id := range []string{"a", "b"} {
		if err := x.Set("pbs", id, Pseudonym{1}); err != nil {
			t.Fatal(err)
		}
	}
	clock = clock.Add(2 * time.Hour)
	refreshed := 0
	x.afterSweepRead = func() {
		if refreshed == 0 {
			refreshed++
			if err := x.Set("pbs", "a", Pseudonym{2}); err != nil {
				t.Error(err)
			}
		}
	}
	n, err := x.SweepExpired(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d %v, want 1 (b only)", n, err)
	}
	if p, ok := x.Lookup([]byte("pbs"), []byte("a")); !ok || p != (Pseudonym{2}) {
		t.Fatalf("refreshed mapping deleted: %v %v", p, ok)
	}
	if f, r := synKeys(t, x); f != 1 || r != 1 {
		t.Fatalf("%d forward, %d reverse keys, want 1 and 1", f, r)
	}
	// A step that keeps losing gives up (counted) and deletes nothing.
	clock = clock.Add(2 * time.Hour)
	x.afterSweepRead = func() { x.gen.Add(1) }
	before := exchangeIDsConflicts.Get()
	if n, err := x.SweepExpired(context.Background()); n != 0 || err != nil {
		t.Fatalf("contended sweep: %d %v", n, err)
	}
	if exchangeIDsConflicts.Get() != before+1 {
		t.Fatal("conflict not counted")
	}
	if f, _ := synKeys(t, x); f != 1 {
		t.Fatalf("contended sweep deleted %d", 1-f)
	}
}

// RunSweeper sweeps on its ticker until its context ends.
func TestRunSweeper(t *testing.T) {
	clock := newClock()
	x := newExchangeIDs(t, clock.Now)
	if err := x.Set("pbs", "E1", Pseudonym{1}); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { x.RunSweeper(ctx, time.Millisecond, nil); close(done) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if f, _ := synKeys(t, x); f == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RunSweeper did not delete the expired mapping in 10s")
		}
	}
	cancel()
	<-done
}

// BenchmarkSweepExpired deletes 100 k expired mappings (flushed to tables)
// among 100 k live ones; ns/op is per mapping read.
func BenchmarkSweepExpired(b *testing.B) {
	const n = 100_000
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		clock := time.Unix(1_700_000_000, 0)
		x := newExchangeIDs(b, func() time.Time { return clock })
		for j := 0; j < 2*n; j++ {
			if j == n {
				clock = clock.Add(2 * time.Hour) // the first n expire
			}
			if err := x.Set("pbs", fmt.Sprintf("user-%d", j), Pseudonym{byte(j), byte(j >> 8), byte(j >> 16), 1}); err != nil {
				b.Fatal(err)
			}
		}
		if err := x.db.Flush(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		got, err := x.SweepExpired(context.Background())
		if err != nil || got != n {
			b.Fatalf("swept %d %v", got, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*n), "ns/mapping")
}
