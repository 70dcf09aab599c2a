package pacing

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/campaign"
)

// TestConcurrentBiddingNeverOverspends races many goroutines bidding on one
// small budget, with wins, losses, billing and duplicate notices coming
// back at random, and checks spend never passes the budget.
func TestConcurrentBiddingNeverOverspends(t *testing.T) {
	c := testCampaign("cmp_race", campaign.PacingASAP)
	c.Budget = campaign.Budget{DailyMicros: 200_000, TotalMicros: 300_000} // 100 impressions at CPM 2
	c.Bid.MaxCPMMicros = 4_000_000
	e := newMemEnv(t, t0, Options{}, c)
	c = e.camps.get(c.ID)
	const workers = 16
	end := t0.Add(20 * time.Minute) // fake time; silent bids expire after 2
	var wg sync.WaitGroup
	var bids, wins atomic.Int64
	var maxPrice atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; e.clock.Now().Before(end); i++ {
				now := e.clock.Now()
				h, why := e.p.Admit(c, [16]byte{byte(w), byte(i)}, now)
				if why != "" {
					time.Sleep(50 * time.Microsecond)
					continue
				}
				q := Quote{Recency: time.Duration(r.IntN(3)) * 30 * time.Minute}
				price, why := h.Quote(q)
				if why != "" || !h.Reserve(price, false, now) {
					time.Sleep(50 * time.Microsecond)
					continue
				}
				bids.Add(1)
				for {
					m := maxPrice.Load()
					if price <= m || maxPrice.CompareAndSwap(m, price) {
						break
					}
				}
				tok := Token{Campaign: c.ID, AuctionID: fmt.Sprintf("w%d-%d", w, i), ImpID: "1", BidMicros: price, Unix: now.Unix()}
				enc := e.signer.Append(nil, &tok)
				switch r.IntN(4) {
				case 0: // loss, sometimes twice
					e.p.Notice(NoticeLoss, enc, -1, -1)
					e.p.Notice(NoticeLoss, enc, -1, -1)
				case 1: // nothing: the reservation stays until it expires
				default: // win at a price up to the bid, repeated, with billing
					paid := price - r.Int64N(price/2)
					for k := 0; k < 1+r.IntN(3); k++ {
						if res, err := e.p.Notice(NoticeWin, enc, paid, -1); err == nil && res.Spent > 0 {
							wins.Add(1)
						}
						e.p.Notice(NoticeBill, enc, paid, -1)
					}
				}
			}
		}(w)
	}
	// Time moves on meanwhile: silent reservations expire.
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				e.clock.Advance(time.Second)
				e.p.Tick(e.clock.Now())
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	wg.Wait()
	close(stop)
	today, total := e.p.Spend(c)
	t.Logf("bids %d wins %d spend today %d total %d (max price %d)", bids.Load(), wins.Load(), today, total, maxPrice.Load())
	if today > c.Budget.DailyMicros {
		t.Fatalf("spent %d of a daily budget of %d", today, c.Budget.DailyMicros)
	}
	if wins.Load() == 0 || today < c.Budget.DailyMicros*3/4 {
		t.Fatalf("the race barely spent: %d wins, %d micros", wins.Load(), today)
	}
	st := e.p.State(c)
	if st.ReservedMicros < 0 {
		t.Fatalf("reservations went negative: %d", st.ReservedMicros)
	}
	// Everything settles or expires.
	e.clock.Advance(3 * time.Minute)
	e.p.Tick(e.clock.Now())
	if r := e.p.State(c).ReservedMicros; r != 0 {
		t.Fatalf("reservations left after expiry: %d", r)
	}
}

// TestReservationsUnit checks the slot arithmetic directly.
func TestReservationsUnit(t *testing.T) {
	r := newReservations(120)
	always := func(int64) bool { return true }
	if len(r.slots) != 128 {
		t.Fatalf("slots %d", len(r.slots))
	}
	now := int64(1_800_000_000)
	r.tryReserve(100, now, always)
	r.tryReserve(50, now, always)
	r.tryReserve(7, now+1, always)
	if r.total.Load() != 157 {
		t.Fatalf("total %d", r.total.Load())
	}
	if !r.release(50, now, now+5) || r.total.Load() != 107 {
		t.Fatalf("release: total %d", r.total.Load())
	}
	if r.release(500, now, now+5) {
		t.Fatal("released more than reserved")
	}
	// The token's second may be one before the slot's.
	if !r.release(7, now, now+5) || r.total.Load() != 100 {
		t.Fatalf("release from the next second: total %d", r.total.Load())
	}
	if r.tryReserve(10, now+2, func(total int64) bool { return total <= 105 }) || r.total.Load() != 100 {
		t.Fatalf("a reservation that does not fit changed the total: %d", r.total.Load())
	}
	// Expiry: 120 s later the slot is gone, and a release of it is a no-op.
	r.sweep(now + 119)
	if r.total.Load() != 100 {
		t.Fatalf("expired early: %d", r.total.Load())
	}
	r.sweep(now + 120)
	if r.total.Load() != 7 { // the 7 released above came from this slot; the next one's expires next
		t.Fatalf("not expired: %d", r.total.Load())
	}
	r.sweep(now + 121)
	if r.total.Load() != 0 {
		t.Fatalf("not expired: %d", r.total.Load())
	}
	if r.release(100, now, now+121) || r.total.Load() != 0 {
		t.Fatal("released an expired reservation")
	}
	// A slot reused 128 s later drops its stale amount even without a sweep.
	r2 := newReservations(120)
	r2.tryReserve(40, now, always)
	r2.swept.Store(now + 128) // pretend a sweep already ran this second
	r2.tryReserve(1, now+128, always)
	if r2.total.Load() != 1 {
		t.Fatalf("stale slot kept: total %d", r2.total.Load())
	}
	// Restore after a restart.
	r3 := newReservations(120)
	r3.restore(500, now-60, now)
	r3.restore(500, now-200, now) // too old: nothing
	if r3.total.Load() != 500 {
		t.Fatalf("restored %d", r3.total.Load())
	}
	r3.sweep(now + 60)
	if r3.total.Load() != 0 {
		t.Fatalf("restored reservation not expired: %d", r3.total.Load())
	}
}

// TestReservationsSurviveRestart: bids in flight at a restart still count.
func TestReservationsSurviveRestart(t *testing.T) {
	c := testCampaign("cmp_r", campaign.PacingASAP)
	c.Budget.DailyMicros = 10_000 // five bids at CPM 2
	e := newEnv(t, t0, Options{}, c)
	var toks []string
	for i := 0; i < 5; i++ {
		tok, _, why := e.bid(c.ID, byte(i), Quote{}, fmt.Sprint("r", i))
		if why != "" {
			t.Fatal(why)
		}
		toks = append(toks, tok)
	}
	e.p.Tick(e.clock.Now())
	e.restart()
	if _, _, why := e.bid(c.ID, 9, Quote{}, "after"); why != ReasonBudget {
		t.Fatalf("after restart with 5 bids in flight: %q, want budget", why)
	}
	for _, tok := range toks {
		if _, err := e.p.Notice(NoticeWin, []byte(tok), 2_000_000, -1); err != nil {
			t.Fatal(err)
		}
	}
	if today, _ := e.p.Spend(e.camps.get(c.ID)); today != 10_000 {
		t.Fatalf("spend %d", today)
	}
	e.clock.Advance(3 * time.Minute)
	e.p.Tick(e.clock.Now())
	if r := e.p.State(e.camps.get(c.ID)).ReservedMicros; r != 0 {
		t.Fatalf("restored reservation still held: %d", r)
	}
}
