package loadtest

import (
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, 3 significant digits, up to
// maxLatency; longer ones are recorded as maxLatency.
const (
	maxLatencyMicros = int64(100 * time.Second / time.Microsecond)
	histShards       = 8
	examplesPerKind  = 3
)

func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, maxLatencyMicros, 3) }

// micros converts d for a histogram; values below 1µs count as 1µs.
func micros(d time.Duration) int64 {
	v := d.Microseconds()
	return min(max(v, 1), maxLatencyMicros)
}

// shard is one of a few mutex-guarded histogram sets; workers spread over
// them so recording is almost never contended.
type shard struct {
	mu       sync.Mutex
	total    *hdrhistogram.Histogram // latency over the run
	interval *hdrhistogram.Histogram // latency since the last progress line
	queued   *hdrhistogram.Histogram // open loop: due request waiting for a free connection
	oversent *hdrhistogram.Histogram // open loop: timer oversleep of the generator
	answer   *hdrhistogram.Histogram // send to answer, never queueing: the bidder's own time
}

func newShard() *shard {
	return &shard{total: newHistogram(), interval: newHistogram(), queued: newHistogram(), oversent: newHistogram(), answer: newHistogram()}
}

// timing is how one request went, in the terms of the histograms.
type timing struct {
	latency  time.Duration // answer (send to answer) plus, in open loop, queued
	answer   time.Duration
	queued   time.Duration // open loop only
	oversent time.Duration // open loop only
}

func (s *shard) record(t timing, open bool) {
	v := micros(t.latency)
	s.mu.Lock()
	_ = s.total.RecordValue(v)
	_ = s.interval.RecordValue(v)
	_ = s.answer.RecordValue(micros(t.answer))
	if open {
		_ = s.queued.RecordValue(micros(t.queued))
		_ = s.oversent.RecordValue(micros(t.oversent))
	}
	s.mu.Unlock()
}

// counters are the run's event counts.
type counters struct {
	requests     atomic.Int64 // sent
	status200    atomic.Int64
	status204    atomic.Int64
	bidResponses atomic.Int64 // 200 answers with at least one bid
	bids         atomic.Int64
	wins         atomic.Int64
	losses       atomic.Int64
	http4xx      atomic.Int64
	http5xx      atomic.Int64
	httpOther    atomic.Int64
	badJSON      atomic.Int64
	connErrors   atomic.Int64
	timeouts     atomic.Int64
	dropped      atomic.Int64 // open loop with DropLate: never sent, the deadline passed first
}

// snapshot is a copy of counters at one moment, for progress deltas.
type snapshot struct {
	requests, answered, bidResponses, bids, wins, errors, timeouts int64
}

func (c *counters) snapshot() snapshot {
	return snapshot{
		requests:     c.requests.Load(),
		answered:     c.status200.Load() + c.status204.Load(),
		bidResponses: c.bidResponses.Load(),
		bids:         c.bids.Load(),
		wins:         c.wins.Load(),
		errors:       c.http4xx.Load() + c.http5xx.Load() + c.httpOther.Load() + c.badJSON.Load() + c.connErrors.Load(),
		timeouts:     c.timeouts.Load(),
	}
}

// ledger adds up spend per campaign and currency, in micros of CPM (so a
// won impression at CPM 2.5 adds 2 500 000; divide by 1e9 for currency units).
type ledger struct {
	mu      sync.Mutex
	entries map[spendKey]*spendEntry
}

type spendKey struct{ campaign, currency string }

type spendEntry struct {
	wins      int64
	cpmMicros int64
}

func (l *ledger) add(campaign, currency string, clearing float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = make(map[spendKey]*spendEntry)
	}
	k := spendKey{campaign, currency}
	e := l.entries[k]
	if e == nil {
		// The strings may point into an answer's body (decodeAnswer),
		// which the next answer overwrites: the ledger keeps copies.
		e = &spendEntry{}
		l.entries[spendKey{strings.Clone(campaign), strings.Clone(currency)}] = e
	}
	e.wins++
	e.cpmMicros += int64(math.Round(clearing * 1e6))
}

func (l *ledger) report() []CampaignSpend {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]CampaignSpend, 0, len(l.entries))
	for k, e := range l.entries {
		out = append(out, CampaignSpend{
			Campaign: k.campaign, Currency: k.currency, Wins: e.wins,
			Amount: float64(e.cpmMicros) / 1e9,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Campaign != out[j].Campaign {
			return out[i].Campaign < out[j].Campaign
		}
		return out[i].Currency < out[j].Currency
	})
	return out
}

// findings counts violations and keeps a few examples of each.
type findings struct {
	mu       sync.Mutex
	counts   map[Violation]int64
	examples map[Violation][]string
}

func (f *findings) add(fs []finding) {
	if len(fs) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts == nil {
		f.counts = make(map[Violation]int64)
		f.examples = make(map[Violation][]string)
	}
	for _, x := range fs {
		f.counts[x.v]++
		if len(f.examples[x.v]) < examplesPerKind {
			f.examples[x.v] = append(f.examples[x.v], x.detail)
		}
	}
}

// sorted returns the violations seen, most frequent first.
func (f *findings) sorted() []ViolationCount {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ViolationCount, 0, len(f.counts))
	for v, n := range f.counts {
		out = append(out, ViolationCount{Violation: v, Count: n, Examples: f.examples[v]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Violation < out[j].Violation
	})
	return out
}
