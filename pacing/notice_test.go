package pacing

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/campaign"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func TestNotices(t *testing.T) {
	e := newEnv(t, t0, Options{}, testCampaign("cmp_a", campaign.PacingASAP))
	c := e.camps.get("cmp_a")
	tok, price, why := e.bid("cmp_a", 1, Quote{}, "auction-1")
	if why != "" || price != 2_000_000 {
		t.Fatalf("bid: %q %d", why, price)
	}
	spend := func() int64 { _, total := e.p.Spend(c); return total }
	reserved := func() int64 { return e.p.State(c).ReservedMicros }
	if reserved() != 2000 {
		t.Fatalf("reserved after one bid at CPM 2 = %d, want 2000", reserved())
	}
	forged := Token{Campaign: "cmp_a", AuctionID: "auction-1", ImpID: "1", BidMicros: 9_000_000, Unix: t0.Unix()}
	forgedTok := string(NewSigner([]byte("not the secret, but just as long")).Append(nil, &forged))
	tampered := []byte(tok)
	tampered[10] ^= 1
	cases := []struct {
		name   string
		kind   string
		tok    string
		price  int64
		err    error
		spend  int64
		reserv int64
	}{
		{"forged signature", NoticeWin, forgedTok, 1_000_000, ErrBadSig, 0, 2000},
		{"tampered token", NoticeWin, string(tampered), 1_000_000, ErrBadSig, 0, 2000},
		{"not a token", NoticeWin, "${AUCTION_ID}", 1_000_000, ErrBadToken, 0, 2000},
		{"missing price", NoticeWin, tok, -1, ErrBadPrice, 0, 2000},
		{"price above bid", NoticeWin, tok, 2_000_001, ErrPriceAboveBid, 0, 2000},
		{"unknown kind", "refund", tok, 1_000_000, ErrBadKind, 0, 2000},
		{"win", NoticeWin, tok, 1_500_000, nil, 1500, 0},
		{"billing after win", NoticeBill, tok, 1_500_000, nil, 1500, 0},
		{"billing with another price", NoticeBill, tok, 1_900_000, ErrDuplicate, 1500, 0},
		{"loss after win", NoticeLoss, tok, -1, nil, 1500, 0},
		{"imp", NoticeImp, tok, -1, nil, 1500, 0},
	}
	for _, tc := range cases {
		_, err := e.p.Notice(tc.kind, []byte(tc.tok), tc.price, -1)
		if !errors.Is(err, tc.err) {
			t.Fatalf("%s: err %v, want %v", tc.name, err, tc.err)
		}
		if spend() != tc.spend || reserved() != tc.reserv {
			t.Fatalf("%s: spend %d reserved %d, want %d and %d", tc.name, spend(), reserved(), tc.spend, tc.reserv)
		}
	}
	for kind, n := range map[string]int{NoticeWin: 10, NoticeBill: 10, NoticeImp: 10, NoticeLoss: 10} {
		for i := 0; i < n; i++ {
			if _, err := e.p.Notice(kind, []byte(tok), 1_500_000, -1); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("%s repeated: %v, want ErrDuplicate", kind, err)
			}
		}
	}
	if spend() != 1500 || reserved() != 0 {
		t.Fatalf("after duplicates: spend %d reserved %d", spend(), reserved())
	}

	// A loss frees the reservation; a late win still counts its spend but
	// frees nothing more.
	tok2, _, _ := e.bid("cmp_a", 2, Quote{}, "auction-2")
	tok3, _, _ := e.bid("cmp_a", 3, Quote{}, "auction-3")
	if reserved() != 4000 {
		t.Fatalf("two bids reserve %d", reserved())
	}
	if r, err := e.p.Notice(NoticeLoss, []byte(tok2), -1, 2_100_000); err != nil || !r.Released {
		t.Fatalf("loss: %+v %v", r, err)
	}
	for i := 0; i < 10; i++ {
		e.p.Notice(NoticeLoss, []byte(tok2), -1, -1)
	}
	if reserved() != 2000 {
		t.Fatalf("after loss ×11: reserved %d, want 2000", reserved())
	}
	if r, err := e.p.Notice(NoticeWin, []byte(tok2), 1_000_000, -1); err != nil || r.Released || r.Spent != 1000 {
		t.Fatalf("win after loss: %+v %v", r, err)
	}
	if reserved() != 2000 || spend() != 2500 {
		t.Fatalf("win after loss: reserved %d spend %d", reserved(), spend())
	}
	// A bid whose notice never comes is released after ReserveTTL.
	e.clock.Advance(2*time.Minute + time.Second)
	e.p.Tick(e.clock.Now())
	if reserved() != 0 {
		t.Fatalf("reservation of a silent bid not expired: %d", reserved())
	}
	// Its win, late, still counts (the money was spent) and releases nothing.
	if r, err := e.p.Notice(NoticeWin, []byte(tok3), 2_000_000, -1); err != nil || r.Released || r.Spent != 2000 {
		t.Fatalf("late win: %+v %v", r, err)
	}
	if reserved() != 0 || spend() != 4500 {
		t.Fatalf("late win: reserved %d spend %d", reserved(), spend())
	}

	// Too old, or from the future.
	old := Token{Campaign: "cmp_a", AuctionID: "old", ImpID: "1", BidMicros: 2_000_000, Unix: e.clock.Now().Add(-25 * time.Hour).Unix()}
	future := Token{Campaign: "cmp_a", AuctionID: "future", ImpID: "1", BidMicros: 2_000_000, Unix: e.clock.Now().Add(time.Hour).Unix()}
	for _, tk := range []Token{old, future} {
		if _, err := e.p.Notice(NoticeWin, e.signer.Append(nil, &tk), 1_000_000, -1); !errors.Is(err, ErrExpired) {
			t.Fatalf("token at %d: %v, want ErrExpired", tk.Unix, err)
		}
	}
	if spend() != 4500 {
		t.Fatalf("spend moved on refused notices: %d", spend())
	}

	// Survives a restart: same totals, and a notice repeated after it is
	// still a duplicate.
	e.restart()
	c = e.camps.get("cmp_a")
	if spend() != 4500 {
		t.Fatalf("spend after restart %d, want 4500", spend())
	}
	for _, k := range []string{NoticeWin, NoticeBill, NoticeLoss, NoticeImp} {
		if _, err := e.p.Notice(k, []byte(tok), 1_500_000, -1); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("%s after restart: %v, want ErrDuplicate", k, err)
		}
	}
	if spend() != 4500 {
		t.Fatalf("spend after replays %d, want 4500", spend())
	}
}

func TestNoticeUnknownAndEndedCampaign(t *testing.T) {
	e := newEnv(t, t0, Options{}, testCampaign("cmp_a", campaign.PacingASAP), testCampaign("cmp_b", campaign.PacingASAP))
	tokA, _, _ := e.bid("cmp_a", 1, Quote{}, "a1")
	tokB, _, _ := e.bid("cmp_b", 1, Quote{}, "b1")
	// cmp_a ends after the bid: its win still counts (the exchange bills it).
	c := *e.camps.get("cmp_a")
	end := e.clock.Now().Add(time.Second)
	c.End = &end
	e.clock.Advance(time.Minute)
	e.camps.put(&c)
	// cmp_b is deleted: its notices are refused and counted by the caller.
	e.camps.remove("cmp_b")
	if r, err := e.p.Notice(NoticeWin, []byte(tokA), 1_000_000, -1); err != nil || r.Spent != 1000 {
		t.Fatalf("win for an ended campaign: %+v %v", r, err)
	}
	if _, err := e.p.Notice(NoticeWin, []byte(tokB), 1_000_000, -1); !errors.Is(err, ErrUnknownCampaign) {
		t.Fatalf("win for a deleted campaign: %v", err)
	}
	if _, total := e.p.Spend(e.camps.get("cmp_a")); total != 1000 {
		t.Fatalf("ended campaign spend %d", total)
	}
	// The ended campaign bids no more (the bidder checks LiveAt; pacing
	// still reports it).
	if e.camps.get("cmp_a").LiveAt(e.clock.Now()) {
		t.Fatal("campaign should have ended")
	}
	if st := e.p.State(e.camps.get("cmp_a")); st.Live || st.SpentTotalMicros != 1000 {
		t.Fatalf("state of ended campaign %+v", st)
	}
}

func TestDaySpendInCampaignTimeZone(t *testing.T) {
	c := testCampaign("cmp_seoul", campaign.PacingASAP)
	c.Timezone = "Asia/Seoul"
	// 14:59:50 UTC is 23:59:50 in Seoul.
	start := time.Date(2026, 11, 20, 14, 59, 50, 0, time.UTC)
	e := newEnv(t, start, Options{}, c)
	c = e.camps.get(c.ID)
	tok, _, _ := e.bid(c.ID, 1, Quote{}, "late-evening")
	e.clock.Advance(20 * time.Second) // past midnight in Seoul
	if _, err := e.p.Notice(NoticeWin, []byte(tok), 2_000_000, -1); err != nil {
		t.Fatal(err)
	}
	today, total := e.p.Spend(c)
	if today != 0 || total != 2000 {
		t.Fatalf("a win for yesterday's bid: today %d total %d; want 0 and 2000", today, total)
	}
	tok2, _, _ := e.bid(c.ID, 2, Quote{}, "after-midnight")
	e.p.Notice(NoticeWin, []byte(tok2), 2_000_000, -1)
	if today, _ := e.p.Spend(c); today != 2000 {
		t.Fatalf("today's spend %d, want 2000", today)
	}
	e.restart()
	if today, total := e.p.Spend(e.camps.get(c.ID)); today != 2000 || total != 4000 {
		t.Fatalf("after restart today %d total %d", today, total)
	}
}

func TestBudgetExhausted(t *testing.T) {
	c := testCampaign("cmp_small", campaign.PacingASAP)
	c.Budget = campaign.Budget{DailyMicros: 10_000, TotalMicros: 15_000} // five impressions at CPM 2 a day
	e := newEnv(t, t0, Options{}, c)
	var toks []string
	for i := 0; i < 8; i++ {
		tok, _, why := e.bid(c.ID, byte(i), Quote{}, "a"+strings.Repeat("x", i))
		if i < 5 && why != "" {
			t.Fatalf("bid %d refused: %s", i, why)
		}
		if i >= 5 && why != ReasonBudget {
			t.Fatalf("bid %d beyond the budget: reason %q", i, why)
		}
		if tok != "" {
			toks = append(toks, tok)
		}
	}
	for _, tok := range toks {
		e.p.Notice(NoticeWin, []byte(tok), 2_000_000, -1)
	}
	if today, _ := e.p.Spend(e.camps.get(c.ID)); today != 10_000 {
		t.Fatalf("spend %d, want exactly the daily 10000", today)
	}
	// Next day: the total leaves room for 2.5 impressions: 2 fit.
	e.clock.Advance(24 * time.Hour)
	n := 0
	for i := 0; i < 5; i++ {
		if _, _, why := e.bid(c.ID, byte(i), Quote{}, "day2-"+strings.Repeat("x", i)); why == "" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("day 2 bids within the total: %d, want 2", n)
	}
}
