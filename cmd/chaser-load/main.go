// Command chaser-load is Chaser's exchange simulator: it sends realistic
// OpenRTB 2.6 traffic to a bidder at a target rate, runs the auction, fires
// the notices and reports what the bidder did.
//
//	chaser-load --target http://127.0.0.1:8080 --qps 500 --duration 30s
//	chaser-load --target http://127.0.0.1:8080 --baseline --duration 10s
//	chaser-load --target http://127.0.0.1:8080 --check --budget cmp_1=5
//	chaser-load --target http://127.0.0.1:8080 --overload --metrics-url http://127.0.0.1:8081/metrics --check
//	CHASER_ADMIN_TOKEN=… chaser-load --prepare --admin http://127.0.0.1:8081
//
// --prepare sends no bid requests: it sets up the realistic mix on a running
// `chaser serve --demo` through the admin API (50 list audiences of 1 M uids
// with the known users spread across them, 20 running campaigns of adv_demo
// with budgets no run exhausts, the demo's own campaign paused; see
// loadtest.PrepareConfig) and exits. A
// second --prepare on a prepared server finds everything by name and does
// nothing.
//
// Progress goes to stderr once a second, the report to stdout (as JSON with
// --json). Exit status: 0 done, 1 a --check failed, 2 bad flags, the run
// could not start or --prepare failed.
//
// The flags only fill a loadtest.Config; everything else is in package
// loadtest.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/chaser-dsp/chaser/loadtest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are the flags that are not part of loadtest.Config.
type options struct {
	json       bool
	baseline   bool
	cpuProfile string
	noopServer string // serve the no-op baseline server (as the child of a --baseline run)
	overload   bool
	ov         loadtest.OverloadConfig
	prepare    bool
	prep       loadtest.PrepareConfig
}

type budgetFlag map[string]float64

func (b budgetFlag) String() string { return fmt.Sprint(map[string]float64(b)) }

func (b budgetFlag) Set(s string) error {
	cid, amount, err := loadtest.ParseBudget(s)
	if err != nil {
		return err
	}
	b[cid] = amount
	return nil
}

// parseFlags turns the command line into a Config.
func parseFlags(args []string, stderr io.Writer) (loadtest.Config, options, error) {
	cfg := loadtest.DefaultConfig()
	var opt options
	fs := flag.NewFlagSet("chaser-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: chaser-load --target URL [--qps N | --mode closed] [--duration D] [flags]\n\n")
		fs.PrintDefaults()
	}
	t, n := &cfg.Traffic, &cfg.Notices

	fs.StringVar(&cfg.Target, "target", cfg.Target, "bidder base URL")
	fs.StringVar(&cfg.Path, "path", cfg.Path, "bid endpoint path")
	fs.Float64Var(&cfg.QPS, "qps", cfg.QPS, "open-loop request rate; 0 means closed loop (max throughput)")
	mode := fs.String("mode", "", "open or closed (default open, closed when --qps 0 or with --baseline without --qps)")
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "concurrent connections (most requests in flight)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to send requests")
	fs.DurationVar(&cfg.TMax, "tmax", cfg.TMax, "BidRequest.tmax; slower answers count as timeouts")
	auction := fs.String("auction", string(cfg.Auction), "first or second (price auction; sets BidRequest.at)")
	fs.Float64Var(&cfg.Competition.Median, "compete-median", cfg.Competition.Median, "median competing CPM (log-normal); 0 = no competition")
	fs.Float64Var(&cfg.Competition.Sigma, "compete-sigma", cfg.Competition.Sigma, "log-normal sigma of the competing CPM; 0 = always the median")

	fs.IntVar(&t.PoolSize, "pool", t.PoolSize, "distinct pre-generated requests")
	fs.Uint64Var(&t.Seed, "seed", t.Seed, "random seed for the request pool and the run")
	fs.Float64Var(&t.SiteShare, "site-share", t.SiteShare, "share of site requests (rest are app)")
	fs.Float64Var(&t.NativeShare, "native-share", t.NativeShare, "share of native imps (rest are banner)")
	fs.Float64Var(&t.FloorShare, "floor-share", t.FloorShare, "share of imps with a bidfloor")
	fs.Float64Var(&t.FloorMedian, "floor-median", t.FloorMedian, "median bidfloor, CPM USD")
	fs.Float64Var(&t.GzipShare, "gzip-share", t.GzipShare, "share of requests with a gzip body")
	fs.Float64Var(&t.GDPRShare, "gdpr-share", t.GDPRShare, "share of EU requests with regs.gdpr=1 and a TCF v2 string")
	fs.Float64Var(&t.GDPRConsentShare, "gdpr-consent-share", t.GDPRConsentShare, "share of GDPR requests whose TCF string consents")
	fs.Float64Var(&t.COPPAShare, "coppa-share", t.COPPAShare, "share of requests with regs.coppa=1")
	fs.Float64Var(&t.USPrivacyOptOutShare, "usp-optout-share", t.USPrivacyOptOutShare, "share of US requests with regs.us_privacy=1YYN")
	fs.Float64Var(&t.UnknownShare, "unknown-share", t.UnknownShare, "share of users unknown to the bidder")
	fs.StringVar(&t.KnownPrefix, "known-prefix", t.KnownPrefix, "known users' buyeruid prefix")
	fs.IntVar(&t.KnownCount, "known-count", t.KnownCount, "known users: PREFIX1 … PREFIXn")
	ifaFile := fs.String("known-ifa-file", "", "file of known mobile ad ids, one a line; known app users are sent by device.ifa")

	fs.BoolVar(&n.Disabled, "no-notices", false, "send no win, billing or loss notices (measure bid handling alone, as the baseline)")
	fs.Float64Var(&n.DuplicateShare, "dup-win-share", n.DuplicateShare, "share of wins whose nurl is fired twice")
	fs.Float64Var(&n.LateShare, "late-win-share", n.LateShare, "share of wins whose notices come late")
	fs.DurationVar(&n.LateDelay, "late-win-delay", n.LateDelay, "delay of late win notices")
	fs.IntVar(&n.Workers, "notice-workers", n.Workers, "goroutines firing notices")
	fs.DurationVar(&n.Timeout, "notice-timeout", n.Timeout, "timeout of one notice request")
	fs.DurationVar(&n.DrainTimeout, "notice-drain", n.DrainTimeout, "how long to wait for pending notices at the end")

	fs.BoolVar(&cfg.Check, "check", false, "exit 1 if any answer is invalid OpenRTB, an HTTP error, or a campaign exceeds its --budget")
	budgets := budgetFlag{}
	fs.Var(budgets, "budget", "campaign=amount: most the campaign (Bid.cid) may spend, currency units (repeatable; with --check)")
	fs.Float64Var(&cfg.MaxErrorShare, "max-error-share", cfg.MaxErrorShare, "with --check, share of requests allowed to end in connection errors or timeouts")
	fs.BoolVar(&opt.json, "json", false, "print the report as JSON")
	fs.BoolVar(&opt.baseline, "baseline", false, "first measure a no-op fasthttp handler (in a child process, on loopback) with the same settings, and report the target's throughput as a share of it")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "with --baseline: alternating baseline/target slices sharing --duration (evens out a machine whose load drifts)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	opt.ov = loadtest.DefaultOverloadConfig()
	ov := &opt.ov
	fs.BoolVar(&opt.overload, "overload", false, "step run: find (closed-loop probe) or take (--qps) the sustainable rate, then phases normal, overload, recovery, each reported with latency vs --tmax, 204s, drops, shed counts and the server's RSS; notices off")
	fs.DurationVar(&ov.ProbeDuration, "probe", ov.ProbeDuration, "with --overload and no --qps: closed-loop probe that finds the sustainable rate")
	fs.Float64Var(&ov.Factor, "overload-factor", ov.Factor, "with --overload: overload rate as a multiple of the sustainable rate")
	fs.Float64Var(&ov.NormalFactor, "normal-factor", ov.NormalFactor, "with --overload: normal and recovery rate as a multiple of the sustainable rate")
	phases := fs.String("phases", "", "with --overload: durations of the normal, overload and recovery phases, e.g. 5s,10s,5s (the default)")
	fs.IntVar(&ov.OverloadConnections, "overload-connections", 0, "with --overload: connections in the overload phase (default --connections)")
	fs.StringVar(&ov.MetricsURL, "metrics-url", "", "with --overload: the bidder's Prometheus endpoint, for process_resident_memory_bytes and chaser_bid_shed_total (Chaser: http://ADMIN/metrics)")
	fs.IntVar(&ov.PID, "pid", 0, "with --overload: a local bidder process whose RSS is read from /proc/PID/status")
	fs.Float64Var(&ov.MaxTimeoutShare, "max-timeout-share", ov.MaxTimeoutShare, "with --overload --check: share of a phase's requests allowed to get no answer within tmax")
	fs.Float64Var(&ov.MaxRSSGrowth, "max-rss-growth", ov.MaxRSSGrowth, "with --overload --check: most a phase's peak RSS may be, as a multiple of the normal phase's")
	fs.Float64Var(&ov.MinRecovery, "min-recovery", ov.MinRecovery, "with --overload --check: least recovery-phase bid rate, as a share of the normal phase's")
	opt.prep = loadtest.DefaultPrepareConfig()
	pc := &opt.prep
	fs.BoolVar(&opt.prepare, "prepare", false, "send no traffic: set up the realistic mix (--prep-* audiences and campaigns) through the admin API of a `chaser serve --demo`, then exit")
	fs.StringVar(&pc.Admin, "admin", pc.Admin, "with --prepare: the admin API base URL")
	fs.StringVar(&pc.Token, "admin-token", "", "with --prepare: the admin key (default $CHASER_ADMIN_TOKEN)")
	fs.StringVar(&pc.Advertiser, "prep-advertiser", pc.Advertiser, "with --prepare: the advertiser (with a product feed) owning audiences and campaigns")
	fs.IntVar(&pc.Audiences, "prep-audiences", pc.Audiences, "with --prepare: list audiences lt-aud-NN")
	fs.IntVar(&pc.Members, "prep-members", pc.Members, "with --prepare: uids in each audience (the known users among them)")
	fs.IntVar(&pc.Campaigns, "prep-campaigns", pc.Campaigns, "with --prepare: running campaigns lt-cmp-NN, each targeting 2 or 3 audiences")
	fs.IntVar(&pc.KnownPerUser, "prep-known-audiences", pc.KnownPerUser, "with --prepare: audiences each known user (--known-prefix, --known-count) is in")
	fs.IntVar(&pc.Parallel, "prep-parallel", pc.Parallel, "with --prepare: uploads at once")
	fs.BoolVar(&pc.Gzip, "prep-gzip", pc.Gzip, "with --prepare: send member lists gzip-compressed")
	fs.BoolVar(&pc.PauseOthers, "prep-pause-others", pc.PauseOthers, "with --prepare: pause the advertiser's campaigns outside the mix (the demo campaign), so a run measures the mix only")
	fs.StringVar(&opt.noopServer, "noop-server", "", "internal: serve the no-op baseline server on this address until stdin closes")
	fs.StringVar(&opt.cpuProfile, "cpuprofile", "", "write a CPU profile of chaser-load itself to this file (is the generator the bottleneck?)")

	if err := fs.Parse(args); err != nil {
		return cfg, opt, err
	}
	if fs.NArg() > 0 {
		return cfg, opt, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	qpsSet := false
	fs.Visit(func(f *flag.Flag) { qpsSet = qpsSet || f.Name == "qps" })
	switch {
	case *mode != "":
		cfg.Mode = loadtest.Mode(*mode)
	case cfg.QPS == 0, opt.baseline && !qpsSet:
		cfg.Mode = loadtest.ModeClosed
	default:
		cfg.Mode = loadtest.ModeOpen
	}
	cfg.Auction = loadtest.AuctionType(*auction)
	if len(budgets) > 0 {
		cfg.Budgets = budgets
	}
	if opt.overload {
		if opt.baseline {
			return cfg, opt, errors.New("--overload and --baseline do not go together")
		}
		if qpsSet {
			opt.ov.BaseQPS = cfg.QPS
		}
		if *phases != "" {
			if err := parsePhases(*phases, &opt.ov); err != nil {
				return cfg, opt, err
			}
		}
		if err := opt.ov.Validate(); err != nil {
			return cfg, opt, err
		}
		cfg.Mode, cfg.Notices.Disabled = loadtest.ModeOpen, true
		if cfg.QPS <= 0 {
			cfg.QPS = 1 // each phase sets its own rate
		}
	}
	if *ifaFile != "" {
		f, err := os.Open(*ifaFile)
		if err != nil {
			return cfg, opt, err
		}
		t.KnownIFAs, err = loadtest.ReadIDs(f)
		f.Close()
		if err != nil {
			return cfg, opt, fmt.Errorf("%s: %w", *ifaFile, err)
		}
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	if opt.prepare {
		pc.KnownPrefix, pc.KnownCount, pc.Progress = t.KnownPrefix, t.KnownCount, cfg.Progress
		if pc.Token == "" {
			pc.Token = os.Getenv("CHASER_ADMIN_TOKEN")
		}
		if opt.overload || opt.baseline {
			return cfg, opt, errors.New("--prepare sends no traffic: run --overload or --baseline in a second invocation")
		}
		return cfg, opt, pc.Validate()
	}
	if opt.noopServer != "" {
		return cfg, opt, nil
	}
	return cfg, opt, cfg.Validate()
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, opt, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "chaser-load:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if opt.noopServer != "" {
		if err := loadtest.ServeNoop(ctx, opt.noopServer, stdout, stdin); err != nil {
			fmt.Fprintln(stderr, "chaser-load:", err)
			return 2
		}
		return 0
	}
	if opt.prepare {
		rep, err := loadtest.Prepare(ctx, opt.prep)
		if err != nil {
			fmt.Fprintln(stderr, "chaser-load: prepare:", err)
			return 2
		}
		if opt.json {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			err = enc.Encode(rep)
		} else {
			err = rep.WriteText(stdout)
		}
		if err != nil {
			fmt.Fprintln(stderr, "chaser-load:", err)
			return 2
		}
		return 0
	}
	if opt.cpuProfile != "" {
		f, err := os.Create(opt.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "chaser-load:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "chaser-load:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	var report interface {
		WriteText(io.Writer) error
		Failed() bool
	}
	if opt.overload {
		report, err = loadtest.RunOverload(ctx, cfg, opt.ov)
	} else if opt.baseline {
		// The no-op server runs as a child process, like the bidder it is
		// compared with; in process only if this binary cannot be found.
		var start loadtest.NoopStarter
		if exe, err := os.Executable(); err == nil {
			start = loadtest.ChildNoop(exe, "--noop-server", "127.0.0.1:0")
		}
		report, err = loadtest.RunBaseline(ctx, cfg, start)
	} else {
		report, err = loadtest.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, "chaser-load:", err)
		return 2
	}
	if opt.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(report)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "chaser-load:", err)
		return 2
	}
	if report.Failed() {
		return 1
	}
	return 0
}

// parsePhases reads --phases: three durations, comma-separated.
func parsePhases(s string, ov *loadtest.OverloadConfig) error {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return fmt.Errorf("--phases %q: want three durations (normal,overload,recovery)", s)
	}
	var d [3]time.Duration
	for i, p := range parts {
		v, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || v <= 0 {
			return fmt.Errorf("--phases %q: %q is not a positive duration", s, p)
		}
		d[i] = v
	}
	ov.NormalDuration, ov.OverloadDuration, ov.RecoveryDuration = d[0], d[1], d[2]
	return nil
}
