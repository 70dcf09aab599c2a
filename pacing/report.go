package pacing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/campaign"
)

// hourSlot counts one UTC hour of bid-path events for the report. Four
// slots rotate by hour; Tick flushes them to Pebble every 10 s.
type hourSlot struct {
	hour    atomic.Int64
	matched atomic.Int64
	bids    atomic.Int64
	clicks  atomic.Int64
	// Pacing state samples (float64 bits), added by Tick.
	thrSum, multSum atomic.Uint64
	samples         atomic.Int64
	// Tick's bookkeeping, under Pacer.tickMu.
	flushedHour    int64
	flushed        [3]int64 // matched, bids, clicks at the last flush
	flushedSamples int64
}

func addFloat(u *atomic.Uint64, f float64) {
	for {
		old := u.Load()
		if u.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+f)) {
			return
		}
	}
}

func (s *hourSlot) values() slotValues {
	return slotValues{s.matched.Load(), s.bids.Load(), s.clicks.Load(),
		math.Float64frombits(s.thrSum.Load()), math.Float64frombits(s.multSum.Load()), s.samples.Load()}
}

// slot returns the report slot of unix's hour, resetting it if it still
// holds an hour four or more hours ago (flushed long before by Tick).
func (st *campState) slot(unix int64) *hourSlot {
	h := unix / 3600
	s := &st.hours[h&3]
	if s.hour.Load() == h {
		return s
	}
	st.slotMu.Lock()
	if s.hour.Load() != h {
		s.matched.Store(0)
		s.bids.Store(0)
		s.clicks.Store(0)
		s.thrSum.Store(0)
		s.multSum.Store(0)
		s.samples.Store(0)
		s.hour.Store(h)
	}
	st.slotMu.Unlock()
	return s
}

func reportKey(cmp string, hour int64) []byte {
	return binary.BigEndian.AppendUint64(reportPrefix(cmp), uint64(hour))
}

func encodeSlot(matched, bids, clicks int64, thrSum, multSum float64, samples int64) []byte {
	v := make([]byte, 0, 48)
	for _, n := range []int64{matched, bids, clicks} {
		v = binary.BigEndian.AppendUint64(v, uint64(n))
	}
	v = binary.BigEndian.AppendUint64(v, math.Float64bits(thrSum))
	v = binary.BigEndian.AppendUint64(v, math.Float64bits(multSum))
	return binary.BigEndian.AppendUint64(v, uint64(samples))
}

type slotValues struct {
	matched, bids, clicks int64
	thrSum, multSum       float64
	samples               int64
}

func decodeSlot(v []byte) (slotValues, bool) {
	if len(v) != 48 {
		return slotValues{}, false
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(v[8*i:]) }
	return slotValues{int64(u(0)), int64(u(1)), int64(u(2)), math.Float64frombits(u(3)), math.Float64frombits(u(4)), int64(u(5))}, true
}

// flushHours writes every slot that changed since its last flush. With all
// set (the campaign is going away) it writes them regardless.
func (p *Pacer) flushHours(st *campState, unix int64, b *pebble.Batch, all bool) {
	for i := range st.hours {
		s := &st.hours[i]
		h := s.hour.Load()
		if h == 0 || h > unix/3600 {
			continue
		}
		v := s.values()
		cur := [3]int64{v.matched, v.bids, v.clicks}
		if !all && h == s.flushedHour && cur == s.flushed && v.samples == s.flushedSamples {
			continue
		}
		_ = b.Set(reportKey(st.id, h), encodeSlot(v.matched, v.bids, v.clicks, v.thrSum, v.multSum, v.samples), nil)
		s.flushedHour, s.flushed, s.flushedSamples = h, cur, v.samples
	}
}

// loadHour puts the persisted counters of hour back in its slot (restart).
func (p *Pacer) loadHour(st *campState, hour int64) {
	s := &st.hours[hour&3]
	s.hour.Store(hour)
	v, closer, err := p.db.Get(reportKey(st.id, hour))
	if err != nil {
		return
	}
	defer closer.Close()
	if sv, ok := decodeSlot(v); ok {
		s.matched.Store(sv.matched)
		s.bids.Store(sv.bids)
		s.clicks.Store(sv.clicks)
		s.thrSum.Store(math.Float64bits(sv.thrSum))
		s.multSum.Store(math.Float64bits(sv.multSum))
		s.samples.Store(sv.samples)
		s.flushedHour, s.flushed, s.flushedSamples = hour, [3]int64{sv.matched, sv.bids, sv.clicks}, sv.samples
	}
}

// Flush writes report counters and controller state now (at shutdown).
func (p *Pacer) Flush() {
	p.tickMu.Lock()
	defer p.tickMu.Unlock()
	unix := p.o.Now().Unix()
	b := p.db.NewBatch()
	defer b.Close()
	for _, st := range *p.states.Load() {
		p.saveVolatile(st, unix, b)
		p.flushHours(st, unix, b, false)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		p.log.Error("pacing: flush", "err", err)
	}
}

// ReportRow is one hour of a campaign's report. Money is in micros of the
// campaign currency; Throttle and Multiplier are the hour's averages of the
// pacing controller's state (−1 when it was not sampled).
type ReportRow struct {
	Hour        time.Time
	Matched     int64 // requests whose user and context matched the campaign
	Bids        int64
	Wins        int64
	Impressions int64
	Clicks      int64
	SpendMicros int64
	Throttle    float64
	Multiplier  float64
}

// MaxReportHours bounds one report (31 days).
const MaxReportHours = 31 * 24

// ErrReportRange is returned for a report range that is empty or too long.
var ErrReportRange = errors.New("pacing: report range must be 1 hour to 31 days, from before to")

// Report returns campaign id's hourly rows for the UTC hours overlapping
// [from, to), one row per hour, oldest first. Wins, impressions and spend
// are counted at the hour of the bid.
func (p *Pacer) Report(id string, from, to time.Time) ([]ReportRow, error) {
	h0 := from.Unix() / 3600
	h1 := (to.Unix() + 3599) / 3600
	if h1 <= h0 || h1-h0 > MaxReportHours {
		return nil, ErrReportRange
	}
	rows := make([]ReportRow, h1-h0)
	for i := range rows {
		rows[i] = ReportRow{Hour: time.Unix((h0+int64(i))*3600, 0).UTC(), Throttle: -1, Multiplier: -1}
	}
	set := func(h int64, sv slotValues) {
		r := &rows[h-h0]
		r.Matched, r.Bids, r.Clicks = sv.matched, sv.bids, sv.clicks
		if sv.samples > 0 {
			r.Throttle = sv.thrSum / float64(sv.samples)
			r.Multiplier = sv.multSum / float64(sv.samples)
		}
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: reportKey(id, h0), UpperBound: reportKey(id, h1)})
	if err != nil {
		return nil, err
	}
	pl := len(reportPrefix(id))
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != pl+8 {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, err
		}
		if sv, ok := decodeSlot(v); ok {
			set(int64(binary.BigEndian.Uint64(k[pl:])), sv)
		}
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	// Live slots are newer than what was flushed.
	if st := (*p.states.Load())[id]; st != nil {
		for i := range st.hours {
			s := &st.hours[i]
			if h := s.hour.Load(); h >= h0 && h < h1 {
				set(h, s.values())
			}
		}
	}
	err = p.ledger.Hours(id, h0, h1, func(t HourTotals) {
		r := &rows[t.Hour-h0]
		r.Wins, r.Impressions, r.SpendMicros = t.Wins, t.Imps, t.Spend
	})
	if err != nil {
		return nil, fmt.Errorf("pacing: report %s: %w", id, err)
	}
	return rows, nil
}

// State is a campaign's pacing state now.
type State struct {
	Mode             string  // even or asap
	Live             bool    // status and flight allow bidding now
	Throttle         float64 // share of matched requests allowed to bid
	Multiplier       float64 // bid multiplier of even pacing
	SpentTodayMicros int64
	SpentTotalMicros int64
	ReservedMicros   int64 // bid, not yet settled
	DailyMicros      int64 // effective budget today (daily, bounded by the total left); −1 for none
	TargetMicros     int64 // even pacing: where spend should be by now
	RequestsPerMin   float64
	CurveDays        int    // full days of traffic the curve has learned (0: default curve)
	Market           string // first-price model in use: min_to_win, win_rate or none
}

// State returns campaign c's pacing state.
func (p *Pacer) State(c *campaign.Campaign) State {
	c = p.canonical(c)
	now := p.o.Now()
	unix := now.Unix()
	st, err := p.state(c, unix)
	if err != nil {
		return State{Mode: c.Pacing, DailyMicros: -1}
	}
	cfg := st.config(c)
	st.roll(unix)
	s := State{Mode: c.Pacing, Live: c.LiveAt(now), Throttle: st.throttleValue(), Multiplier: st.multiplier(),
		SpentTodayMicros: st.spentDay.Load(), SpentTotalMicros: st.spentTotal.Load(), ReservedMicros: st.res.total.Load(),
		CurveDays: st.curve.Load().days, Market: "none"}
	s.DailyMicros = effectiveDaily(c, s.SpentTodayMicros, s.SpentTotalMicros, st.dayStart.Load())
	if s.DailyMicros == math.MaxInt64 {
		s.DailyMicros = -1
	}
	if m := st.market.curve.Load(); m != nil {
		s.Market = m.source
	}
	p.tickMu.Lock()
	if cfg.even {
		s.TargetMicros = st.ctl.target
	}
	s.RequestsPerMin = st.ctl.supply * 60
	p.tickMu.Unlock()
	return s
}
