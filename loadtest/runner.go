package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Run generates the request pool and measures cfg.Target with it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pool, err := NewPool(cfg.Traffic, cfg.TMax, cfg.Auction)
	if err != nil {
		return nil, err
	}
	return RunPool(ctx, cfg, pool)
}

// RunPool measures cfg.Target with a pool made earlier by NewPool (with the
// same tmax and auction type). It returns when the run is over and its
// notices are sent, or soon after ctx is done, with what was measured so far.
func RunPool(ctx context.Context, cfg Config, pool *Pool) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := newRunner(cfg, pool)
	if err != nil {
		return nil, err
	}
	return r.run(ctx), nil
}

// connErrorPause is how long a closed-loop connection rests after a
// connection error.
const connErrorPause = 10 * time.Millisecond

type runner struct {
	cfg      Config
	pool     *Pool
	client   *fasthttp.HostClient
	uri      string
	open     bool
	interval float64 // open loop: nanoseconds between due times
	nonce    uint32  // names the run in request ids

	// The current slice of the run (one, or several with RunBaseline's
	// rounds); set before its workers start.
	start   time.Time
	end     time.Time
	seqBase uint64 // first sequence number of the slice
	slices  int    // slices run so far
	label   string // progress label of the slice
	elapsed time.Duration

	seq      atomic.Uint64
	c        counters
	shards   [histShards]*shard
	spend    ledger
	found    findings
	notices  *notifier
	firstErr atomic.Pointer[string]
	sample   atomic.Pointer[string]
}

func newRunner(cfg Config, pool *Pool) (*runner, error) {
	u, err := url.Parse(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("loadtest: target: %w", err)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	r := &runner{
		cfg:  cfg,
		pool: pool,
		client: &fasthttp.HostClient{
			Addr:                   addr,
			Name:                   "chaser-load",
			IsTLS:                  u.Scheme == "https",
			MaxConns:               cfg.Connections,
			MaxConnWaitTimeout:     cfg.TMax,
			MaxIdleConnDuration:    time.Minute,
			ReadBufferSize:         16 << 10,
			WriteBufferSize:        8 << 10,
			MaxResponseBodySize:    4 << 20,
			DisablePathNormalizing: true,
		},
		uri:   strings.TrimSuffix(cfg.Target, "/") + cfg.Path,
		open:  cfg.Mode == ModeOpen,
		nonce: rand.Uint32(),
	}
	if r.open {
		r.interval = float64(time.Second) / cfg.QPS
	}
	for i := range r.shards {
		r.shards[i] = newShard()
	}
	return r, nil
}

func (r *runner) run(ctx context.Context) *Report {
	r.begin()
	r.slice(ctx, r.cfg.Duration, r.cfg.Label)
	return r.finish()
}

// begin starts the notice workers; then slice may run any number of times
// and finish ends the run.
func (r *runner) begin() {
	r.notices = newNotifier(r.cfg.Notices)
}

// slice sends traffic for d and returns how many answers arrived and how
// long it took, from the first due send to the last answer.
func (r *runner) slice(ctx context.Context, d time.Duration, label string) (answered int64, elapsed time.Duration) {
	before := r.c.status200.Load() + r.c.status204.Load()
	// A short head start lets every worker reach its first due time.
	r.start = time.Now().Add(5 * time.Millisecond)
	r.end = r.start.Add(d)
	r.seqBase = r.seq.Load()
	r.slices++
	r.label = label

	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() {
		defer close(progressDone)
		r.progress(stopProgress)
	}()

	var wg sync.WaitGroup
	for i := range r.cfg.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx, i)
		}()
	}
	wg.Wait()
	elapsed = time.Since(r.start)
	r.elapsed += elapsed
	close(stopProgress)
	<-progressDone
	return r.c.status200.Load() + r.c.status204.Load() - before, elapsed
}

// finish waits for the notices and makes the report.
func (r *runner) finish() *Report {
	unsent := r.notices.close(r.cfg.Notices.DrainTimeout)
	r.client.CloseIdleConnections()
	return r.report(r.elapsed, unsent)
}

// worker sends requests on one connection until the run is over.
func (r *runner) worker(ctx context.Context, idx int) {
	sh := r.shards[idx%histShards]
	rng := rand.New(rand.NewPCG(r.cfg.Traffic.Seed+uint64(idx)+1, uint64(r.nonce)<<16|uint64(r.slices)))
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		id        [IDLen]byte
		br        answer // decode target, reused (decodeAnswer resets it)
		bids      []bidEntry
		found     []finding
		busyUntil = r.start // when this connection's last exchange ended
	)
	for {
		n := r.seq.Add(1) - 1
		var due time.Time
		if r.open {
			due = r.start.Add(time.Duration(float64(n-r.seqBase) * r.interval))
			if !due.Before(r.end) {
				return
			}
			if d := time.Until(due); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
			}
		} else if !time.Now().Before(r.end) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if r.open && r.cfg.DropLate && time.Since(due) > r.cfg.TMax {
			// An exchange's auction has closed by now: it would not send.
			r.c.dropped.Add(1)
			continue
		}

		t := &r.pool.templates[n%uint64(len(r.pool.templates))]
		formatID(&id, r.nonce, n)
		req.Reset()
		resp.Reset()
		req.SetRequestURI(r.uri)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("application/json")
		req.Header.Set("x-openrtb-version", "2.6")
		if t.gz != nil {
			req.Header.Set(fasthttp.HeaderContentEncoding, "gzip")
		}
		req.SetBody(t.wire())
		t.patch(req.Body(), id[:])

		sent := time.Now()
		r.c.requests.Add(1)
		err := r.client.DoTimeout(req, resp, r.cfg.TMax)
		done := time.Now()
		tm := timing{latency: done.Sub(sent), answer: done.Sub(sent)}
		if r.open && busyUntil.After(due) {
			// The request fell due while this connection was still waiting
			// for the bidder's previous answer: that wait is the bidder's
			// doing and counts (no coordinated omission).
			tm.queued = busyUntil.Sub(due)
			tm.latency += tm.queued
		} else if r.open {
			// The connection was free: any delay in sending is the
			// generator's (timer granularity, a busy machine), reported
			// apart and not charged to the bidder.
			tm.oversent = max(sent.Sub(due), 0)
		}
		busyUntil = done

		if err != nil {
			if isTimeout(err) {
				r.c.timeouts.Add(1)
				sh.record(tm, r.open)
			} else {
				r.c.connErrors.Add(1)
				r.noteError(err)
				if !r.open {
					// Closed loop would otherwise spin on a dead target.
					timer.Reset(connErrorPause)
					select {
					case <-timer.C:
					case <-ctx.Done():
						return
					}
				}
			}
			continue
		}
		sh.record(tm, r.open)
		found = found[:0]
		if len(resp.Header.Peek("x-openrtb-version")) == 0 {
			found = append(found, finding{VMissingVersion, fmt.Sprintf("request %s: HTTP %d", id[:], resp.StatusCode())})
		}
		switch code := resp.StatusCode(); {
		case code == fasthttp.StatusNoContent:
			r.c.status204.Add(1)
		case code == fasthttp.StatusOK:
			bids, found = r.answered(rng, t, string(id[:]), resp, &br, bids[:0], found)
		default:
			switch {
			case code >= 400 && code < 500:
				r.c.http4xx.Add(1)
			case code >= 500 && code < 600:
				r.c.http5xx.Add(1)
			default:
				r.c.httpOther.Add(1)
			}
		}
		r.found.add(found)
	}
}

// answered handles a 200: decode into br, judge, auction, notices. The
// strings and raw JSON of br, and the bids it returns, point into resp's
// body (decodeAnswer): whatever outlives the call keeps copies (noticeURL,
// ledger.add, markupText for the sample; findings build their details).
func (r *runner) answered(rng *rand.Rand, t *template, reqID string, resp *fasthttp.Response, br *answer, bids []bidEntry, found []finding) ([]bidEntry, []finding) {
	body, err := resp.BodyUncompressed()
	if err == nil {
		// segmentio's decoder accepts exactly what encoding/json does (the
		// bidder's FuzzCodec checks it) at a third of the CPU, and the
		// markup stays raw (answer.go): the generator shares the machine
		// with the bidder it measures, and answers with bids cost it more
		// than no-bids, so a slow decoder here would be charged to the
		// bidder.
		err = decodeAnswer(body, br)
	}
	if err != nil {
		r.c.badJSON.Add(1)
		return bids, append(found, finding{VBadJSON, "request " + reqID + ": " + err.Error()})
	}
	r.c.status200.Add(1)
	bids, found = examine(t.imps, reqID, br, bids, found)
	if len(bids) == 0 {
		return bids, found
	}
	r.c.bidResponses.Add(1)
	r.c.bids.Add(int64(len(bids)))

	cur := br.Cur
	if cur == "" {
		cur = requestCurrency // the OpenRTB default
	}
	macros := Macros{AuctionID: reqID, Currency: cur}
	settle := func(e *bidEntry, o Outcome) {
		m := macros
		m.BidID = br.BidID
		if m.BidID == "" {
			m.BidID = e.bid.ID
		}
		m.ImpID, m.SeatID, m.AdID = e.bid.ImpID, e.seat, e.bid.AdID
		m.MinToWin, m.Loss = o.MinToWin, o.Loss
		if o.Won {
			m.Price = o.Clearing
			r.win(rng, e, &m, cur)
		} else {
			m.Price = o.MinToWin
			r.lose(e, &m)
		}
	}

	var prices []float64
	var idx []int
	for i := range t.imps {
		imp := &t.imps[i]
		prices, idx = prices[:0], idx[:0]
		best := 0.0
		for j := range bids {
			if bids[j].imp == i && bids[j].reject == 0 {
				prices = append(prices, bids[j].bid.Price)
				idx = append(idx, j)
				best = max(best, bids[j].bid.Price)
			}
		}
		competing := r.cfg.Competition.draw(rng)
		for k, o := range Auction(r.cfg.Auction, imp.Floor, competing, prices) {
			settle(&bids[idx[k]], o)
		}
		for j := range bids {
			if bids[j].imp == i && bids[j].reject != 0 {
				settle(&bids[j], Outcome{Loss: bids[j].reject, MinToWin: max(imp.Floor, competing, best)})
			}
		}
	}
	for j := range bids {
		if bids[j].imp < 0 {
			settle(&bids[j], Outcome{Loss: bids[j].reject})
		}
	}
	return bids, found
}

// win books a won bid and queues its notices.
func (r *runner) win(rng *rand.Rand, e *bidEntry, m *Macros, cur string) {
	r.c.wins.Add(1)
	r.spend.add(e.bid.CID, cur, m.Price)
	if r.sample.Load() == nil {
		adm := m.Expand(markupText(e.adm), false)
		if len(adm) > 600 {
			adm = adm[:600] + "…"
		}
		r.sample.CompareAndSwap(nil, &adm)
	}
	if r.cfg.Notices.Disabled {
		return
	}
	var c chain
	if e.bid.NURL != "" && absoluteHTTP(e.bid.NURL) {
		u := noticeURL(m, e.bid.NURL)
		c.steps = append(c.steps, notice{noticeWin, u})
		if rng.Float64() < r.cfg.Notices.DuplicateShare {
			c.steps = append(c.steps, notice{noticeWinDuplicate, u})
		}
	}
	if e.bid.BURL != "" && absoluteHTTP(e.bid.BURL) {
		c.steps = append(c.steps, notice{noticeBill, noticeURL(m, e.bid.BURL)})
	}
	if len(c.steps) == 0 {
		return
	}
	var delay time.Duration
	if rng.Float64() < r.cfg.Notices.LateShare {
		delay = r.cfg.Notices.LateDelay
	}
	r.notices.submit(c, delay)
}

// lose books a lost bid and queues its loss notice.
func (r *runner) lose(e *bidEntry, m *Macros) {
	r.c.losses.Add(1)
	if !r.cfg.Notices.Disabled && e.bid.LURL != "" && absoluteHTTP(e.bid.LURL) {
		r.notices.submit(chain{steps: []notice{{noticeLoss, noticeURL(m, e.bid.LURL)}}}, 0)
	}
}

// noticeURL returns u, a notice URL of a bid, with its macros expanded,
// as a string of its own: u points into the answer's body (decodeAnswer),
// which the next answer overwrites, and the notice is fired later.
func noticeURL(m *Macros, u string) string {
	s := m.Expand(u, true)
	if s == u { // Expand returns u itself when there is nothing to expand
		s = strings.Clone(s)
	}
	return s
}

func (r *runner) noteError(err error) {
	if r.firstErr.Load() == nil {
		msg := err.Error()
		r.firstErr.CompareAndSwap(nil, &msg)
	}
}

// isTimeout tells a missed deadline from a broken connection.
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrDialTimeout) {
		return false
	}
	var te interface{ Timeout() bool }
	return errors.Is(err, fasthttp.ErrTimeout) || errors.As(err, &te) && te.Timeout()
}

// formatID writes the request id for sequence number n: the run nonce in
// hex, a dash, n in 15 decimal digits.
func formatID(dst *[IDLen]byte, nonce uint32, n uint64) {
	const hexDigits = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		dst[i] = hexDigits[nonce&0xf]
		nonce >>= 4
	}
	dst[8] = '-'
	for i := IDLen - 1; i > 8; i-- {
		dst[i] = byte('0' + n%10)
		n /= 10
	}
}

// progress writes one line a second until stop is closed, and a last line
// for the final part-second when it is at least a tenth of a second long (so
// every run longer than that shows at least one line).
func (r *runner) progress(stop <-chan struct{}) {
	w := r.cfg.Progress
	if w == nil {
		w = io.Discard
	}
	label := r.label
	if label != "" {
		label += " "
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	merged := newHistogram()
	prev := r.c.snapshot()
	last := time.Now()
	line := func(now time.Time) {
		merged.Reset()
		for _, s := range r.shards {
			s.mu.Lock()
			merged.Merge(s.interval)
			s.interval.Reset()
			s.mu.Unlock()
		}
		cur := r.c.snapshot()
		secs := now.Sub(last).Seconds()
		d := func(a, b int64) float64 { return float64(a - b) }
		fmt.Fprintf(w, "[%s%5.1fs] sent %7.0f/s  answered %7.0f/s  p99 %-8s bids %5.1f%%  wins %5.1f%%  errors %d  timeouts %d\n",
			label, now.Sub(r.start).Seconds(), d(cur.requests, prev.requests)/secs, d(cur.answered, prev.answered)/secs,
			fmtMs(float64(merged.ValueAtQuantile(99))/1000),
			pct(d(cur.bidResponses, prev.bidResponses), d(cur.answered, prev.answered)),
			pct(d(cur.wins, prev.wins), d(cur.bids, prev.bids)),
			cur.errors-prev.errors, cur.timeouts-prev.timeouts)
		prev, last = cur, now
	}
	for {
		select {
		case <-stop:
			if now := time.Now(); now.Sub(last) >= 100*time.Millisecond {
				line(now)
			}
			return
		case now := <-tick.C:
			line(now)
		}
	}
}

func pct(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * a / b
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (r *runner) report(elapsed time.Duration, unsent int64) *Report {
	total, queued, oversent, answer := newHistogram(), newHistogram(), newHistogram(), newHistogram()
	for _, s := range r.shards {
		s.mu.Lock()
		total.Merge(s.total)
		queued.Merge(s.queued)
		oversent.Merge(s.oversent)
		answer.Merge(s.answer)
		s.mu.Unlock()
	}
	c := &r.c
	rep := &Report{
		Label: r.cfg.Label, Target: r.uri, Mode: r.cfg.Mode, Connections: r.cfg.Connections,
		DurationS: r.cfg.Duration.Seconds(), TMaxMs: r.cfg.TMax.Milliseconds(), Auction: r.cfg.Auction,
		ElapsedS: elapsed.Seconds(),
		Requests: c.requests.Load(),
		Answered: c.status200.Load() + c.status204.Load(),
		Dropped:  c.dropped.Load(),
	}
	if r.open {
		rep.QPS = r.cfg.QPS
		rep.Latency = summarize(total, "send, plus queueing")
		q, o, a := summarize(queued, "due time"), summarize(oversent, "due time"), summarize(answer, "send")
		rep.QueueDelay, rep.TimerLag, rep.Answer = &q, &o, &a
	} else {
		rep.Latency = summarize(total, "send")
	}
	if s := elapsed.Seconds(); s > 0 {
		rep.Throughput = float64(rep.Answered) / s
		rep.SendRate = float64(rep.Requests) / s
	}
	rep.BidResponses = c.bidResponses.Load()
	rep.NoBids = rep.Answered - rep.BidResponses
	rep.NoContent = c.status204.Load()
	rep.Bids = c.bids.Load()
	rep.BidRate = ratio(rep.BidResponses, rep.Requests)
	rep.Wins = c.wins.Load()
	rep.Losses = c.losses.Load()
	rep.WinRate = ratio(rep.Wins, rep.Bids)
	rep.Spend = r.spend.report()
	n := r.notices
	count := func(k noticeKind) NoticeCount {
		return NoticeCount{Fired: n.fired[k].Load(), Failed: n.failed[k].Load()}
	}
	rep.Notices = NoticeReport{
		Disabled: r.cfg.Notices.Disabled,
		Win:      count(noticeWin), WinDuplicate: count(noticeWinDuplicate), WinLate: n.late.Load(),
		Bill: count(noticeBill), Loss: count(noticeLoss), Dropped: n.dropped.Load(), Unsent: unsent,
	}
	if e := n.firstErr.Load(); e != nil {
		rep.Notices.FirstError = *e
	}
	rep.Errors = ErrorReport{
		Connection: c.connErrors.Load(), Timeout: c.timeouts.Load(),
		HTTP4xx: c.http4xx.Load(), HTTP5xx: c.http5xx.Load(), HTTPOther: c.httpOther.Load(),
		BadJSON: c.badJSON.Load(),
	}
	if e := r.firstErr.Load(); e != nil {
		rep.Errors.FirstError = *e
	}
	if s := r.sample.Load(); s != nil {
		rep.SampleAdm = *s
	}
	rep.Violations = r.found.sorted()
	if r.cfg.Check {
		rep.evaluate(&r.cfg)
	}
	return rep
}
