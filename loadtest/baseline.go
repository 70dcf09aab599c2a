package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
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

// RunBaseline measures a NoopServer on loopback and then cfg.Target, with the
// same settings and the same request pool, and states the target's
// throughput as a share of the no-op ceiling. Only the target run is checked.
func RunBaseline(ctx context.Context, cfg Config) (*Comparison, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pool, err := NewPool(cfg.Traffic, cfg.TMax, cfg.Auction)
	if err != nil {
		return nil, err
	}
	noop, err := StartNoop("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	bcfg := cfg
	bcfg.Target, bcfg.Path = noop.URL, "/openrtb2/bid"
	bcfg.Check, bcfg.Budgets = false, nil
	bcfg.Label = "baseline"
	base, err := RunPool(ctx, bcfg, pool)
	if cerr := noop.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("loadtest: baseline interrupted: %w", ctx.Err())
	}
	tcfg := cfg
	tcfg.Label = "target"
	target, err := RunPool(ctx, tcfg, pool)
	if err != nil {
		return nil, err
	}
	c := &Comparison{Baseline: base, Target: target}
	if base.Throughput > 0 {
		c.ThroughputShare = target.Throughput / base.Throughput
	}
	if cfg.Mode == ModeOpen {
		c.Note = "open loop: both runs are capped at the target rate, so the share only shows whether the bidder kept up; use --mode closed (or --qps 0) to compare ceilings"
	}
	return c, nil
}
