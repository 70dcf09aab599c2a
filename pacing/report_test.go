package pacing

import (
	"fmt"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/campaign"
)

func TestReport(t *testing.T) {
	c := testCampaign("cmp_rep", campaign.PacingEven)
	e := newEnv(t, t0, Options{}, c) // 10:00 UTC
	var toks []string
	for i := 0; i < 6; i++ {
		tok, _, why := e.bid(c.ID, byte(i), Quote{}, fmt.Sprint("r", i))
		if why != "" {
			t.Fatal(why)
		}
		toks = append(toks, tok)
	}
	// A matched request that does not bid (frequency capped elsewhere is
	// not needed: a floor above max still counts as matched).
	if h, why := e.p.Admit(e.camps.get(c.ID), [16]byte{9}, e.clock.Now()); why == "" {
		h.Quote(Quote{FloorMicros: 99_000_000})
	}
	for i, tok := range toks[:4] {
		e.p.Notice(NoticeWin, []byte(tok), int64(1_000_000+i*100_000), -1)
		e.p.Notice(NoticeWin, []byte(tok), 1_000_000, -1) // duplicate
	}
	for _, tok := range toks[:3] {
		e.p.Notice(NoticeImp, []byte(tok), -1, -1)
		e.p.Notice(NoticeImp, []byte(tok), -1, -1)
	}
	e.p.Notice(NoticeLoss, []byte(toks[5]), -1, -1)
	e.p.Click(c.ID, e.clock.Now())
	e.p.Click(c.ID, e.clock.Now())
	e.p.Click("cmp_unknown", e.clock.Now())
	e.p.Tick(e.clock.Now())
	// Next hour: one more bid.
	e.clock.Advance(time.Hour)
	e.bid(c.ID, 20, Quote{}, "r-next")
	e.p.Tick(e.clock.Now())

	check := func(when string) {
		t.Helper()
		rows, err := e.p.Report(c.ID, t0.Add(-time.Hour), t0.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 {
			t.Fatalf("%s: %d rows, want 3", when, len(rows))
		}
		r := rows[1]
		want := ReportRow{Hour: t0, Matched: 7, Bids: 6, Wins: 4, Impressions: 3, Clicks: 2, SpendMicros: 1000 + 1100 + 1200 + 1300}
		r.Throttle, r.Multiplier = 0, 0
		if r != want {
			t.Fatalf("%s: hour row\n got %+v\nwant %+v", when, r, want)
		}
		if rows[1].Throttle < 0 || rows[1].Throttle > 1 || rows[1].Multiplier < 1 {
			t.Fatalf("%s: pacing state %v %v", when, rows[1].Throttle, rows[1].Multiplier)
		}
		if rows[0].Matched != 0 || rows[0].Throttle != -1 {
			t.Fatalf("%s: empty hour %+v", when, rows[0])
		}
		if rows[2].Matched != 1 || rows[2].Bids != 1 {
			t.Fatalf("%s: next hour %+v", when, rows[2])
		}
	}
	check("live")
	e.restart()
	check("after restart")
	// Counting continues on top of what was stored.
	e.bid(c.ID, 21, Quote{}, "r-after")
	rows, _ := e.p.Report(c.ID, t0.Add(time.Hour), t0.Add(2*time.Hour))
	if rows[0].Bids != 2 {
		t.Fatalf("bids in the hour after restart %d, want 2", rows[0].Bids)
	}
	for _, r := range [][2]time.Time{{t0, t0}, {t0, t0.Add(-time.Hour)}, {t0, t0.Add(32 * 24 * time.Hour)}} {
		if _, err := e.p.Report(c.ID, r[0], r[1]); err != ErrReportRange {
			t.Fatalf("range %v: %v", r, err)
		}
	}
	st := e.p.State(e.camps.get(c.ID))
	if st.Mode != "even" || !st.Live || st.SpentTotalMicros != 4600 || st.DailyMicros != 100_000_000 {
		t.Fatalf("state %+v", st)
	}
}

// TestDeletedCampaignStateDropped: Tick forgets campaigns that are gone.
func TestDeletedCampaignStateDropped(t *testing.T) {
	e := newEnv(t, t0, Options{}, testCampaign("cmp_x", campaign.PacingEven))
	e.bid("cmp_x", 1, Quote{}, "x")
	e.p.Tick(t0)
	e.camps.remove("cmp_x")
	e.p.Tick(t0.Add(time.Second))
	if len(*e.p.states.Load()) != 0 {
		t.Fatal("state of a deleted campaign kept")
	}
	rows, err := e.p.Report("cmp_x", t0, t0.Add(time.Hour))
	if err != nil || rows[0].Bids != 1 {
		t.Fatalf("report of a deleted campaign's last hour: %+v %v", rows, err)
	}
}
