package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prebid/openrtb/v20/openrtb2"
)

// testConfig is a short open-loop run against target with deterministic
// competition at 1.0 CPM.
func testConfig(target string) Config {
	cfg := DefaultConfig()
	cfg.Target = target
	cfg.QPS = 300
	cfg.Duration = time.Second
	cfg.Connections = 8
	cfg.TMax = 2 * time.Second // generous: -race on a busy 2-core machine
	cfg.Competition = Competition{Median: 1.0, Sigma: 0}
	cfg.Traffic.PoolSize = 500
	cfg.Traffic.GzipShare = 0.3
	cfg.Notices.DuplicateShare = 0.3
	cfg.Notices.LateShare = 0.2
	cfg.Notices.LateDelay = time.Second
	cfg.Notices.DrainTimeout = 20 * time.Second
	cfg.Check = true
	return cfg
}

func TestRunCountsExactly(t *testing.T) {
	for _, auction := range []AuctionType{FirstPrice, SecondPrice} {
		t.Run(string(auction), func(t *testing.T) {
			fake := startFake(t, 1.0, auction)
			cfg := testConfig(fake.URL)
			cfg.Auction = auction
			var progress bytes.Buffer
			cfg.Progress = &progress
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := fake.snapshot()
			for _, p := range got.problems {
				t.Error("fake bidder:", p)
			}

			// Open loop sends exactly qps × duration requests.
			if rep.Requests != 300 || got.requests != 300 {
				t.Errorf("requests: report %d, bidder saw %d, want 300", rep.Requests, got.requests)
			}
			if got.duplicateIDs != 0 || len(got.ids) != 300 {
				t.Errorf("request ids: %d distinct, %d repeated; want 300 distinct", len(got.ids), got.duplicateIDs)
			}
			if got.gzipped == 0 {
				t.Error("no gzip request reached the bidder")
			}
			if rep.Answered != rep.Requests || rep.Errors != (ErrorReport{}) {
				t.Errorf("answered %d of %d, errors %+v", rep.Answered, rep.Requests, rep.Errors)
			}
			if rep.BidResponses != int64(got.bidResponses) || rep.Bids != int64(len(got.bids)) {
				t.Errorf("bids: report %d in %d answers, bidder made %d in %d", rep.Bids, rep.BidResponses, len(got.bids), got.bidResponses)
			}
			if rep.NoBids != int64(got.status[204]) {
				t.Errorf("no-bids: report %d, bidder sent %d 204s", rep.NoBids, got.status[204])
			}
			if got.wantWins == 0 || got.wantWins == len(got.bids) {
				t.Fatalf("test traffic should have both wins and losses: %d wins of %d bids", got.wantWins, len(got.bids))
			}
			if rep.Wins != int64(got.wantWins) || rep.Losses != int64(len(got.bids)-got.wantWins) {
				t.Errorf("auction: report %d wins %d losses, want %d and %d", rep.Wins, rep.Losses, got.wantWins, len(got.bids)-got.wantWins)
			}
			n := rep.Notices
			if n.Win.Fired != rep.Wins || int64(got.winFirst) != rep.Wins {
				t.Errorf("win notices: fired %d, received %d, want %d", n.Win.Fired, got.winFirst, rep.Wins)
			}
			if n.WinDuplicate.Fired == 0 || n.WinDuplicate.Fired != int64(got.winDup) {
				t.Errorf("duplicate win notices: fired %d, received %d", n.WinDuplicate.Fired, got.winDup)
			}
			// A late notice arrives at least LateDelay after the answer; an
			// ordinary one may too on a busy machine, so this is a lower bound.
			if n.WinLate == 0 || n.WinLate > n.Win.Fired || int64(got.lateWins) < n.WinLate {
				t.Errorf("late win notices: fired %d of %d, received %d after the late delay", n.WinLate, n.Win.Fired, got.lateWins)
			}
			if n.Bill.Fired != rep.Wins || int64(got.bills) != rep.Wins {
				t.Errorf("bill notices: fired %d, received %d, want %d", n.Bill.Fired, got.bills, rep.Wins)
			}
			if n.Loss.Fired != rep.Losses || int64(got.losses) != rep.Losses {
				t.Errorf("loss notices: fired %d, received %d, want %d", n.Loss.Fired, got.losses, rep.Losses)
			}
			failed := n.Win.Failed + n.WinDuplicate.Failed + n.Bill.Failed + n.Loss.Failed
			if failed != 0 || n.Dropped != 0 || n.Unsent != 0 || got.unknownNotices != 0 {
				t.Errorf("notices failed %d, dropped %d, unsent %d, unknown %d", failed, n.Dropped, n.Unsent, got.unknownNotices)
			}
			spent := map[string]float64{}
			var wins int64
			for _, s := range rep.Spend {
				if s.Currency != "USD" {
					t.Errorf("spend in %s", s.Currency)
				}
				spent[s.Campaign] += s.Amount
				wins += s.Wins
			}
			if wins != rep.Wins {
				t.Errorf("spend rows count %d wins, want %d", wins, rep.Wins)
			}
			for cid, want := range got.wantSpend {
				if math.Abs(spent[cid]-want) > 1e-9 {
					t.Errorf("spend %s: report %v, want %v", cid, spent[cid], want)
				}
			}
			if len(spent) != len(got.wantSpend) {
				t.Errorf("spend campaigns: report %v, want %v", spent, got.wantSpend)
			}
			if rep.Check == nil || !rep.Check.Passed || len(rep.Violations) != 0 {
				t.Errorf("check: %+v, violations %+v", rep.Check, rep.Violations)
			}
			if rep.Latency.Count != rep.Answered || !strings.Contains(rep.Latency.From, "queueing") || rep.QueueDelay == nil || rep.TimerLag == nil {
				t.Errorf("latency: %+v", rep.Latency)
			}
			if !strings.Contains(rep.SampleAdm, `data-price="`) || strings.Contains(rep.SampleAdm, "${") {
				t.Errorf("sample adm not substituted: %q", rep.SampleAdm)
			}
			if !strings.Contains(progress.String(), "answered") {
				t.Errorf("no progress line: %q", progress.String())
			}
			var text bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"p99.9", "bid rate", "win rate", "cmp_banner", "check        PASSED"} {
				if !strings.Contains(text.String(), want) {
					t.Errorf("text report lacks %q:\n%s", want, text.String())
				}
			}
			if _, err := json.Marshal(rep); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRunClosedLoop(t *testing.T) {
	fake := startFake(t, 0, FirstPrice)
	cfg := testConfig(fake.URL)
	cfg.Mode = ModeClosed
	cfg.Duration = 300 * time.Millisecond
	cfg.Connections = 4
	cfg.Competition = Competition{}
	cfg.Notices.LateShare = 0
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := fake.snapshot()
	if rep.Requests == 0 || rep.Requests != int64(got.requests) || rep.Answered != rep.Requests {
		t.Errorf("requests: report %d (answered %d), bidder saw %d", rep.Requests, rep.Answered, got.requests)
	}
	// No competition: every bid at or above its floor wins.
	if rep.Wins != rep.Bids || rep.Wins != int64(got.winFirst) || rep.Wins != int64(got.wantWins) {
		t.Errorf("wins %d of %d bids, %d win notices", rep.Wins, rep.Bids, got.winFirst)
	}
	if rep.QueueDelay != nil || rep.TimerLag != nil || rep.Latency.From != "send" {
		t.Errorf("closed loop latency: %+v", rep.Latency)
	}
}

// TestOpenLoopChargesQueueing: a bidder that needs 50 ms an answer, on one
// connection, at 100 requests a second, falls further behind with every
// request. Open loop must still send every request on schedule and charge
// the growing wait to the bidder, not report 50 ms (coordinated omission).
// Only lower bounds are asserted: a slower machine makes them larger.
func TestOpenLoopChargesQueueing(t *testing.T) {
	fake := startFake(t, 1.0, FirstPrice)
	fake.delay = 50 * time.Millisecond
	cfg := testConfig(fake.URL)
	cfg.QPS = 100
	cfg.Duration = 500 * time.Millisecond
	cfg.Connections = 1
	cfg.TMax = 5 * time.Second
	cfg.Notices.LateShare = 0
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 50 || rep.Answered != 50 {
		t.Fatalf("sent %d, answered %d; want all 50", rep.Requests, rep.Answered)
	}
	// Request k is due at 10k ms and answered no sooner than 50(k+1) ms.
	if rep.Latency.Max < 1500 || rep.Latency.P50 < 800 || rep.QueueDelay.Max < 1400 {
		t.Errorf("latency %+v, queued %+v: the wait behind a slow bidder is not charged", rep.Latency, rep.QueueDelay)
	}
}

func TestCheckFails(t *testing.T) {
	lowerPrice := func(req *openrtb2.BidRequest, resp *openrtb2.BidResponse) int {
		for i := range resp.SeatBid[0].Bid {
			b := &resp.SeatBid[0].Bid[i]
			b.Price = req.Imp[i].BidFloor / 2
		}
		return 0
	}
	tests := []struct {
		name      string
		misbehave func(*openrtb2.BidRequest, *openrtb2.BidResponse) int
		noVersion bool
		noticeErr int
		budgets   map[string]float64
		want      string
		check     func(t *testing.T, rep *Report)
	}{
		{name: "price below floor", misbehave: lowerPrice, want: string(VBelowFloor),
			check: func(t *testing.T, rep *Report) {
				if rep.Wins != 0 {
					t.Errorf("bids below the floor won %d times", rep.Wins)
				}
			}},
		{name: "unknown imp", want: string(VUnknownImp), misbehave: func(_ *openrtb2.BidRequest, resp *openrtb2.BidResponse) int {
			resp.SeatBid[0].Bid[0].ImpID = "99"
			return 0
		}},
		{name: "missing adm", want: string(VMissingAdm), misbehave: func(_ *openrtb2.BidRequest, resp *openrtb2.BidResponse) int {
			resp.SeatBid[0].Bid[0].AdM = ""
			return 0
		}},
		{name: "missing mtype", want: string(VMissingMType), misbehave: func(_ *openrtb2.BidRequest, resp *openrtb2.BidResponse) int {
			resp.SeatBid[0].Bid[0].MType = 0
			return 0
		}},
		{name: "missing cur", want: string(VMissingCur), misbehave: func(_ *openrtb2.BidRequest, resp *openrtb2.BidResponse) int {
			resp.Cur = ""
			return 0
		}},
		{name: "wrong response id", want: string(VResponseID), misbehave: func(_ *openrtb2.BidRequest, resp *openrtb2.BidResponse) int {
			resp.ID = "nope"
			return 0
		}, check: func(t *testing.T, rep *Report) {
			if rep.Wins != 0 {
				t.Errorf("bids in responses with the wrong id won %d times", rep.Wins)
			}
		}},
		{name: "server error", want: "HTTP error status", misbehave: func(*openrtb2.BidRequest, *openrtb2.BidResponse) int {
			return 500
		}, check: func(t *testing.T, rep *Report) {
			if rep.Errors.HTTP5xx == 0 || rep.Errors.HTTP5xx+rep.Answered != rep.Requests {
				t.Errorf("5xx %d + answered %d != requests %d", rep.Errors.HTTP5xx, rep.Answered, rep.Requests)
			}
		}},
		{name: "no version header", noVersion: true, want: string(VMissingVersion)},
		{name: "notices refused", noticeErr: 500, want: "notices failed"},
		{name: "over budget", budgets: map[string]float64{"cmp_banner": 0.0001, "cmp_other": 1}, want: "campaign cmp_banner spent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := startFake(t, 1.0, FirstPrice)
			fake.misbehave, fake.noVersion, fake.noticeStatus = tc.misbehave, tc.noVersion, tc.noticeErr
			cfg := testConfig(fake.URL)
			cfg.Duration = 300 * time.Millisecond
			cfg.Notices.LateShare = 0
			cfg.Budgets = tc.budgets
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Failed() {
				t.Fatalf("check passed; want it to fail with %q", tc.want)
			}
			if reasons := strings.Join(rep.Check.Reasons, "\n"); !strings.Contains(reasons, tc.want) {
				t.Errorf("reasons lack %q:\n%s", tc.want, reasons)
			}
			if tc.check != nil {
				tc.check(t, rep)
			}
			var text bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "FAILED") {
				t.Errorf("text report does not say FAILED:\n%s", text.String())
			}
		})
	}
}

func TestRunWithoutNotices(t *testing.T) {
	fake := startFake(t, 1.0, FirstPrice)
	cfg := testConfig(fake.URL)
	cfg.Duration = 300 * time.Millisecond
	cfg.Notices.Disabled = true
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := fake.snapshot()
	if rep.Wins == 0 || rep.Losses == 0 || !rep.Notices.Disabled {
		t.Fatalf("wins %d losses %d notices %+v", rep.Wins, rep.Losses, rep.Notices)
	}
	if n := got.winFirst + got.winDup + got.bills + got.losses + got.unknownNotices; n != 0 {
		t.Errorf("bidder received %d notices with notices disabled", n)
	}
	if n := rep.Notices; n.Win.Fired+n.Bill.Fired+n.Loss.Fired+n.WinDuplicate.Fired != 0 {
		t.Errorf("report counts notices: %+v", n)
	}
}

func TestRunBaseline(t *testing.T) {
	fake := startFake(t, 1.0, FirstPrice)
	cfg := testConfig(fake.URL)
	cfg.Mode = ModeClosed
	cfg.Duration = 400 * time.Millisecond
	cfg.Rounds = 2
	cfg.Connections = 4
	cfg.Notices.LateShare = 0
	c, err := RunBaseline(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Rounds) != 2 || c.Rounds[0].Share <= 0 || c.Rounds[1].Share <= 0 {
		t.Errorf("rounds %+v", c.Rounds)
	}
	if got := fake.snapshot(); int64(got.requests) != c.Target.Requests || c.Target.Answered != c.Target.Requests {
		t.Errorf("target: %d sent, %d answered over two slices; bidder saw %d", c.Target.Requests, c.Target.Answered, got.requests)
	}
	if c.Baseline.Answered == 0 || c.Baseline.Bids != 0 || c.Baseline.Check != nil {
		t.Errorf("baseline: %+v", c.Baseline)
	}
	if c.Target.Answered == 0 || c.Target.Bids == 0 || !c.Target.Check.Passed {
		t.Errorf("target: %+v", c.Target)
	}
	if c.ThroughputShare <= 0 {
		t.Errorf("throughput share %v", c.ThroughputShare)
	}
	if c.Baseline.Label != "baseline" || c.Target.Label != "target" {
		t.Errorf("labels %q %q", c.Baseline.Label, c.Target.Label)
	}
	var text bytes.Buffer
	if err := c.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "of the no-op baseline") || !strings.Contains(text.String(), "median") {
		t.Errorf("no ratio line or no median:\n%s", text.String())
	}
	if m := c.MedianShare; m != medianShare(c.Rounds) || m <= 0 {
		t.Errorf("median share %v of rounds %+v", m, c.Rounds)
	}
}

func TestMedianShare(t *testing.T) {
	rounds := func(shares ...float64) []Round {
		var rs []Round
		for _, s := range shares {
			rs = append(rs, Round{Share: s})
		}
		return rs
	}
	cases := []struct {
		rounds []Round
		want   float64
	}{
		{nil, 0},
		{rounds(0.5), 0.5},
		{rounds(0.6, 0.4), 0.5},
		{rounds(0.9, 0.5, 0.55), 0.55}, // one round a burst hit
		{rounds(0.58, 0.2, 0.6, 0.59), 0.585},
	}
	for _, c := range cases {
		if got := medianShare(c.rounds); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%+v: median %v, want %v", c.rounds, got, c.want)
		}
	}
}

// TestRunBaselineOpenLoopRounds: in open loop each slice sends exactly its
// share of the requests, on both sides, and every answer is counted once.
func TestRunBaselineOpenLoopRounds(t *testing.T) {
	fake := startFake(t, 1.0, FirstPrice)
	cfg := testConfig(fake.URL)
	cfg.QPS = 200
	cfg.Duration = time.Second
	cfg.Rounds = 4
	cfg.Notices.LateShare = 0
	c, err := RunBaseline(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := fake.snapshot()
	if c.Baseline.Requests != 200 || c.Target.Requests != 200 || got.requests != 200 || c.Target.Answered != 200 {
		t.Errorf("baseline sent %d, target sent %d (answered %d), bidder saw %d; want 200 each",
			c.Baseline.Requests, c.Target.Requests, c.Target.Answered, got.requests)
	}
	if got.duplicateIDs != 0 {
		t.Errorf("%d request ids repeated across slices", got.duplicateIDs)
	}
	if c.Target.Wins != int64(got.winFirst) || !c.Target.Check.Passed {
		t.Errorf("wins %d, win notices %d, check %+v", c.Target.Wins, got.winFirst, c.Target.Check)
	}
	if _, err := RunBaseline(context.Background(), func() Config { c := cfg; c.Rounds = 20; return c }(), nil); err == nil {
		t.Error("50ms slices accepted")
	}
}

func TestRunUnreachable(t *testing.T) {
	noop, err := StartNoop("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := noop.URL
	if err := noop.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(url) // nothing listens there any more
	cfg.Duration = 100 * time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors.Connection != rep.Requests || rep.Requests == 0 || rep.Errors.FirstError == "" {
		t.Errorf("errors %+v for %d requests", rep.Errors, rep.Requests)
	}
	if !rep.Failed() {
		t.Error("checked run against nothing passed")
	}
}

func TestRunCancel(t *testing.T) {
	fake := startFake(t, 1.0, FirstPrice)
	cfg := testConfig(fake.URL)
	cfg.QPS = 1 // one request a second, 32 s of waiting without the cancel
	cfg.Duration = time.Minute
	cfg.Check = false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *Report)
	go func() {
		rep, err := Run(ctx, cfg)
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	cancel()
	if rep := <-done; rep == nil || rep.Requests > 1 {
		t.Errorf("report after cancel: %+v", rep)
	}
}
