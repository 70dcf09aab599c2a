package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/bidder"
	"github.com/chaser-dsp/chaser/loadtest"
)

func TestMaxInFlightFlag(t *testing.T) {
	cfg, err := parseServeFlags(nil)
	if err != nil || cfg.MaxInFlight != bidder.DefaultMaxInFlight {
		t.Fatalf("default: %d, %v; want %d", cfg.MaxInFlight, err, bidder.DefaultMaxInFlight)
	}
	t.Setenv("CHASER_MAX_INFLIGHT", "16")
	if cfg, err = parseServeFlags(nil); err != nil || cfg.MaxInFlight != 16 {
		t.Fatalf("env: %d, %v; want 16", cfg.MaxInFlight, err)
	}
	if cfg, err = parseServeFlags([]string{"--max-inflight", "8"}); err != nil || cfg.MaxInFlight != 8 {
		t.Fatalf("flag over env: %d, %v; want 8", cfg.MaxInFlight, err)
	}
	for _, bad := range []string{"0", "-1", "many"} {
		if _, err := parseServeFlags([]string{"--max-inflight", bad}); err == nil {
			t.Errorf("--max-inflight %s accepted", bad)
		}
	}
}

// TestOverload runs chaser-load's step run (normal, overload, recovery)
// against the real binary with an in-flight limit of 1, so that the
// overload phase sheds whatever the machine's speed. It checks behaviour, not
// latency: every answer is a 200 or a 204 (shed requests are 204s, never an
// error), the server answers in every phase, never sheds with no more
// connections than its limit, returns to the same bid rate on the same
// traffic afterwards, and its memory stays within a generous factor.
func TestOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	bin := chaserBinary(t)
	// A limit of 1, and more Ps than cores so that the OS interleaves
	// handlers: two requests in the handler at once is then common.
	const limit = 1
	t.Setenv("CHASER_MAX_INFLIGHT", "1")
	t.Setenv("GOMAXPROCS", "8")
	p := startProc(t, bin, t.TempDir(), freeAddr(t), freeAddr(t))
	defer p.kill()

	cfg := loadtest.DefaultConfig()
	cfg.Target = p.bidURL
	cfg.Connections = limit // normal and recovery: never more in flight than the limit
	cfg.TMax = 5 * time.Second
	cfg.Traffic.PoolSize = 500
	cfg.Check = true
	var progress bytes.Buffer
	cfg.Progress = &progress
	o := loadtest.DefaultOverloadConfig()
	o.BaseQPS = 200
	o.Factor = 20 // as much as 64 connections send: the point is concurrency
	o.OverloadConnections = 64
	o.NormalDuration, o.OverloadDuration, o.RecoveryDuration = time.Second, 2*time.Second, time.Second
	o.MetricsURL = p.adminURL + "/metrics"
	o.MaxTimeoutShare = 1 // latency is not this test's business
	o.MaxRSSGrowth = 4
	o.MinRecovery = 0.5
	rep, err := loadtest.RunOverload(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	_ = rep.WriteText(&text)
	t.Logf("\n%s", text.String())
	if rep.Failed() {
		t.Fatalf("check failed: %s\nserver log:\n%s", strings.Join(rep.Check.Reasons, "\n"), p.log.String())
	}
	if len(rep.Phases) != 3 {
		t.Fatalf("%d phases", len(rep.Phases))
	}
	normal, overload, recovery := rep.Phases[0], rep.Phases[1], rep.Phases[2]
	for _, ph := range rep.Phases {
		r := ph.Report
		if ph.Shed == nil || ph.Memory == nil || ph.Memory.Peak <= 0 {
			t.Fatalf("%s: shed %v, memory %+v: /metrics not read", ph.Name, ph.Shed, ph.Memory)
		}
		// A shed request is answered 204: the 204s (and, on a very busy
		// machine, answers the generator gave up on) cover every shed one.
		if got := r.NoContent + r.Errors.Timeout + r.Errors.Connection; got < ph.Shed["overload"]+ph.Shed["late"] {
			t.Errorf("%s: %d shed by the server, only %d 204s and lost answers", ph.Name, ph.Shed["overload"]+ph.Shed["late"], got)
		}
	}
	for _, ph := range []loadtest.Phase{normal, recovery} {
		if ph.Shed["overload"] != 0 {
			t.Errorf("%s: %d shed for overload with %d connections and a limit of %d", ph.Name, ph.Shed["overload"], cfg.Connections, limit)
		}
	}
	if overload.Shed["overload"] == 0 {
		t.Errorf("overload: 64 connections against an in-flight limit of %d shed nothing (%d answered)", limit, overload.Report.Answered)
	}
	// The same templates in the same order: the recovery phase sees exactly
	// the normal phase's traffic.
	if recovery.Report.BidResponses == 0 || normal.Report.BidResponses == 0 {
		t.Errorf("bid responses: normal %d, recovery %d", normal.Report.BidResponses, recovery.Report.BidResponses)
	}
}
