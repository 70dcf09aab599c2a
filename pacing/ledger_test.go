package pacing

import (
	"testing"
	"time"
)

// TestLedgerDedupAcrossGenerations: the in-memory record cache rotates
// every 5 minutes; notices for auctions it no longer holds are still
// recognised (from Pebble), before and after a restart.
func TestLedgerDedupAcrossGenerations(t *testing.T) {
	e := newEnv(t, t0, Options{})
	l := NewPebbleLedger(e.db)
	now := t0.Unix()
	entry := func(k byte, bid, at int64, kind string) *Entry {
		return &Entry{Kind: kind, Auction: [16]byte{k}, Campaign: "c", BidUnix: bid, Day: 20261120, Cost: 100, Sync: true, Now: at}
	}
	if a, err := l.Apply(entry(1, now, now, NoticeWin)); err != nil || a.Spent != 100 || a.Duplicate {
		t.Fatalf("first win: %+v %v", a, err)
	}
	// Later auctions, spread over 20 minutes: the cache rotates 4 times.
	for i := int64(1); i <= 20; i++ {
		at := now + i*60
		if a, err := l.Apply(entry(byte(10+i), at, at, NoticeWin)); err != nil || a.Duplicate {
			t.Fatalf("win %d: %+v %v", i, a, err)
		}
	}
	at := now + 21*60
	for k, bid := range map[byte]int64{1: now, 11: now + 60, 30: now + 20*60} {
		a, err := l.Apply(entry(k, bid, at, NoticeWin))
		if err != nil || !a.Duplicate || a.Spent != 0 {
			t.Fatalf("replayed win of auction %d bid at %d: %+v %v", k, bid-now, a, err)
		}
		if a, _ := l.Apply(entry(k, bid, at, NoticeLoss)); a.Duplicate || !a.Settled {
			t.Fatalf("loss after win of auction %d: %+v", k, a)
		}
	}
	_, total, _ := l.Spent("c", 20261120)
	if total != 2100 {
		t.Fatalf("total %d, want 2100", total)
	}
	// A new ledger (a restart) looks everything up in Pebble until its
	// own auctions begin.
	l2 := NewPebbleLedger(e.db)
	if a, _ := l2.Apply(entry(30, now+20*60, at, NoticeWin)); !a.Duplicate {
		t.Fatal("replay after restart counted")
	}
	if l2.recent.from <= now+20*60 {
		t.Fatalf("restarted ledger trusts memory from %d, before records it did not write", l2.recent.from)
	}
	// Forget drops dedup records of auctions older than the cut.
	if err := l2.Forget(now + 3600); err != nil {
		t.Fatal(err)
	}
	l3 := NewPebbleLedger(e.db)
	if a, _ := l3.Apply(entry(1, now, now+25*time.Hour.Milliseconds()/1000, NoticeWin)); a.Duplicate {
		t.Fatal("forgotten record still present")
	}
}
