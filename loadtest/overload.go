package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// OverloadConfig describes a step run (RunOverload): the bidder's
// sustainable rate is taken or found, then it gets a normal phase, an
// overload phase at Factor times that rate and a recovery phase, each
// reported apart with the server's memory and shed counts.
type OverloadConfig struct {
	// BaseQPS is the sustainable rate, requests per second. Zero means find
	// it: a closed-loop probe of ProbeDuration with Config.Connections,
	// whose answers per second — less the ones the bidder shed, when
	// MetricsURL shows them — are taken as the rate. Default 0.
	BaseQPS float64
	// ProbeDuration is how long the closed-loop probe runs. Default 3s.
	ProbeDuration time.Duration
	// NormalFactor is the rate of the normal and the recovery phases as a
	// multiple of BaseQPS. Default 0.5.
	NormalFactor float64
	// Factor is the rate of the overload phase as a multiple of BaseQPS.
	// Default 2.5.
	Factor float64
	// NormalDuration, OverloadDuration and RecoveryDuration are how long
	// each phase sends. Defaults 5s, 10s, 5s.
	NormalDuration   time.Duration
	OverloadDuration time.Duration
	RecoveryDuration time.Duration
	// OverloadConnections is the connections of the overload phase (an
	// exchange opens more when a bidder falls behind). Zero means
	// Config.Connections. Default 0.
	OverloadConnections int
	// MetricsURL is the bidder's Prometheus endpoint (Chaser: the admin
	// port's /metrics), read for process_resident_memory_bytes and
	// chaser_bid_shed_total. Default none.
	MetricsURL string
	// PID is a local process whose resident memory is read from
	// /proc/PID/status instead of MetricsURL. Default 0 (none).
	PID int
	// SampleEvery is how often memory is sampled during a phase.
	// Default 250ms.
	SampleEvery time.Duration
	// MaxTimeoutShare is, with Config.Check, the share of a phase's sent
	// requests that may end without an answer within tmax (timeouts and
	// connection errors). Default 0.01.
	MaxTimeoutShare float64
	// MaxRSSGrowth is, with Config.Check, how many times the normal phase's
	// peak resident memory a later phase's peak may reach. Default 3.
	MaxRSSGrowth float64
	// MinRecovery is, with Config.Check, the least share of the normal
	// phase's bid rate (bid responses over answers) the recovery phase must
	// reach; the recovery phase must also drop no more than MaxTimeoutShare
	// of its requests. Default 0.8.
	MinRecovery float64
}

// DefaultOverloadConfig returns the documented defaults.
func DefaultOverloadConfig() OverloadConfig {
	return OverloadConfig{
		ProbeDuration:    3 * time.Second,
		NormalFactor:     0.5,
		Factor:           2.5,
		NormalDuration:   5 * time.Second,
		OverloadDuration: 10 * time.Second,
		RecoveryDuration: 5 * time.Second,
		SampleEvery:      250 * time.Millisecond,
		MaxTimeoutShare:  0.01,
		MaxRSSGrowth:     3,
		MinRecovery:      0.8,
	}
}

// Validate reports the first setting that makes no sense, naming it.
func (o *OverloadConfig) Validate() error {
	switch {
	case o.BaseQPS < 0:
		return fmt.Errorf("loadtest: overload base qps must not be negative, got %v", o.BaseQPS)
	case o.BaseQPS == 0 && o.ProbeDuration <= 0:
		return errors.New("loadtest: overload needs a base qps or a positive probe duration")
	case !(o.NormalFactor > 0):
		return fmt.Errorf("loadtest: overload normal factor must be positive, got %v", o.NormalFactor)
	case !(o.Factor > o.NormalFactor):
		return fmt.Errorf("loadtest: overload factor %v must exceed the normal factor %v", o.Factor, o.NormalFactor)
	case o.NormalDuration <= 0 || o.OverloadDuration <= 0 || o.RecoveryDuration <= 0:
		return errors.New("loadtest: overload phase durations must be positive")
	case o.OverloadConnections < 0:
		return errors.New("loadtest: overload connections must not be negative")
	case o.PID < 0:
		return errors.New("loadtest: pid must not be negative")
	case o.SampleEvery <= 0:
		return errors.New("loadtest: memory sample interval must be positive")
	case !(o.MaxRSSGrowth >= 1):
		return fmt.Errorf("loadtest: max rss growth must be at least 1, got %v", o.MaxRSSGrowth)
	}
	return checkShares(share{"max timeout share", o.MaxTimeoutShare}, share{"min recovery", o.MinRecovery})
}

// Phase is one step of an overload run.
type Phase struct {
	Name   string  `json:"name"`   // normal, overload, recovery
	Factor float64 `json:"factor"` // rate over the base rate
	// Report is the phase's own run report (open loop, Config.DropLate).
	Report *Report `json:"report"`
	// Shares: NoContent of answers; Timeouts (with connection errors) of
	// sent requests; Dropped of requests that fell due.
	NoContentShare float64 `json:"no_content_share"`
	TimeoutShare   float64 `json:"timeout_share"`
	DropShare      float64 `json:"drop_share"`
	// BidRate is bid responses over answers (not over requests, so that
	// drops do not lower it).
	BidRate float64 `json:"bid_rate"`
	// WouldBidRate also counts, with the bid responses, the answers the
	// bidder says it would have bid on but for a spent budget
	// (chaser_nobid_total{reason="budget"}): a run this heavy spends the
	// demo campaign's budget whatever the bidder's health. It equals
	// BidRate without MetricsURL.
	WouldBidRate float64 `json:"would_bid_rate"`
	// Shed is the bidder's chaser_bid_shed_total increase during the
	// phase, by reason; nil without MetricsURL.
	Shed map[string]int64 `json:"shed,omitempty"`
	// NoBid is the bidder's chaser_nobid_total increase during the phase,
	// by reason; nil without MetricsURL.
	NoBid map[string]int64 `json:"nobid,omitempty"`
	// Memory is the bidder's resident memory; nil when not sampled.
	Memory *Memory `json:"rss,omitempty"`
}

// Memory is resident memory in bytes at a phase's start, peak and end.
type Memory struct {
	Start   int64 `json:"start_bytes"`
	Peak    int64 `json:"peak_bytes"`
	End     int64 `json:"end_bytes"`
	Samples int   `json:"samples"`
}

// OverloadReport is the outcome of RunOverload.
type OverloadReport struct {
	Target  string  `json:"target"`
	TMaxMs  int64   `json:"tmax_ms"`
	BaseQPS float64 `json:"base_qps"`
	// BaseFrom says where BaseQPS comes from.
	BaseFrom string `json:"base_from"`
	// Probe is the closed-loop probe's report when the base was found.
	Probe *Report `json:"probe,omitempty"`
	// ProbeShed is what the bidder shed during the probe.
	ProbeShed map[string]int64 `json:"probe_shed,omitempty"`
	Phases    []Phase          `json:"phases"`
	// MemoryFrom names where memory was read ("" when it was not).
	MemoryFrom string       `json:"rss_from,omitempty"`
	Check      *CheckReport `json:"check,omitempty"`
}

// Failed reports whether a checked run failed.
func (r *OverloadReport) Failed() bool { return r.Check != nil && !r.Check.Passed }

// RunOverload finds or takes the bidder's sustainable rate and runs three
// open-loop phases: normal (NormalFactor × base), overload (Factor × base,
// OverloadConnections) and recovery (NormalFactor × base again). Every
// phase drops the requests an exchange could not send within tmax
// (Config.DropLate), so an overload cannot leave a backlog behind. Notices
// are never sent: frequency caps and budgets would otherwise lower the bid
// rate over the run and hide whether the bidder recovered. With
// Config.Check the report fails when a phase has too many answers later
// than tmax or HTTP errors, memory grows beyond MaxRSSGrowth, or the
// recovery phase does not return to the normal phase's bid rate.
func RunOverload(ctx context.Context, cfg Config, o OverloadConfig) (*OverloadReport, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg.Notices.Disabled = true
	base := cfg
	base.Mode, base.QPS = ModeOpen, max(o.BaseQPS, 1) // only to validate
	if err := base.Validate(); err != nil {
		return nil, err
	}
	pool, err := NewPool(cfg.Traffic, cfg.TMax, cfg.Auction)
	if err != nil {
		return nil, err
	}
	mon := newMonitor(o)
	rep := &OverloadReport{TMaxMs: cfg.TMax.Milliseconds(), BaseQPS: o.BaseQPS, BaseFrom: "given", MemoryFrom: mon.from()}

	if o.BaseQPS == 0 {
		pc := cfg
		pc.Mode, pc.Duration, pc.Check, pc.Label = ModeClosed, o.ProbeDuration, false, "probe"
		before := mon.sample(ctx)
		pr, err := runPhase(ctx, pc, pool)
		if err != nil {
			return nil, err
		}
		after := mon.sample(ctx)
		rep.Probe, rep.ProbeShed = pr, shedDelta(before, after)
		decided := pr.Answered
		for _, n := range rep.ProbeShed {
			decided -= n
		}
		if pr.ElapsedS > 0 {
			rep.BaseQPS = float64(max(decided, 0)) / pr.ElapsedS
		}
		rep.BaseFrom = fmt.Sprintf("closed-loop probe, %v, %d connections", o.ProbeDuration, cfg.Connections)
		if rep.ProbeShed != nil {
			rep.BaseFrom += ", shed answers left out"
		}
		if !(rep.BaseQPS >= 1) {
			return nil, fmt.Errorf("loadtest: the probe found no sustainable rate (%d answered, %d errors): is %s a bidder?",
				pr.Answered, pr.Errors.Connection+pr.Errors.Timeout, pr.Target)
		}
		if ctx.Err() != nil {
			return rep, nil
		}
	}

	phases := []struct {
		name   string
		factor float64
		d      time.Duration
		conns  int
	}{
		{"normal", o.NormalFactor, o.NormalDuration, cfg.Connections},
		{"overload", o.Factor, o.OverloadDuration, orDefault(o.OverloadConnections, cfg.Connections)},
		{"recovery", o.NormalFactor, o.RecoveryDuration, cfg.Connections},
	}
	for _, p := range phases {
		pc := cfg
		pc.Mode, pc.QPS, pc.Duration, pc.Connections = ModeOpen, p.factor*rep.BaseQPS, p.d, p.conns
		pc.DropLate, pc.Check, pc.Label = true, false, p.name
		before := mon.sample(ctx)
		stop := mon.watch(ctx)
		pr, err := runPhase(ctx, pc, pool)
		if err != nil {
			stop()
			return nil, err
		}
		peak, n := stop()
		after := mon.sample(ctx)
		rep.Target = pr.Target
		ph := Phase{Name: p.name, Factor: p.factor, Report: pr, Shed: shedDelta(before, after),
			NoBid: counterDelta(before.nobid, after.nobid)}
		ph.NoContentShare = ratio(pr.NoContent, pr.Answered)
		ph.TimeoutShare = ratio(pr.Errors.Timeout+pr.Errors.Connection, pr.Requests)
		ph.DropShare = ratio(pr.Dropped, pr.Requests+pr.Dropped)
		ph.BidRate = ratio(pr.BidResponses, pr.Answered)
		ph.WouldBidRate = ratio(pr.BidResponses+max(ph.NoBid["budget"], 0), pr.Answered)
		if before.rss > 0 || after.rss > 0 || peak > 0 {
			ph.Memory = &Memory{Start: before.rss, End: after.rss, Peak: max(before.rss, after.rss, peak), Samples: n}
		}
		rep.Phases = append(rep.Phases, ph)
		if ctx.Err() != nil {
			break
		}
	}
	if cfg.Check {
		rep.evaluate(&o)
	}
	return rep, nil
}

// orDefault returns a unless it is zero, then b.
func orDefault(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func runPhase(ctx context.Context, cfg Config, pool *Pool) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := newRunner(cfg, pool)
	if err != nil {
		return nil, err
	}
	return r.run(ctx), nil
}

// evaluate fills r.Check.
func (r *OverloadReport) evaluate(o *OverloadConfig) {
	c := &CheckReport{}
	fail := func(format string, args ...any) { c.Reasons = append(c.Reasons, fmt.Sprintf(format, args...)) }
	var normal, recovery *Phase
	for i := range r.Phases {
		p := &r.Phases[i]
		pr := p.Report
		switch p.Name {
		case "normal":
			normal = p
		case "recovery":
			recovery = p
		}
		if pr.Answered == 0 {
			fail("%s: no request was answered", p.Name)
		}
		if n := pr.Errors.HTTP4xx + pr.Errors.HTTP5xx + pr.Errors.HTTPOther + pr.Errors.BadJSON; n > 0 {
			fail("%s: %d answers with an HTTP error status or a bad body (4xx %d, 5xx %d, other %d, bad JSON %d)",
				p.Name, n, pr.Errors.HTTP4xx, pr.Errors.HTTP5xx, pr.Errors.HTTPOther, pr.Errors.BadJSON)
		}
		for _, v := range pr.Violations {
			fail("%s: %d× %s (e.g. %s)", p.Name, v.Count, v.Violation, strings.Join(v.Examples, "; "))
		}
		if p.TimeoutShare > o.MaxTimeoutShare {
			fail("%s: %d of %d sent requests (%.2f%%) got no answer within tmax %dms (timeout %d, connection %d), more than the allowed %.2g%%",
				p.Name, pr.Errors.Timeout+pr.Errors.Connection, pr.Requests, p.TimeoutShare*100, r.TMaxMs,
				pr.Errors.Timeout, pr.Errors.Connection, o.MaxTimeoutShare*100)
		}
		if p.Name != "overload" && p.DropShare > o.MaxTimeoutShare {
			why := "the bidder had not recovered"
			if p.Name == "normal" {
				why = "the base rate is not sustainable"
			}
			fail("%s: %d of %d requests (%.2f%%) dropped, their connection busy past tmax: %s",
				p.Name, pr.Dropped, pr.Requests+pr.Dropped, p.DropShare*100, why)
		}
	}
	if normal != nil && normal.Memory != nil && normal.Memory.Peak > 0 {
		limit := float64(normal.Memory.Peak) * o.MaxRSSGrowth
		for _, p := range r.Phases {
			if p.Memory != nil && float64(p.Memory.Peak) > limit {
				fail("%s: resident memory peaked at %s, more than %g× the normal phase's %s",
					p.Name, fmtMiB(p.Memory.Peak), o.MaxRSSGrowth, fmtMiB(normal.Memory.Peak))
			}
		}
	}
	if normal != nil && recovery != nil && recovery.WouldBidRate < o.MinRecovery*normal.WouldBidRate {
		fail("recovery: bid rate %.1f%% of answers (budget no-bids counted as bids), under %.0f%% of the normal phase's %.1f%%",
			recovery.WouldBidRate*100, o.MinRecovery*100, normal.WouldBidRate*100)
	}
	if len(r.Phases) < 3 {
		fail("the run ended after %d of 3 phases", len(r.Phases))
	}
	c.Passed = len(c.Reasons) == 0
	r.Check = c
}

func fmtMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// WriteText writes the report for people: one line per phase.
func (r *OverloadReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "chaser-load overload: %s, tmax %dms, base rate %.0f/s (%s)\n", r.Target, r.TMaxMs, r.BaseQPS, r.BaseFrom)
	if p := r.Probe; p != nil {
		fmt.Fprintf(&b, "  probe      %d answered in %.2fs (%.0f/s), p99 %s, shed %s\n",
			p.Answered, p.ElapsedS, p.Throughput, fmtMs(p.Latency.P99), fmtShed(r.ProbeShed))
	}
	fmt.Fprintf(&b, "  %-9s %5s %5s %8s %8s %10s %7s %8s %6s %13s %9s %9s %9s  %-22s %s\n",
		"phase", "×", "conns", "target/s", "sent/s", "answered/s", "dropped", "timeouts", "204s", "bid rate (*)",
		"p99", "p99.9", "max", "shed (overload/late)", "RSS start→peak→end")
	for _, p := range r.Phases {
		pr := p.Report
		a := pr.Latency
		if pr.Answer != nil {
			a = *pr.Answer
		}
		rss := "-"
		if m := p.Memory; m != nil {
			rss = fmt.Sprintf("%.0f→%.0f→%.0f MiB", float64(m.Start)/(1<<20), float64(m.Peak)/(1<<20), float64(m.End)/(1<<20))
		}
		fmt.Fprintf(&b, "  %-9s %5.2g %5d %8.0f %8.0f %10.0f %6.1f%% %7.2f%% %5.1f%% %5.1f%% %5.1f%%* %9s %9s %9s  %-22s %s\n",
			p.Name, p.Factor, pr.Connections, pr.QPS, pr.SendRate, pr.Throughput, p.DropShare*100, p.TimeoutShare*100,
			p.NoContentShare*100, p.BidRate*100, p.WouldBidRate*100, fmtMs(a.P99), fmtMs(a.P999), fmtMs(a.Max), fmtShed(p.Shed), rss)
	}
	fmt.Fprintf(&b, "  (latency: send to answer, the bidder's part, against tmax %dms; dropped: fell due while every connection\n"+
		"   was busy past tmax, an exchange would not send them; 204s and bid rate are shares of answers;\n"+
		"   * also counting no-bids for a spent budget, which the recovery check compares)\n", r.TMaxMs)
	for _, p := range r.Phases {
		if q := p.Report.QueueDelay; q != nil && q.P99 > 0 {
			fmt.Fprintf(&b, "  %-9s waited for a free connection: p99 %s, max %s; generator timer lag p99 %s\n",
				p.Name, fmtMs(q.P99), fmtMs(q.Max), fmtMs(p.Report.TimerLag.P99))
		}
	}
	if c := r.Check; c != nil {
		if c.Passed {
			fmt.Fprintf(&b, "  check      PASSED\n")
		} else {
			fmt.Fprintf(&b, "  check      FAILED\n")
			for _, reason := range c.Reasons {
				fmt.Fprintf(&b, "    - %s\n", reason)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtShed(m map[string]int64) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%d", m["overload"], m["late"])
}

// metricsSample is one reading of the bidder's memory and counters.
type metricsSample struct {
	rss   int64            // bytes; 0 when unknown
	shed  map[string]int64 // chaser_bid_shed_total by reason; nil when unknown
	nobid map[string]int64 // chaser_nobid_total by reason; nil when unknown
}

func shedDelta(before, after metricsSample) map[string]int64 {
	return counterDelta(before.shed, after.shed)
}

// counterDelta is after − before by label; nil when either is unknown.
func counterDelta(before, after map[string]int64) map[string]int64 {
	if before == nil || after == nil {
		return nil
	}
	d := make(map[string]int64, len(after))
	for k, v := range after {
		d[k] = v - before[k]
	}
	return d
}

// monitor reads the bidder's memory and shed counters.
type monitor struct {
	url    string
	pid    int
	every  time.Duration
	client *http.Client
}

func newMonitor(o OverloadConfig) *monitor {
	return &monitor{url: o.MetricsURL, pid: o.PID, every: o.SampleEvery, client: &http.Client{Timeout: 2 * time.Second}}
}

func (m *monitor) from() string {
	switch {
	case m.pid > 0:
		return fmt.Sprintf("/proc/%d/status VmRSS", m.pid)
	case m.url != "":
		return m.url + " process_resident_memory_bytes"
	}
	return ""
}

// sample reads once; what cannot be read is left zero or nil.
func (m *monitor) sample(ctx context.Context) metricsSample {
	var s metricsSample
	if m.url != "" {
		if body, err := m.get(ctx); err == nil {
			s = parseMetrics(body)
		}
	}
	if m.pid > 0 {
		s.rss = 0
		if rss, err := readProcRSS(fmt.Sprintf("/proc/%d/status", m.pid)); err == nil {
			s.rss = rss
		}
	}
	return s
}

func (m *monitor) get(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadtest: %s: HTTP %d", m.url, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 8<<20))
}

// watch samples memory every m.every until the returned function is
// called, which returns the peak and the number of samples.
func (m *monitor) watch(ctx context.Context) (stop func() (peak int64, samples int)) {
	if m.url == "" && m.pid == 0 {
		return func() (int64, int) { return 0, 0 }
	}
	var (
		mu   sync.Mutex
		peak int64
		n    int
	)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(m.every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if s := m.sample(ctx); s.rss > 0 {
					mu.Lock()
					peak, n = max(peak, s.rss), n+1
					mu.Unlock()
				}
			}
		}
	}()
	return func() (int64, int) {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak, n
	}
}

// parseMetrics reads process_resident_memory_bytes and the
// chaser_bid_shed_total and chaser_nobid_total counters (by reason) from a
// Prometheus text exposition. A missing memory line leaves the RSS zero; a
// missing counter leaves its map nil.
func parseMetrics(body []byte) metricsSample {
	var s metricsSample
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case name == "process_resident_memory_bytes":
			if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
				s.rss = int64(v)
			}
		default:
			for _, c := range []struct {
				prefix string
				dst    *map[string]int64
			}{{`chaser_bid_shed_total{reason="`, &s.shed}, {`chaser_nobid_total{reason="`, &s.nobid}} {
				reason, ok := strings.CutPrefix(name, c.prefix)
				if !ok || !strings.HasSuffix(reason, `"}`) {
					continue
				}
				if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
					if *c.dst == nil {
						*c.dst = map[string]int64{}
					}
					(*c.dst)[strings.TrimSuffix(reason, `"}`)] = int64(v)
				}
			}
		}
	}
	return s
}

// readProcRSS reads VmRSS, in bytes, from a /proc/PID/status file.
func readProcRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("loadtest: rss: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n << 10, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("loadtest: rss: no VmRSS line in %s", path)
}
