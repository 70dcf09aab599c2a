package loadtest

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// noticeKind is what a notice tells the bidder.
type noticeKind int

const (
	noticeWin noticeKind = iota
	noticeWinDuplicate
	noticeBill
	noticeLoss
	numNoticeKinds
)

// notice is one URL to GET, macros already substituted.
type notice struct {
	kind noticeKind
	url  string
}

// chain is the notices of one bid, fired in order by one worker: for a win,
// nurl, perhaps nurl again, then burl; for a loss, lurl.
type chain struct {
	late  bool
	steps []notice
}

// notifier fires notices from a few workers so slow notice handling never
// holds up bid traffic.
type notifier struct {
	client  *fasthttp.Client
	timeout time.Duration
	jobs    chan chain
	stop    chan struct{}
	workers sync.WaitGroup

	pending     sync.WaitGroup // chains submitted and not yet fired or dropped
	outstanding atomic.Int64   // the same, as a number to report
	mu          sync.Mutex     // guards closed
	closed      bool

	fired, failed [numNoticeKinds]atomic.Int64
	late          atomic.Int64 // win notices fired late
	dropped       atomic.Int64 // notices dropped because the queue was full
	firstErr      atomic.Pointer[string]
}

func newNotifier(cfg NoticeConfig) *notifier {
	n := &notifier{
		client: &fasthttp.Client{
			Name:                   "chaser-load",
			MaxConnsPerHost:        cfg.Workers * 2,
			MaxIdleConnDuration:    10 * time.Second,
			DisablePathNormalizing: true,
		},
		timeout: cfg.Timeout,
		jobs:    make(chan chain, cfg.Queue),
		stop:    make(chan struct{}),
	}
	for range cfg.Workers {
		n.workers.Add(1)
		go n.work()
	}
	return n
}

// submit queues c now, or after delay when delay > 0.
func (n *notifier) submit(c chain, delay time.Duration) {
	n.pending.Add(1)
	n.outstanding.Add(1)
	if delay > 0 {
		c.late = true
		time.AfterFunc(delay, func() { n.enqueue(c) })
		return
	}
	n.enqueue(c)
}

func (n *notifier) enqueue(c chain) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.done() // already counted as outstanding by close
		return
	}
	select {
	case n.jobs <- c:
	default:
		n.dropped.Add(int64(len(c.steps)))
		n.done()
	}
}

func (n *notifier) done() {
	n.outstanding.Add(-1)
	n.pending.Done()
}

func (n *notifier) work() {
	defer n.workers.Done()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	for {
		select {
		case <-n.stop:
			return
		case c := <-n.jobs:
			for _, s := range c.steps {
				n.fire(req, resp, s)
				if c.late && s.kind == noticeWin {
					n.late.Add(1)
				}
			}
			n.done()
		}
	}
}

func (n *notifier) fire(req *fasthttp.Request, resp *fasthttp.Response, s notice) {
	req.Reset()
	resp.Reset()
	req.SetRequestURI(s.url)
	req.Header.SetMethod(fasthttp.MethodGet)
	n.fired[s.kind].Add(1)
	err := n.client.DoTimeout(req, resp, n.timeout)
	if err == nil && resp.StatusCode() >= 400 {
		err = &statusError{resp.StatusCode()}
	}
	if err != nil {
		n.failed[s.kind].Add(1)
		if n.firstErr.Load() == nil {
			msg := s.url + ": " + err.Error()
			n.firstErr.CompareAndSwap(nil, &msg)
		}
	}
}

// close waits up to timeout for every submitted chain, then stops the
// workers. It returns how many chains were still waiting.
func (n *notifier) close(timeout time.Duration) int64 {
	idle := make(chan struct{})
	go func() { n.pending.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(timeout):
	}
	n.mu.Lock()
	n.closed = true
	left := n.outstanding.Load()
	n.mu.Unlock()
	close(n.stop)
	n.workers.Wait()
	for {
		select {
		case <-n.jobs:
			n.done()
		default:
			n.client.CloseIdleConnections()
			return left
		}
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "HTTP status " + strconv.Itoa(e.code) }
