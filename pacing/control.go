package pacing

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/store"
)

// controlDecay is the time constant of the controller's estimates.
const controlDecay = 30 * 60.0

// controller is the even-pacing controller of one campaign, run by Tick
// under Pacer.tickMu.
//
// Each ControlInterval it compares spend today with the target curve —
// the campaign's effective daily budget spread over the day in proportion
// to the learned traffic curve, replanned from the current spend whenever
// the day, the budget or the campaign changes or it resumes — and sets
// the throttle (share of matched requests that bid) to
//
//	throttle = desired spend next interval / (expected requests × spend per admitted request)
//
// where desired spend is the target's increase plus the gap to the target
// spread over CatchUp, expected requests follow the measured request rate
// shaped by the curve, and spend per admitted request is measured
// (feed-forward from the curve, feedback from the gap). When even a full
// throttle would fall short, the bid multiplier rises (×1.1 per interval, up
// to MaxMultiplier); when well ahead, it comes back down to 1.
type controller struct {
	at                                int64 // unix of the last update; 0 before the first
	matched, admitted, spent, blocked int64 // counters at the last update
	// Exponentially decayed sums (time constant controlDecay): matched
	// requests and the curve's mass over the same intervals give the day's
	// volume; spend and admitted requests give spend per admitted request.
	mSum, fSum, sSum, aSum float64
	supply                 float64 // matched requests per second, last estimate
	value                  float64 // spend micros per admitted request
	haveValue              bool

	plan      plan
	wasLive   bool
	countFrom int64 // counting matched requests since (state creation)
	dayNum    int64 // the day being counted
	allLive   bool  // counted from its start, live at every Tick

	target int64 // target spend so far today, at the last update
	budget int64 // effective daily budget at the last update

	lastMarket, lastDecay, lastSave int64
}

type plan struct {
	dayNum int64
	cfg    *campCfg
	budget int64
	spent  int64   // spend today when planned
	f      float64 // curve position when planned
}

// effectiveDaily is what campaign c may spend today: its daily budget, no
// more than what is left of its total, and for a campaign with only a total
// budget and an end date, the total left spread evenly over the days left.
func effectiveDaily(c *campaign.Campaign, spentToday, spentTotal, dayStart int64) int64 {
	b := int64(math.MaxInt64)
	if c.Budget.DailyMicros > 0 {
		b = c.Budget.DailyMicros
	}
	if tot := c.Budget.TotalMicros; tot > 0 {
		left := max(tot-(spentTotal-spentToday), 0)
		if c.Budget.DailyMicros == 0 && c.End != nil {
			days := (c.End.Unix() - dayStart + 86399) / 86400
			left /= max(days, 1)
		}
		b = min(b, left)
	}
	return b
}

// Tick runs the periodic work: expires reservations, rolls days over and
// learns the traffic curve, updates the pacing controllers and market
// models, flushes report counters and controller state to Pebble, and
// forgets old dedup and frequency records. The program calls it every
// second (Run does); tests call it with their own clock.
func (p *Pacer) Tick(now time.Time) {
	p.tickMu.Lock()
	defer p.tickMu.Unlock()
	unix := now.Unix()
	snap := p.camps.Snapshot()
	b := p.db.NewBatch()
	defer b.Close()
	for _, c := range snap.Campaigns {
		st, err := p.state(c, unix)
		if err != nil {
			p.log.Error("pacing: load campaign spend", "campaign", c.ID, "err", err)
			continue
		}
		p.tickCampaign(st, c, now, b)
	}
	// Campaigns deleted since the last tick: flush and drop their state.
	if states := *p.states.Load(); len(states) > len(snap.Campaigns) {
		for id, st := range states {
			if snap.ByID[id] == nil {
				p.flushHours(st, unix, b, true)
				p.dropState(id)
			}
		}
	}
	if b.Len() > 0 {
		if err := b.Commit(pebble.NoSync); err != nil {
			p.log.Error("pacing: flush", "err", err)
		}
	}
	if unix-p.lastForget >= 3600 {
		p.lastForget = unix
		p.forget(now, snap)
	}
}

func (p *Pacer) dropState(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.states.Load()
	n := make(map[string]*campState, len(old))
	for k, v := range old {
		if k != id {
			n[k] = v
		}
	}
	p.states.Store(&n)
}

func (p *Pacer) forget(now time.Time, snap *campaign.Snapshot) {
	if err := p.ledger.Forget(now.Add(-NoticeMaxAge - time.Hour).Unix()); err != nil {
		p.log.Error("pacing: forget notices", "err", err)
	}
	err := p.freq.Forget(now, func(id string) time.Duration {
		if c := snap.ByID[id]; c != nil && c.FrequencyCap.Impressions > 0 {
			return c.FrequencyCap.Per
		}
		return 0
	})
	if err != nil {
		p.log.Error("pacing: forget frequency counts", "err", err)
	}
}

func (p *Pacer) tickCampaign(st *campState, c *campaign.Campaign, now time.Time, b *pebble.Batch) {
	unix := now.Unix()
	cfg := st.config(c)
	st.roll(unix)
	st.res.maybeSweep(unix)
	live := c.LiveAt(now)
	ctl := &st.ctl

	// A new day: learn yesterday's traffic if it was counted from its start
	// to its end while the campaign was live throughout.
	num := st.dayNum.Load()
	if ctl.dayNum != num {
		if ctl.dayNum == num-1 && ctl.allLive {
			p.learn(st, ctl.dayNum, b)
		}
		ctl.dayNum, ctl.allLive = num, live
		if ctl.countFrom > st.dayStart.Load() {
			ctl.allLive = false // started mid-day
		}
	}
	if !live {
		ctl.allLive = false
	}

	interval := int64(p.o.ControlInterval / time.Second)
	if ctl.at == 0 || unix-ctl.at >= interval || ctl.plan.dayNum != num {
		p.control(st, c, cfg, unix, live)
	}
	if unix-ctl.lastMarket >= interval {
		ctl.lastMarket = unix
		decay := unix-ctl.lastDecay >= 3600
		if decay {
			ctl.lastDecay = unix
		}
		st.market.rebuild(decay)
	}
	// Sample the pacing state into the hour's report.
	s := st.slot(unix)
	addFloat(&s.thrSum, st.throttleValue())
	addFloat(&s.multSum, st.multiplier())
	s.samples.Add(1)
	if unix-ctl.lastSave >= 10 {
		ctl.lastSave = unix
		p.saveVolatile(st, unix, b)
		p.flushHours(st, unix, b, false)
	}
}

// control updates one campaign's throttle and multiplier.
func (p *Pacer) control(st *campState, c *campaign.Campaign, cfg *campCfg, unix int64, live bool) {
	ctl := &st.ctl
	matched, admitted, spent, blocked := st.matched.Load(), st.admitted.Load(), st.spentTotal.Load(), st.blocked.Load()
	first := ctl.at == 0
	dt := float64(unix - ctl.at)
	dM, dA, dS, dB := matched-ctl.matched, admitted-ctl.admitted, spent-ctl.spent, blocked-ctl.blocked
	ctl.at, ctl.matched, ctl.admitted, ctl.spent, ctl.blocked = unix, matched, admitted, spent, blocked
	spentDay := st.spentDay.Load()
	dayStart, dayEnd := st.dayStart.Load(), st.dayEnd.Load()
	ctl.budget = effectiveDaily(c, spentDay, spent, dayStart)
	if !cfg.even {
		st.setThrottle(1)
		st.mult.Store(math.Float64bits(1))
		ctl.target = 0
		ctl.wasLive = live
		return
	}
	curve := st.curve.Load()
	B := ctl.budget
	pos := float64(unix - dayStart)
	if !first && dt > 0 {
		d := math.Exp(-dt / controlDecay)
		// The day's volume: requests seen over the curve mass they came in.
		if mass := curve.at(pos) - curve.at(pos-dt); mass > 0 {
			ctl.mSum = ctl.mSum*d + float64(dM)
			ctl.fSum = ctl.fSum*d + mass
		}
		// Spend per admitted request, from intervals the budget did not cut short.
		if dB == 0 && dS >= 0 && live {
			ctl.sSum = ctl.sSum*d + float64(dS)
			ctl.aSum = ctl.aSum*d + float64(dA)
			if ctl.aSum >= 20 {
				ctl.value, ctl.haveValue = ctl.sSum/ctl.aSum, true
			}
		}
	}
	num := st.dayNum.Load()
	if ctl.plan.dayNum != num || ctl.plan.budget != B || ctl.plan.cfg != cfg || (live && !ctl.wasLive) {
		ctl.plan = plan{dayNum: num, cfg: cfg, budget: B, spent: spentDay, f: curve.at(pos)}
	}
	ctl.wasLive = live
	pl := ctl.plan
	target := func(sec float64) float64 {
		if B == math.MaxInt64 {
			return math.Inf(1)
		}
		if pl.f >= 1-1e-9 {
			return float64(B)
		}
		f := curve.at(sec)
		return float64(pl.spent) + float64(B-pl.spent)*max(f-pl.f, 0)/(1-pl.f)
	}
	T := float64(p.o.ControlInterval / time.Second)
	tNow, tNext := target(pos), target(pos+T)
	ctl.target = int64(min(tNow, float64(math.MaxInt64/2)))
	if math.IsInf(tNow, 1) {
		st.setThrottle(1)
		return
	}
	gap := tNow - float64(spentDay)
	horizon := max(T, min(float64(p.o.CatchUp/time.Second), float64(dayEnd-unix)))
	desired := (tNext - tNow) + gap*T/horizon
	thr := 1.0
	switch {
	case desired <= 0:
		thr = 0
	case ctl.haveValue && ctl.value > 0 && ctl.fSum > 0 && ctl.mSum > 0:
		expected := ctl.mSum / ctl.fSum * (curve.at(pos+T) - curve.at(pos)) // requests next interval
		ctl.supply = expected / T
		thr = desired / (expected * ctl.value)
	}
	mult := st.multiplier()
	switch {
	case thr > 1 && gap > 0:
		mult = min(mult*1.1, p.o.MaxMultiplier)
	case thr < 0.8 && mult > 1:
		mult = max(mult/1.1, 1)
	}
	st.setThrottle(thr)
	st.mult.Store(math.Float64bits(mult))
}

// learn folds the minute counts of day num into the campaign's curve and stores it.
func (p *Pacer) learn(st *campState, num int64, b *pebble.Batch) {
	arr := &st.minutes[num&1]
	counts := make([]int64, dayMinutesMax)
	var total int64
	for i := range counts {
		counts[i] = int64(arr[i].Load())
		total += counts[i]
	}
	// Days of a daylight-saving change (counts past minute 1440, or the
	// last hour empty on a 23-hour day) are skipped, as are thin days.
	for _, n := range counts[minutesPerDay:] {
		if n != 0 {
			return
		}
	}
	if total < 1000 {
		return
	}
	cv := st.curve.Load().learn(counts)
	st.curve.Store(cv)
	_ = b.Set(curveKey(st.id), cv.encode(), nil)
}

// Volatile state: what a restart would otherwise forget. Reservations are
// in memory; every 10 s Tick saves their total, and a restart within
// ReserveTTL restores it as one reservation expiring when the newest of
// them would have, so bids still in flight at the restart keep counting
// against the budget. The controller's throttle, multiplier and estimates
// come back too, so an even campaign does not restart at full throttle.
func (p *Pacer) saveVolatile(st *campState, unix int64, b *pebble.Batch) {
	v := make([]byte, 0, 48)
	v = binary.BigEndian.AppendUint64(v, uint64(unix))
	v = binary.BigEndian.AppendUint64(v, uint64(st.res.total.Load()))
	for _, f := range []float64{st.throttleValue(), st.multiplier(), st.ctl.value, st.ctl.supply} {
		v = binary.BigEndian.AppendUint64(v, math.Float64bits(f))
	}
	_ = b.Set(volatileKey(st.id), v, nil)
}

func (p *Pacer) loadVolatile(st *campState, now int64) {
	v, err := store.Get(p.db, volatileKey(st.id))
	if err != nil || len(v) != 48 {
		return
	}
	at := int64(binary.BigEndian.Uint64(v))
	st.res.restore(int64(binary.BigEndian.Uint64(v[8:])), at, now)
	if now-at > 3600 || at > now {
		return
	}
	f := func(i int) float64 { return math.Float64frombits(binary.BigEndian.Uint64(v[16+8*i:])) }
	thr, mult, value, supply := f(0), f(1), f(2), f(3)
	if thr >= 0 && thr <= 1 {
		st.setThrottle(thr)
	}
	if mult >= 1 && mult <= 10 {
		st.mult.Store(math.Float64bits(mult))
	}
	if value > 0 && !math.IsInf(value, 0) {
		st.ctl.value, st.ctl.haveValue = value, true
	}
	if supply > 0 && !math.IsInf(supply, 0) {
		st.ctl.supply = supply
	}
}
