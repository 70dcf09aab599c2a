package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestDropLate: a request whose connection is still busy tmax after it fell
// due is dropped, never sent late; every due request is either sent or
// dropped.
func TestDropLate(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprint("drop=", drop), func(t *testing.T) {
			fake := startFake(t, 1.0, FirstPrice)
			fake.delay = 30 * time.Millisecond
			cfg := testConfig(fake.URL)
			cfg.QPS, cfg.Duration, cfg.Connections = 50, time.Second, 1
			cfg.TMax = 40 * time.Millisecond
			cfg.Notices.Disabled = true
			cfg.Check = false
			cfg.DropLate = drop
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Request k is due at 20k ms; each answer takes at least 30 ms,
			// so the connection falls further behind with every request.
			if rep.Requests+rep.Dropped != 50 {
				t.Fatalf("sent %d + dropped %d, want 50 due", rep.Requests, rep.Dropped)
			}
			if drop && (rep.Dropped == 0 || rep.Requests > 40) {
				t.Fatalf("drop late: sent %d, dropped %d; want most dropped", rep.Requests, rep.Dropped)
			}
			if !drop && rep.Dropped != 0 {
				t.Fatalf("without drop late: %d dropped", rep.Dropped)
			}
			if rep.Answer == nil || rep.Answer.P50 < 30 {
				t.Fatalf("answer latency %+v: want the fake's 30 ms", rep.Answer)
			}
			if drop && rep.QueueDelay.Max > 45 {
				// Nothing waits past tmax (plus a little timer slack) to be sent.
				t.Errorf("drop late: a request waited %v ms for its connection, past tmax", rep.QueueDelay.Max)
			}
		})
	}
}

// fakeMetrics serves a Prometheus page whose memory and shed counters the
// test sets.
type fakeMetrics struct {
	rss, shedOverload, shedLate atomic.Int64
	grow                        atomic.Bool  // double rss at every reading
	shedPerRead                 atomic.Int64 // add to shedOverload at every reading
}

func (m *fakeMetrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	m.shedOverload.Add(m.shedPerRead.Load())
	if m.grow.Load() {
		m.rss.Store(min(m.rss.Load()*2, 1<<50))
	}
	fmt.Fprintf(w, "# HELP x\nchaser_bid_requests_total{outcome=\"nobid\"} 12\n"+
		"chaser_bid_shed_total{reason=\"late\"} %d\nchaser_bid_shed_total{reason=\"overload\"} %d\nchaser_nobid_total{reason=\"budget\"} 0\n"+
		"process_resident_memory_bytes %d\nprocess_resident_memory_peak_bytes 999999999\n",
		m.shedLate.Load(), m.shedOverload.Load(), m.rss.Load())
}

func shortOverload(metricsURL string) OverloadConfig {
	o := DefaultOverloadConfig()
	o.ProbeDuration = 300 * time.Millisecond
	o.NormalDuration, o.OverloadDuration, o.RecoveryDuration = 400*time.Millisecond, 400*time.Millisecond, 400*time.Millisecond
	o.SampleEvery = 50 * time.Millisecond
	o.MetricsURL = metricsURL
	return o
}

// TestRunOverloadStructure runs the whole step run against the fake bidder
// and a fake metrics page: probe, three phases at the right rates, shed
// counts and memory per phase, a passing check; then the same run with the
// memory blowing up fails it.
func TestRunOverloadStructure(t *testing.T) {
	fake := startFake(t, 1.0, FirstPrice)
	m := &fakeMetrics{}
	m.rss.Store(100 << 20)
	ms := httptest.NewServer(m)
	defer ms.Close()

	cfg := testConfig(fake.URL)
	cfg.Connections = 4
	o := shortOverload(ms.URL)
	o.BaseQPS = 200
	rep, err := RunOverload(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Probe != nil || rep.BaseFrom != "given" || rep.BaseQPS != 200 {
		t.Fatalf("base %v from %q, probe %v: want the given 200", rep.BaseQPS, rep.BaseFrom, rep.Probe)
	}
	want := []struct {
		name   string
		factor float64
	}{{"normal", 0.5}, {"overload", 2.5}, {"recovery", 0.5}}
	if len(rep.Phases) != len(want) {
		t.Fatalf("%d phases, want 3", len(rep.Phases))
	}
	for i, w := range want {
		p := rep.Phases[i]
		if p.Name != w.name || p.Factor != w.factor || p.Report.QPS != w.factor*200 || p.Report.Mode != ModeOpen {
			t.Errorf("phase %d: %s ×%v at %v qps (%s), want %s ×%v", i, p.Name, p.Factor, p.Report.QPS, p.Report.Mode, w.name, w.factor)
		}
		if p.Report.Answered == 0 || p.Report.Notices.Win.Fired != 0 {
			t.Errorf("%s: answered %d, win notices %d; want answers and no notices", p.Name, p.Report.Answered, p.Report.Notices.Win.Fired)
		}
		if p.Memory == nil || p.Memory.Peak != 100<<20 || p.Shed == nil {
			t.Errorf("%s: memory %+v, shed %v; want 100 MiB read from the metrics page", p.Name, p.Memory, p.Shed)
		}
		if p.NoBid == nil || p.WouldBidRate != p.BidRate {
			t.Errorf("%s: no-bids %v, would-bid rate %v, bid rate %v; want equal rates with no budget no-bids", p.Name, p.NoBid, p.WouldBidRate, p.BidRate)
		}
		if p.NoContentShare <= 0 || p.BidRate <= 0 {
			t.Errorf("%s: 204 share %v, bid rate %v; the fake answers both", p.Name, p.NoContentShare, p.BidRate)
		}
	}
	if rep.Failed() {
		t.Fatalf("check failed: %v", rep.Check.Reasons)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"normal", "overload", "recovery", "100→100→100 MiB", "PASSED"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, b.String())
		}
	}

	// The same with memory that keeps growing.
	// Each reading doubles the memory: every later phase reads at least
	// twice more (at its start and end), so its peak is ≥ 4× the normal's.
	m.grow.Store(true)
	rep, err = RunOverload(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Failed() || !strings.Contains(strings.Join(rep.Check.Reasons, "\n"), "resident memory") {
		t.Fatalf("memory ×10 after the normal phase: check %+v", rep.Check)
	}
}

// TestRunOverloadProbe: without a base rate a closed-loop probe finds it,
// leaving out what the bidder shed.
func TestRunOverloadProbe(t *testing.T) {
	fake := startFake(t, 1.0, FirstPrice)
	m := &fakeMetrics{}
	ms := httptest.NewServer(m)
	defer ms.Close()
	cfg := testConfig(fake.URL)
	cfg.Connections = 2
	cfg.Check = false
	o := shortOverload(ms.URL)
	o.Factor = 1.5 // keep the test light: the fake is not what is measured
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Pretend the bidder shed more than it answered during the probe.
	m.shedPerRead.Store(1_000_000_000)
	_, err := RunOverload(ctx, cfg, o)
	if err == nil || !strings.Contains(err.Error(), "no sustainable rate") {
		t.Fatalf("a probe whose answers were all shed: err %v, want no sustainable rate", err)
	}
	m.shedPerRead.Store(0)
	rep, err := RunOverload(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Probe == nil || rep.Probe.Mode != ModeClosed || rep.BaseQPS <= 0 ||
		rep.BaseQPS > rep.Probe.Throughput+1e-9 || !strings.Contains(rep.BaseFrom, "probe") {
		t.Fatalf("probe %+v, base %v from %q", rep.Probe, rep.BaseQPS, rep.BaseFrom)
	}
	if len(rep.Phases) != 3 || rep.Phases[1].Report.QPS != 1.5*rep.BaseQPS {
		t.Fatalf("phases %d, overload at %v qps; want 1.5 × %v", len(rep.Phases), rep.Phases[1].Report.QPS, rep.BaseQPS)
	}
}

func TestOverloadEvaluate(t *testing.T) {
	phase := func(name string, mutate func(*Phase)) Phase {
		p := Phase{Name: name, Report: &Report{Requests: 1000, Answered: 1000, BidResponses: 200}, BidRate: 0.2, WouldBidRate: 0.2,
			Memory: &Memory{Start: 50 << 20, Peak: 60 << 20, End: 55 << 20}}
		if mutate != nil {
			mutate(&p)
		}
		return p
	}
	cases := []struct {
		name   string
		phases []Phase
		want   string // a reason must contain it; "" means pass
	}{
		{"good", []Phase{phase("normal", nil), phase("overload", func(p *Phase) { p.DropShare = 0.6 }), phase("recovery", nil)}, ""},
		{"timeouts in overload", []Phase{phase("normal", nil), phase("overload", func(p *Phase) {
			p.Report.Errors.Timeout, p.TimeoutShare = 20, 0.02
		}), phase("recovery", nil)}, "overload: 20 of 1000 sent requests"},
		{"5xx", []Phase{phase("normal", nil), phase("overload", func(p *Phase) { p.Report.Errors.HTTP5xx = 1 }), phase("recovery", nil)}, "5xx 1"},
		{"violations", []Phase{phase("normal", nil), phase("overload", func(p *Phase) {
			p.Report.Violations = []ViolationCount{{Violation: VMissingVersion, Count: 3}}
		}), phase("recovery", nil)}, "3× " + string(VMissingVersion)},
		{"nothing answered", []Phase{phase("normal", nil), phase("overload", func(p *Phase) { p.Report.Answered = 0 }), phase("recovery", nil)}, "overload: no request was answered"},
		{"memory", []Phase{phase("normal", nil), phase("overload", func(p *Phase) { p.Memory.Peak = 181 << 20 }), phase("recovery", nil)}, "overload: resident memory peaked at 181.0 MiB"},
		{"memory at the limit", []Phase{phase("normal", nil), phase("overload", func(p *Phase) { p.Memory.Peak = 180 << 20 }), phase("recovery", nil)}, ""},
		{"no bids after", []Phase{phase("normal", nil), phase("overload", nil), phase("recovery", func(p *Phase) { p.BidRate, p.WouldBidRate = 0.1, 0.1 })}, "recovery: bid rate 10.0%"},
		{"budget spent", []Phase{phase("normal", nil), phase("overload", nil), phase("recovery", func(p *Phase) { p.BidRate = 0 })}, ""},
		{"still dropping", []Phase{phase("normal", nil), phase("overload", nil), phase("recovery", func(p *Phase) { p.DropShare, p.Report.Dropped = 0.3, 429 })}, "the bidder had not recovered"},
		{"base too high", []Phase{phase("normal", func(p *Phase) { p.DropShare, p.Report.Dropped = 0.3, 429 }), phase("overload", nil), phase("recovery", nil)}, "the base rate is not sustainable"},
		{"cut short", []Phase{phase("normal", nil)}, "after 1 of 3 phases"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOverloadConfig()
			r := &OverloadReport{TMaxMs: 100, Phases: tc.phases}
			r.evaluate(&o)
			reasons := strings.Join(r.Check.Reasons, "\n")
			if tc.want == "" {
				if !r.Check.Passed {
					t.Fatalf("failed: %s", reasons)
				}
				return
			}
			if r.Check.Passed || !strings.Contains(reasons, tc.want) {
				t.Fatalf("reasons %q, want one with %q", reasons, tc.want)
			}
		})
	}
}

func TestParseMetrics(t *testing.T) {
	s := parseMetrics([]byte("# HELP process_resident_memory_bytes x\nprocess_resident_memory_bytes 1.2345e+07\n" +
		"process_resident_memory_peak_bytes 5\nchaser_bid_shed_total{reason=\"overload\"} 7\nchaser_bid_shed_total{reason=\"late\"} 2\n" +
		"chaser_bid_shed_total_other 9\ngarbage\nchaser_nobid_total{reason=\"budget\"} 11\nchaser_nobid_total{reason=\"overload\"} 7\n"))
	if s.rss != 12345000 || s.shed["overload"] != 7 || s.shed["late"] != 2 || len(s.shed) != 2 ||
		s.nobid["budget"] != 11 || len(s.nobid) != 2 {
		t.Fatalf("parsed %+v", s)
	}
	if s := parseMetrics([]byte("nothing here 1\n")); s.rss != 0 || s.shed != nil {
		t.Fatalf("empty page parsed as %+v", s)
	}
	if d := shedDelta(metricsSample{}, s); d != nil {
		t.Fatalf("delta without counters: %v", d)
	}
}

func TestReadProcRSS(t *testing.T) {
	if rss, err := readProcRSS("testdata/proc_status"); err != nil || rss != 73728<<10 {
		t.Fatalf("testdata: %d, %v", rss, err)
	}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		if rss, err := readProcRSS("/proc/self/status"); err != nil || rss <= 0 {
			t.Fatalf("/proc/self/status: %d, %v", rss, err)
		}
	}
	if _, err := readProcRSS("testdata/no-such-file"); err == nil {
		t.Fatal("missing file read")
	}
}

func TestOverloadConfigValidate(t *testing.T) {
	for name, edit := range map[string]func(*OverloadConfig){
		"negative base":     func(o *OverloadConfig) { o.BaseQPS = -1 },
		"no base, no probe": func(o *OverloadConfig) { o.ProbeDuration = 0 },
		"factor not above":  func(o *OverloadConfig) { o.Factor = o.NormalFactor },
		"zero phase":        func(o *OverloadConfig) { o.RecoveryDuration = 0 },
		"rss growth < 1":    func(o *OverloadConfig) { o.MaxRSSGrowth = 0.5 },
		"share > 1":         func(o *OverloadConfig) { o.MaxTimeoutShare = 2 },
		"negative conns":    func(o *OverloadConfig) { o.OverloadConnections = -1 },
	} {
		o := DefaultOverloadConfig()
		edit(&o)
		if o.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	o := DefaultOverloadConfig()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}
