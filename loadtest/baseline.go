package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// NoopServer is the ceiling a bidder is measured against: a fasthttp server
// that answers every request with 204 and the OpenRTB version header, doing
// nothing else.
type NoopServer struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:41234".
	URL  string
	ln   net.Listener
	srv  *fasthttp.Server
	done chan error

	closeOnce sync.Once
	closeErr  error
}

// StartNoop starts a NoopServer on addr ("127.0.0.1:0" picks a free port).
func StartNoop(addr string) (*NoopServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loadtest: no-op server: %w", err)
	}
	s := &NoopServer{
		URL: "http://" + ln.Addr().String(),
		ln:  ln,
		srv: &fasthttp.Server{
			Name: "chaser-noop",
			Handler: func(ctx *fasthttp.RequestCtx) {
				ctx.Response.Header.Set("x-openrtb-version", "2.6")
				ctx.SetStatusCode(fasthttp.StatusNoContent)
			},
			ReadTimeout: time.Minute,
		},
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server and waits for it. Calling it again does nothing.
func (s *NoopServer) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *NoopServer) close() error {
	err := s.srv.Shutdown()
	// Shutdown does not know a listener Serve has not picked up yet; closing
	// it ends Serve either way.
	_ = s.ln.Close()
	if err != nil {
		return fmt.Errorf("loadtest: no-op server shutdown: %w", err)
	}
	if err := <-s.done; err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("loadtest: no-op server: %w", err)
	}
	return nil
}

// NoopStarter starts the server a baseline run measures. It returns the
// server's base URL and a function that stops it.
type NoopStarter func(ctx context.Context) (url string, stop func() error, err error)

// InProcessNoop is a NoopStarter that runs a NoopServer in this process, on
// loopback. It shares this process's runtime with the generator, which a
// bidder in its own process does not: prefer ChildNoop for a fair ratio.
func InProcessNoop(context.Context) (string, func() error, error) {
	s, err := StartNoop("127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	return s.URL, s.Close, nil
}

// ChildNoop returns a NoopStarter that runs the no-op server in a child
// process, set up like the bidder it is compared with: its own process,
// runtime and share of the CPU. path and args must make the child call
// ServeNoop (chaser-load does so for --noop-server ADDR). The child stops
// when its standard input closes, so it cannot outlive this process.
func ChildNoop(path string, args ...string) NoopStarter {
	return func(ctx context.Context) (string, func() error, error) {
		cmd := exec.Command(path, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return "", nil, fmt.Errorf("loadtest: no-op child: %w", err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return "", nil, fmt.Errorf("loadtest: no-op child: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return "", nil, fmt.Errorf("loadtest: no-op child: %w", err)
		}
		exited := make(chan error, 1)
		var once sync.Once
		var stopErr error
		stop := func() error {
			once.Do(func() {
				_ = stdin.Close()
				select {
				case stopErr = <-exited:
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
					stopErr = fmt.Errorf("loadtest: no-op child pid %d did not stop; killed it", cmd.Process.Pid)
				}
			})
			return stopErr
		}
		urls := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			urls <- strings.TrimSpace(line)
			_, _ = io.Copy(io.Discard, stdout)
			exited <- cmd.Wait()
		}()
		var said string
		select {
		case said = <-urls:
			if strings.HasPrefix(said, "http://") {
				return said, stop, nil
			}
			err = fmt.Errorf("loadtest: no-op child did not start (said %q)", said)
		case <-time.After(10 * time.Second):
			err = errors.New("loadtest: no-op child did not start within 10s")
		case <-ctx.Done():
			err = ctx.Err()
		}
		_ = stop() // after which stderr is complete and ours to read
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return "", nil, err
	}
}

// ServeNoop is the child's side of ChildNoop: it serves a NoopServer on
// addr, writes its URL and a newline to out, and returns when ctx is done or
// parent (the child's standard input) reaches its end.
func ServeNoop(ctx context.Context, addr string, out io.Writer, parent io.Reader) error {
	s, err := StartNoop(addr)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, s.URL); err != nil {
		_ = s.Close()
		return fmt.Errorf("loadtest: no-op server: %w", err)
	}
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, parent)
		close(gone)
	}()
	select {
	case <-ctx.Done():
	case <-gone:
	}
	return s.Close()
}

// RunBaseline measures a no-op server started by start (InProcessNoop when
// nil) and cfg.Target with the same settings and request pool, and states
// the target's throughput as a share of the no-op ceiling. Each side gets
// cfg.Duration in total, split into cfg.Rounds slices that alternate
// (baseline, target, target, baseline, …) so a machine whose load drifts
// during the run — any shared machine — weighs on both sides alike. Only
// the target run is checked.
func RunBaseline(ctx context.Context, cfg Config, start NoopStarter) (*Comparison, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Rounds < 1 {
		return nil, fmt.Errorf("loadtest: rounds must be at least 1, got %d", cfg.Rounds)
	}
	if cfg.Duration/time.Duration(cfg.Rounds) < 100*time.Millisecond {
		return nil, fmt.Errorf("loadtest: duration %v split into %d rounds leaves slices under 100ms", cfg.Duration, cfg.Rounds)
	}
	pool, err := NewPool(cfg.Traffic, cfg.TMax, cfg.Auction)
	if err != nil {
		return nil, err
	}
	if start == nil {
		start = InProcessNoop
	}
	noopURL, stopNoop, err := start(ctx)
	if err != nil {
		return nil, err
	}
	stop := sync.OnceValue(stopNoop)
	defer stop()

	bcfg := cfg
	bcfg.Target, bcfg.Path = noopURL, "/openrtb2/bid"
	bcfg.Check, bcfg.Budgets = false, nil
	bcfg.Label = "baseline"
	tcfg := cfg
	tcfg.Label = "target"
	base, err := newRunner(bcfg, pool)
	if err != nil {
		return nil, err
	}
	target, err := newRunner(tcfg, pool)
	if err != nil {
		return nil, err
	}
	base.begin()
	target.begin()

	rounds := max(cfg.Rounds, 1)
	d := cfg.Duration / time.Duration(rounds)
	c := &Comparison{}
	for i := range rounds {
		label := func(side string) string {
			if rounds == 1 {
				return side
			}
			return fmt.Sprintf("%s %d/%d", side, i+1, rounds)
		}
		var rr Round
		measure := func(r *runner, side string, qps *float64) {
			n, el := r.slice(ctx, d, label(side))
			if s := el.Seconds(); s > 0 {
				*qps = float64(n) / s
			}
		}
		if i%2 == 0 {
			measure(base, "baseline", &rr.Baseline)
			measure(target, "target", &rr.Target)
		} else {
			measure(target, "target", &rr.Target)
			measure(base, "baseline", &rr.Baseline)
		}
		if rr.Baseline > 0 {
			rr.Share = rr.Target / rr.Baseline
		}
		c.Rounds = append(c.Rounds, rr)
		if ctx.Err() != nil {
			break
		}
	}
	c.Baseline, c.Target = base.finish(), target.finish()
	if err := stop(); err != nil {
		return nil, err
	}
	if c.Baseline.Throughput > 0 {
		c.ThroughputShare = c.Target.Throughput / c.Baseline.Throughput
	}
	c.MedianShare = medianShare(c.Rounds)
	if cfg.Mode == ModeOpen {
		c.Note = "open loop: both runs are capped at the target rate, so the share only shows whether the bidder kept up; use --mode closed (or --qps 0) to compare ceilings"
	}
	return c, nil
}
