package loadtest

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Report is the outcome of one run. Its JSON form is what --json prints.
type Report struct {
	Label       string      `json:"label,omitempty"`
	Target      string      `json:"target"`
	Mode        Mode        `json:"mode"`
	QPS         float64     `json:"qps_target,omitempty"` // open loop only
	Connections int         `json:"connections"`
	DurationS   float64     `json:"duration_s"`
	TMaxMs      int64       `json:"tmax_ms"`
	Auction     AuctionType `json:"auction"`

	// ElapsedS runs from the first due send to the last answer.
	ElapsedS float64 `json:"elapsed_s"`
	// Requests were sent; Answered got a 200 or 204.
	Requests int64 `json:"requests"`
	Answered int64 `json:"answered"`
	// Dropped (open loop with Config.DropLate) fell due but were never
	// sent: their connection was still busy TMax after the due time.
	Dropped int64 `json:"dropped,omitempty"`
	// Throughput is Answered per second of ElapsedS; SendRate is Requests
	// per second.
	Throughput float64 `json:"throughput_qps"`
	SendRate   float64 `json:"send_qps"`

	// Latency covers every answer and every timeout (at the time it was
	// given up), not connection errors: the time from send to answer plus,
	// in open loop, QueueDelay.
	Latency Latency `json:"latency_ms"`
	// QueueDelay (open loop) is how long a request that fell due waited
	// for its connection's previous exchange with the bidder to end; it is
	// part of Latency, so a slow bidder shows as latency (no coordinated
	// omission). Much of it with a fast bidder means too few --connections.
	QueueDelay *Latency `json:"queue_delay_ms,omitempty"`
	// Answer (open loop) is the time from send to answer alone, without
	// QueueDelay: the bidder's own part, which BidRequest.tmax bounds.
	Answer *Latency `json:"answer_ms,omitempty"`
	// TimerLag (open loop) is how late the generator sent requests whose
	// connection was free (timer granularity, a busy machine); it is not
	// part of Latency. Large values mean the machine could not keep the
	// schedule, and the bidder saw a burstier load than asked for.
	TimerLag *Latency `json:"timer_lag_ms,omitempty"`

	NoBids       int64   `json:"no_bids"`    // 204s and 200s without bids
	NoContent    int64   `json:"no_content"` // of NoBids, the 204s
	BidResponses int64   `json:"bid_responses"`
	Bids         int64   `json:"bids"`
	BidRate      float64 `json:"bid_rate"` // BidResponses / Requests
	Wins         int64   `json:"wins"`
	Losses       int64   `json:"losses"`
	WinRate      float64 `json:"win_rate"` // Wins / Bids

	Spend     []CampaignSpend `json:"spend"`
	Notices   NoticeReport    `json:"notices"`
	Errors    ErrorReport     `json:"errors"`
	SampleAdm string          `json:"sample_adm,omitempty"`

	// Violations are recorded in every run; Check says whether they fail it.
	Violations []ViolationCount `json:"violations"`
	Check      *CheckReport     `json:"check,omitempty"`
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	From  string  `json:"from"` // where the measured time starts
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func summarize(h *hdrhistogram.Histogram, from string) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		From: from, Count: h.TotalCount(), Mean: h.Mean() / 1000,
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)),
		Max: ms(h.Max()),
	}
}

// CampaignSpend is what one campaign (Bid.cid) spent on won impressions.
type CampaignSpend struct {
	Campaign string  `json:"campaign"`
	Currency string  `json:"currency"`
	Wins     int64   `json:"wins"`
	Amount   float64 `json:"amount"` // currency units: Σ clearing CPM / 1000
}

// NoticeReport counts notices fired (attempted) and failed, by kind.
type NoticeReport struct {
	Disabled     bool        `json:"disabled,omitempty"`
	Win          NoticeCount `json:"win"`           // first nurl of each won bid
	WinDuplicate NoticeCount `json:"win_duplicate"` // the nurl again
	WinLate      int64       `json:"win_late"`      // of Win, fired after the late delay
	Bill         NoticeCount `json:"bill"`          // burl
	Loss         NoticeCount `json:"loss"`          // lurl
	Dropped      int64       `json:"dropped"`       // notice queue full
	Unsent       int64       `json:"unsent"`        // chains still waiting at the drain timeout
	FirstError   string      `json:"first_error,omitempty"`
}

func (n *NoticeReport) failed() int64 {
	return n.Win.Failed + n.WinDuplicate.Failed + n.Bill.Failed + n.Loss.Failed
}

// NoticeCount is fired and failed notices of one kind.
type NoticeCount struct {
	Fired  int64 `json:"fired"`
	Failed int64 `json:"failed"`
}

// ErrorReport counts failed bid requests by kind.
type ErrorReport struct {
	Connection int64  `json:"connection"`
	Timeout    int64  `json:"timeout"`
	HTTP4xx    int64  `json:"http_4xx"`
	HTTP5xx    int64  `json:"http_5xx"`
	HTTPOther  int64  `json:"http_other"`
	BadJSON    int64  `json:"bad_json"`
	FirstError string `json:"first_error,omitempty"`
}

// ViolationCount is one kind of invalid response, how often and examples.
type ViolationCount struct {
	Violation Violation `json:"violation"`
	Count     int64     `json:"count"`
	Examples  []string  `json:"examples"`
}

// CheckReport is the verdict of a checked run.
type CheckReport struct {
	Passed  bool     `json:"passed"`
	Reasons []string `json:"reasons,omitempty"`
}

// Failed reports whether a checked run failed.
func (r *Report) Failed() bool { return r.Check != nil && !r.Check.Passed }

// evaluate fills r.Check for a checked run.
func (r *Report) evaluate(cfg *Config) {
	c := &CheckReport{}
	for _, v := range r.Violations {
		c.Reasons = append(c.Reasons, fmt.Sprintf("%d× %s (e.g. %s)", v.Count, v.Violation, strings.Join(v.Examples, "; ")))
	}
	if n := r.Errors.HTTP4xx + r.Errors.HTTP5xx + r.Errors.HTTPOther; n > 0 {
		c.Reasons = append(c.Reasons, fmt.Sprintf("%d answers with an HTTP error status (4xx %d, 5xx %d, other %d)",
			n, r.Errors.HTTP4xx, r.Errors.HTTP5xx, r.Errors.HTTPOther))
	}
	if f := r.Notices.failed(); f > 0 {
		c.Reasons = append(c.Reasons, fmt.Sprintf("%d notices failed (HTTP status 400 or more, or no answer), e.g. %s", f, r.Notices.FirstError))
	}
	if r.Answered == 0 {
		c.Reasons = append(c.Reasons, "no request was answered")
	}
	if failed := r.Errors.Connection + r.Errors.Timeout; r.Requests > 0 &&
		float64(failed) > cfg.MaxErrorShare*float64(r.Requests) {
		c.Reasons = append(c.Reasons, fmt.Sprintf("%d of %d requests failed (connection %d, timeout %d), more than the allowed %.2g%%",
			failed, r.Requests, r.Errors.Connection, r.Errors.Timeout, cfg.MaxErrorShare*100))
	}
	spent := map[string]float64{}
	for _, s := range r.Spend {
		spent[s.Campaign] += s.Amount
	}
	cids := make([]string, 0, len(cfg.Budgets))
	for cid := range cfg.Budgets {
		cids = append(cids, cid)
	}
	sort.Strings(cids)
	for _, cid := range cids {
		// Compare in micros of currency so rounding cannot fail a campaign
		// that spent exactly its budget.
		if roundMicros(spent[cid]) > roundMicros(cfg.Budgets[cid]) {
			c.Reasons = append(c.Reasons, fmt.Sprintf("campaign %s spent %s, over its budget %s", cid,
				FormatCPM(spent[cid]), FormatCPM(cfg.Budgets[cid])))
		}
	}
	c.Passed = len(c.Reasons) == 0
	r.Check = c
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	title := "chaser-load"
	if r.Label != "" {
		title += " [" + r.Label + "]"
	}
	pace := "closed loop"
	if r.Mode == ModeOpen {
		pace = fmt.Sprintf("open loop at %g qps", r.QPS)
	}
	fmt.Fprintf(&b, "%s: %s, %s, %d connections, %gs, tmax %dms, %s-price auction\n",
		title, r.Target, pace, r.Connections, r.DurationS, r.TMaxMs, r.Auction)
	fmt.Fprintf(&b, "  requests     %d sent, %d answered in %.2fs: throughput %.1f/s (sent %.1f/s)\n",
		r.Requests, r.Answered, r.ElapsedS, r.Throughput, r.SendRate)
	if r.Dropped > 0 {
		fmt.Fprintf(&b, "               %d more fell due but were dropped unsent, their connection busy past tmax\n", r.Dropped)
	}
	l := r.Latency
	fmt.Fprintf(&b, "  latency      p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (from %s, %d samples)\n",
		fmtMs(l.P50), fmtMs(l.P90), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max), l.From, l.Count)
	if q := r.QueueDelay; q != nil {
		fmt.Fprintf(&b, "  queued       p50 %s  p99 %s  max %s  (due while the connection awaited the bidder; in latency)\n",
			fmtMs(q.P50), fmtMs(q.P99), fmtMs(q.Max))
	}
	if o := r.TimerLag; o != nil {
		fmt.Fprintf(&b, "  timer lag    p50 %s  p99 %s  max %s  (generator late with a free connection; not in latency)\n",
			fmtMs(o.P50), fmtMs(o.P99), fmtMs(o.Max))
	}
	fmt.Fprintf(&b, "  bids         %d bids in %d answers, %d no-bids: bid rate %.1f%%\n",
		r.Bids, r.BidResponses, r.NoBids, r.BidRate*100)
	fmt.Fprintf(&b, "  auction      %d won, %d lost: win rate %.1f%%\n", r.Wins, r.Losses, r.WinRate*100)
	n := r.Notices
	switch {
	case n.Disabled:
		fmt.Fprintf(&b, "  notices      disabled\n")
	default:
		fmt.Fprintf(&b, "  notices      win %d (late %d), duplicate win %d, bill %d, loss %d; failed %d, dropped %d, unsent %d\n",
			n.Win.Fired, n.WinLate, n.WinDuplicate.Fired, n.Bill.Fired, n.Loss.Fired, n.failed(), n.Dropped, n.Unsent)
	}
	if n.FirstError != "" {
		fmt.Fprintf(&b, "               first notice error: %s\n", n.FirstError)
	}
	if n.Dropped+n.Unsent > 0 {
		fmt.Fprintf(&b, "               warning: %d notices never sent, the bidder answering them too slowly for the notice workers\n"+
			"               (raise --notice-workers or --notice-drain); spend counts every win, the bidder saw fewer\n", n.Dropped+n.Unsent)
	}
	if len(r.Spend) == 0 {
		fmt.Fprintf(&b, "  spend        none\n")
	}
	for i, s := range r.Spend {
		head := "  spend       "
		if i > 0 {
			head = "             "
		}
		fmt.Fprintf(&b, "%s %-20s %s %12.6f  (%d wins)\n", head, s.Campaign, s.Currency, s.Amount, s.Wins)
	}
	e := r.Errors
	fmt.Fprintf(&b, "  errors       connection %d, timeout %d, 4xx %d, 5xx %d, other status %d, bad JSON %d\n",
		e.Connection, e.Timeout, e.HTTP4xx, e.HTTP5xx, e.HTTPOther, e.BadJSON)
	if e.FirstError != "" {
		fmt.Fprintf(&b, "               first error: %s\n", e.FirstError)
	}
	if len(r.Violations) > 0 && r.Check == nil {
		fmt.Fprintf(&b, "  violations   (not checked; run with --check to fail on them)\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "    %d× %s\n", v.Count, v.Violation)
		}
	}
	if c := r.Check; c != nil {
		if c.Passed {
			fmt.Fprintf(&b, "  check        PASSED\n")
		} else {
			fmt.Fprintf(&b, "  check        FAILED\n")
			for _, reason := range c.Reasons {
				fmt.Fprintf(&b, "    - %s\n", reason)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

// Comparison is a baseline run and a target run with the same settings.
type Comparison struct {
	Baseline *Report `json:"baseline"`
	Target   *Report `json:"target"`
	// ThroughputShare is the target's throughput over the baseline's, over
	// all rounds.
	ThroughputShare float64 `json:"throughput_share"`
	// Rounds are the alternating slices; how far their shares spread shows
	// how noisy the machine was.
	Rounds []Round `json:"rounds"`
	// MedianShare is the median of the rounds' shares: each round puts a
	// baseline slice next to a target slice, so drift of the machine between
	// rounds cancels in a round's share, and the median ignores the few
	// rounds a burst of other work hit on one side only.
	MedianShare float64 `json:"median_share"`
	Note        string  `json:"note,omitempty"`
}

// medianShare returns the median of the rounds' shares (0 for none).
func medianShare(rounds []Round) float64 {
	if len(rounds) == 0 {
		return 0
	}
	v := make([]float64, len(rounds))
	for i, r := range rounds {
		v[i] = r.Share
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Round is one baseline slice and one target slice, answers per second.
type Round struct {
	Baseline float64 `json:"baseline_qps"`
	Target   float64 `json:"target_qps"`
	Share    float64 `json:"share"`
}

// Failed reports whether the target run failed its check.
func (c *Comparison) Failed() bool { return c.Target.Failed() }

// WriteText writes both reports and the ratio.
func (c *Comparison) WriteText(w io.Writer) error {
	if err := c.Baseline.WriteText(w); err != nil {
		return err
	}
	if err := c.Target.WriteText(w); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "target throughput is %.1f%% of the no-op baseline (%.1f/s vs %.1f/s); p99 %s vs %s\n",
		c.ThroughputShare*100, c.Target.Throughput, c.Baseline.Throughput,
		fmtMs(c.Target.Latency.P99), fmtMs(c.Baseline.Latency.P99))
	if err == nil && len(c.Rounds) > 1 {
		var b strings.Builder
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, r := range c.Rounds {
			fmt.Fprintf(&b, " %.0f%%", r.Share*100)
			lo, hi = math.Min(lo, r.Share), math.Max(hi, r.Share)
		}
		advice := ""
		if hi-lo > 0.15 {
			advice = "; a noisy machine: repeat, or lengthen --duration"
		}
		_, err = fmt.Fprintf(w, "per round:%s (median %.1f%%, spread %.0f points%s)\n", b.String(), c.MedianShare*100, (hi-lo)*100, advice)
	}
	if err == nil && c.Note != "" {
		_, err = fmt.Fprintf(w, "note: %s\n", c.Note)
	}
	return err
}
