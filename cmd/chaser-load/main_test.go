package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/loadtest"
)

// TestMain lets the test binary stand in for chaser-load as the --baseline
// child: ChildNoop starts os.Executable(), which here is the test binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "--noop-server" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, cfg loadtest.Config, opt options)
	}{
		{"defaults", nil, func(t *testing.T, cfg loadtest.Config, opt options) {
			if cfg.Mode != loadtest.ModeOpen || cfg.QPS != 1000 || cfg.Duration != 30*time.Second || cfg.TMax != 100*time.Millisecond {
				t.Errorf("%+v", cfg)
			}
			if cfg.Traffic.UnknownShare != 0.7 || cfg.Traffic.KnownPrefix != "demo-user-" || cfg.Traffic.KnownCount != 100 {
				t.Errorf("traffic %+v", cfg.Traffic)
			}
			if cfg.Progress == nil || cfg.Check || opt.json || opt.baseline {
				t.Errorf("progress %v check %v opt %+v", cfg.Progress, cfg.Check, opt)
			}
		}},
		{"qps 0 is closed loop", []string{"--qps", "0"}, func(t *testing.T, cfg loadtest.Config, _ options) {
			if cfg.Mode != loadtest.ModeClosed {
				t.Errorf("mode %s", cfg.Mode)
			}
		}},
		{"baseline without qps is closed loop", []string{"--baseline"}, func(t *testing.T, cfg loadtest.Config, opt options) {
			if cfg.Mode != loadtest.ModeClosed || !opt.baseline {
				t.Errorf("mode %s opt %+v", cfg.Mode, opt)
			}
		}},
		{"baseline with qps stays open", []string{"--baseline", "--qps", "2000"}, func(t *testing.T, cfg loadtest.Config, _ options) {
			if cfg.Mode != loadtest.ModeOpen || cfg.QPS != 2000 {
				t.Errorf("mode %s qps %v", cfg.Mode, cfg.QPS)
			}
		}},
		{"overload probes without qps", []string{"--overload", "--metrics-url", "http://127.0.0.1:18081/metrics"}, func(t *testing.T, cfg loadtest.Config, opt options) {
			o := opt.ov
			if !opt.overload || o.BaseQPS != 0 || o.Factor != 2.5 || o.NormalFactor != 0.5 || o.MetricsURL != "http://127.0.0.1:18081/metrics" {
				t.Errorf("opt %+v", opt)
			}
			if !cfg.Notices.Disabled || cfg.Mode != loadtest.ModeOpen {
				t.Errorf("notices %+v mode %s: want notices off", cfg.Notices, cfg.Mode)
			}
		}},
		{"overload takes qps as the base", []string{"--overload", "--qps", "4000", "--overload-factor", "3", "--phases", "2s,6s,3s",
			"--overload-connections", "256", "--pid", "42", "--max-rss-growth", "2", "--min-recovery", "0.9", "--max-timeout-share", "0.001"},
			func(t *testing.T, _ loadtest.Config, opt options) {
				o := opt.ov
				if o.BaseQPS != 4000 || o.Factor != 3 || o.NormalDuration != 2*time.Second || o.OverloadDuration != 6*time.Second ||
					o.RecoveryDuration != 3*time.Second || o.OverloadConnections != 256 || o.PID != 42 || o.MaxRSSGrowth != 2 ||
					o.MinRecovery != 0.9 || o.MaxTimeoutShare != 0.001 {
					t.Errorf("overload %+v", o)
				}
			}},
		{"everything", []string{"--target", "http://127.0.0.1:18080", "--qps", "500", "--duration", "10s", "--check",
			"--budget", "cmp_1=5", "--budget", "cmp_2=7.5", "--auction", "second", "--json", "--quiet",
			"--known-prefix", "u-", "--known-count", "10", "--unknown-share", "0.5", "--dup-win-share", "0"},
			func(t *testing.T, cfg loadtest.Config, opt options) {
				if cfg.Target != "http://127.0.0.1:18080" || cfg.QPS != 500 || cfg.Duration != 10*time.Second || !cfg.Check {
					t.Errorf("%+v", cfg)
				}
				if cfg.Budgets["cmp_1"] != 5 || cfg.Budgets["cmp_2"] != 7.5 || cfg.Auction != loadtest.SecondPrice {
					t.Errorf("budgets %v auction %s", cfg.Budgets, cfg.Auction)
				}
				if !opt.json || cfg.Progress != nil || cfg.Traffic.KnownPrefix != "u-" || cfg.Traffic.KnownCount != 10 ||
					cfg.Traffic.UnknownShare != 0.5 || cfg.Notices.DuplicateShare != 0 {
					t.Errorf("opt %+v cfg %+v", opt, cfg)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, opt, err := parseFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg, opt)
		})
	}
	for _, bad := range [][]string{
		{"--auction", "vickrey"}, {"--mode", "open", "--qps", "0"}, {"--budget", "nope"},
		{"--gzip-share", "2"}, {"--target", "localhost:8080"}, {"stray"},
		{"--overload", "--baseline"}, {"--overload", "--phases", "1s,2s"}, {"--overload", "--phases", "1s,x,2s"},
		{"--overload", "--overload-factor", "0.4"}, {"--overload", "--max-rss-growth", "0.5"},
	} {
		if _, _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestParsePrepareFlags(t *testing.T) {
	t.Setenv("CHASER_ADMIN_TOKEN", "")
	if _, _, err := parseFlags([]string{"--prepare"}, io.Discard); err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Errorf("--prepare without a token: %v", err)
	}
	t.Setenv("CHASER_ADMIN_TOKEN", "env-token")
	_, opt, err := parseFlags([]string{"--prepare", "--admin", "http://127.0.0.1:9081", "--prep-audiences", "3", "--prep-members", "2000",
		"--prep-campaigns", "4", "--prep-parallel", "1", "--prep-gzip", "--known-prefix", "u-", "--known-count", "10"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p := opt.prep
	if !opt.prepare || p.Token != "env-token" || p.Admin != "http://127.0.0.1:9081" || p.Audiences != 3 || p.Members != 2000 ||
		p.Campaigns != 4 || p.Parallel != 1 || !p.Gzip || !p.PauseOthers || p.KnownPrefix != "u-" || p.KnownCount != 10 || p.Advertiser != "adv_demo" {
		t.Errorf("prepare %+v", p)
	}
	if _, opt, err = parseFlags([]string{"--prepare", "--admin-token", "flag-token"}, io.Discard); err != nil || opt.prep.Token != "flag-token" {
		t.Errorf("--admin-token over the environment: %q, %v", opt.prep.Token, err)
	}
	for _, bad := range [][]string{
		{"--prepare", "--overload"}, {"--prepare", "--prep-audiences", "0"}, {"--prepare", "--admin", "nowhere"},
		{"--prepare", "--prep-members", "5"},
	} {
		if _, _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestRunEndToEnd(t *testing.T) {
	noop, err := loadtest.StartNoop("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer noop.Close()
	common := []string{"--target", noop.URL, "--duration", "300ms", "--qps", "200", "--pool", "200", "--connections", "4"}

	var out, errOut bytes.Buffer
	if code := run(append(common, "--json", "--check"), nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	var rep loadtest.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out.String())
	}
	if rep.Requests != 60 || rep.Answered != 60 || rep.Check == nil || !rep.Check.Passed {
		t.Errorf("report %+v", rep)
	}

	out.Reset()
	errOut.Reset()
	if code := run(append(common, "--baseline", "--quiet", "--rounds", "2"), nil, &out, &errOut); code != 0 {
		t.Fatalf("baseline exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "of the no-op baseline") || !strings.Contains(out.String(), "[baseline]") ||
		!strings.Contains(out.String(), "per round:") {
		t.Errorf("baseline report:\n%s", out.String())
	}

	// A budget of zero for a campaign that never bids passes; a run against
	// nothing fails its check with exit 1 and says why.
	url := noop.URL
	noop.Close()
	out.Reset()
	errOut.Reset()
	code := run([]string{"--target", url, "--duration", "100ms", "--qps", "100", "--pool", "50", "--check", "--quiet", "--budget", "cmp_x=0"}, nil, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "FAILED") || !strings.Contains(out.String(), "connection") {
		t.Errorf("exit %d\n%s", code, out.String())
	}
	if code := run([]string{"--qps", "-1"}, nil, &out, &errOut); code != 2 {
		t.Errorf("bad flags: exit %d", code)
	}
}
