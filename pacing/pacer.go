package pacing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/store"
)

// No-bid reasons Admit and Quote return (metric label values).
const (
	ReasonBudget    = "budget"        // daily or total budget spent or reserved
	ReasonPaced     = "paced"         // even pacing held this request back
	ReasonFrequency = "frequency_cap" // the user has seen the campaign often enough
	ReasonFloor     = "below_floor"   // the floor is above the max CPM
	ReasonCurrency  = "currency"      // the floor's currency cannot be converted
	ReasonError     = "pacing_error"  // spend could not be read: no bid rather than a blind one
)

// Notice errors.
var (
	ErrPriceAboveBid   = errors.New("pacing: clearing price above the bid")
	ErrBadPrice        = errors.New("pacing: missing or malformed price")
	ErrUnknownCampaign = errors.New("pacing: unknown campaign")
	ErrDuplicate       = errors.New("pacing: duplicate notice")
	ErrExpired         = errors.New("pacing: notice outside its validity window")
	ErrBadKind         = errors.New("pacing: unknown notice kind")
)

// NoticeMaxAge is how long after a bid its notices are accepted.
const NoticeMaxAge = 24 * time.Hour

// CampaignSource gives the current campaigns; *campaign.Store is one.
type CampaignSource interface {
	Snapshot() *campaign.Snapshot
}

// Options configure a Pacer. Zero values take the stated defaults.
type Options struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Ledger records spend. Default NewPebbleLedger(db).
	Ledger Ledger
	// Frequency counts impressions for caps. Default OpenPebbleFrequency(db).
	Frequency Frequency
	// ReserveTTL is how long a bid's reservation waits for a win, loss or
	// billing notice before it is released. Default 2m.
	ReserveTTL time.Duration
	// ControlInterval is how often even pacing recomputes its throttle and
	// bid multiplier. Default 1m.
	ControlInterval time.Duration
	// CatchUp is the time over which an even campaign makes up for being
	// behind (or ahead of) its target curve. Default 5m: short enough that
	// every hour tracks the curve, long enough not to chase noise.
	CatchUp time.Duration
	// MaxMultiplier bounds the bid multiplier even pacing applies when
	// bidding on every matched request is not enough. Default 1.5; the
	// price never exceeds the campaign's max CPM.
	MaxMultiplier float64
	// Price adjusts the base CPM. Defaults: see PriceConfig.
	Price PriceConfig
	// Rates convert floors to the campaign currency. Default DefaultRates.
	Rates Rates
	// DefaultCurve is the traffic shape even pacing assumes until it has
	// learned a full day: 24 hourly weights in the campaign's time zone.
	// Default flat.
	DefaultCurve []float64
}

func (o *Options) setDefaults() error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReserveTTL == 0 {
		o.ReserveTTL = 2 * time.Minute
	}
	if o.ControlInterval == 0 {
		o.ControlInterval = time.Minute
	}
	if o.CatchUp == 0 {
		o.CatchUp = 5 * time.Minute
	}
	if o.MaxMultiplier == 0 {
		o.MaxMultiplier = 1.5
	}
	if o.Rates == nil {
		o.Rates = DefaultRates
	}
	pc := &o.Price
	if pc.Lookalike == 0 {
		pc.Lookalike = 0.7
	}
	if pc.Recency == nil {
		pc.Recency = []RecencyStep{{time.Hour, 1.5}, {24 * time.Hour, 1.25}, {7 * 24 * time.Hour, 1.0}}
	}
	if pc.Stale == 0 {
		pc.Stale = 0.8
	}
	if pc.MinShade == 0 {
		pc.MinShade = 0.5
	}
	switch {
	case o.ReserveTTL < time.Second || o.ReserveTTL > time.Hour:
		return errors.New("pacing: ReserveTTL must be between 1s and 1h")
	case o.ControlInterval < time.Second:
		return errors.New("pacing: ControlInterval must be at least 1s")
	case o.CatchUp < o.ControlInterval:
		return errors.New("pacing: CatchUp must be at least ControlInterval")
	case !(o.MaxMultiplier >= 1 && o.MaxMultiplier <= 10):
		return errors.New("pacing: MaxMultiplier must be between 1 and 10")
	case !validMult(pc.Lookalike) || !validMult(pc.Stale):
		return errors.New("pacing: price multipliers must be in (0, 10]")
	case !(pc.MinShade > 0 && pc.MinShade <= 1):
		return errors.New("pacing: MinShade must be in (0, 1]")
	}
	for _, s := range pc.Recency {
		if !validMult(s.Mult) || s.Within <= 0 {
			return errors.New("pacing: recency steps need a positive window and a multiplier in (0, 10]")
		}
	}
	return nil
}

func validMult(f float64) bool { return f > 0 && f <= 10 }

// Pacer owns money and frequency for every campaign: it admits or holds back
// bid requests (budget, frequency cap, even pacing), prices bids, reserves
// what a bid may cost, applies win, billing, loss and impression notices to
// the spend ledger, runs the pacing controller and keeps the hourly reports.
//
// The bid path (Admit, Handle.Quote, Handle.Reserve) takes no locks held by
// anything slow and does not allocate; notices and Tick do the rest.
type Pacer struct {
	db     *pebble.DB
	signer *Signer
	camps  CampaignSource
	o      Options
	log    *slog.Logger
	ledger Ledger
	freq   Frequency
	curve0 *trafficCurve
	rates  atomic.Pointer[Rates]

	states atomic.Pointer[map[string]*campState]
	mu     sync.Mutex // creates states

	tickMu     sync.Mutex // serialises Tick, guards controller state
	lastForget int64
}

// New returns a Pacer over db. signer verifies notice tokens; camps gives
// the campaigns notices and Tick refer to.
func New(db *pebble.DB, signer *Signer, camps CampaignSource, o Options) (*Pacer, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	if db == nil || signer == nil || camps == nil {
		return nil, errors.New("pacing: New needs a database, a signer and a campaign source")
	}
	c0, err := curveFromHours(o.DefaultCurve)
	if err != nil {
		return nil, err
	}
	p := &Pacer{db: db, signer: signer, camps: camps, o: o, log: o.Logger, ledger: o.Ledger, freq: o.Frequency, curve0: c0}
	if p.ledger == nil {
		p.ledger = NewPebbleLedger(db)
	}
	if p.freq == nil {
		f, err := OpenPebbleFrequency(db)
		if err != nil {
			return nil, err
		}
		p.freq = f
	}
	m := map[string]*campState{}
	p.states.Store(&m)
	p.SetRates(o.Rates)
	return p, nil
}

// campCfg is what the pacer derives from one version of a campaign.
type campCfg struct {
	c      *campaign.Campaign
	loc    *time.Location
	even   bool
	capN   int
	capPer time.Duration
}

// campState is one campaign's pacing state. Fields the bid path reads are
// atomics; the controller's are guarded by Pacer.tickMu.
type campState struct {
	id  string
	p   *Pacer
	cfg atomic.Pointer[campCfg]

	// Today, in the campaign's time zone.
	rollMu   sync.RWMutex // day rollover vs notices adding to spentDay
	day      atomic.Int64 // yyyymmdd
	dayNum   atomic.Int64 // days since 1970-01-01 of the local date
	dayStart atomic.Int64 // unix
	dayEnd   atomic.Int64 // unix

	spentDay   atomic.Int64 // micros, bid day == day
	spentTotal atomic.Int64 // micros
	res        *reservations

	throttle atomic.Uint64 // admit when a random uint64 is below; MaxUint64 = always
	mult     atomic.Uint64 // float64 bits of the bid multiplier

	matched, admitted, bids atomic.Int64 // since start, for the controller
	blocked                 atomic.Int64 // admitted requests the budget then refused

	minutes [2][dayMinutesMax]atomic.Int32 // matched requests per local minute, by day parity
	curve   atomic.Pointer[trafficCurve]

	slotMu sync.Mutex
	hours  [4]hourSlot

	market market
	ctl    controller
}

const always = math.MaxUint64

func (st *campState) setThrottle(f float64) {
	switch {
	case f >= 1:
		st.throttle.Store(always)
	case f <= 0:
		st.throttle.Store(0)
	default:
		st.throttle.Store(uint64(f * (1 << 64)))
	}
}

func (st *campState) throttleValue() float64 {
	t := st.throttle.Load()
	if t == always {
		return 1
	}
	return float64(t) / (1 << 64)
}

func (st *campState) multiplier() float64 { return math.Float64frombits(st.mult.Load()) }

// Pebble keys of the pacer (the ledger's are in ledger.go):
//
//	pac/c/<cmp>                  learned traffic curve
//	pac/v/<cmp>                  reservations and controller state (Tick)
//	pac/r/<cmp>/<hour, 8 bytes>  hourly bid-path counters and pacing state
func curveKey(cmp string) []byte     { return []byte(store.PrefixPacing + "c/" + cmp) }
func volatileKey(cmp string) []byte  { return []byte(store.PrefixPacing + "v/" + cmp) }
func reportPrefix(cmp string) []byte { return []byte(store.PrefixPacing + "r/" + cmp + "/") }

// dayBounds returns the local date of unix in loc (yyyymmdd and days since
// the epoch) and the unix bounds of that day.
func dayBounds(unix int64, loc *time.Location) (day, num, start, end int64) {
	t := time.Unix(unix, 0).In(loc)
	y, m, d := t.Date()
	s := time.Date(y, m, d, 0, 0, 0, 0, loc).Unix()
	e := time.Date(y, m, d+1, 0, 0, 0, 0, loc).Unix()
	n := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
	return int64(y*10000 + int(m)*100 + d), n, s, e
}

func dayOfUnix(unix int64, loc *time.Location) int64 {
	y, m, d := time.Unix(unix, 0).In(loc).Date()
	return int64(y*10000 + int(m)*100 + d)
}

func dayOfUnixUTC(unix int64) int64 { return dayOfUnix(unix, time.UTC) }

// state returns the campaign's state, creating it (reading its spend from
// the ledger) on first use.
func (p *Pacer) state(c *campaign.Campaign, now int64) (*campState, error) {
	if st := (*p.states.Load())[c.ID]; st != nil {
		return st, nil
	}
	return p.createState(c, now)
}

func (p *Pacer) createState(c *campaign.Campaign, now int64) (*campState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.states.Load()
	if st := old[c.ID]; st != nil {
		return st, nil
	}
	st := &campState{id: c.ID, p: p, res: newReservations(int64(p.o.ReserveTTL / time.Second))}
	cfg := st.config(c)
	day, num, start, end := dayBounds(now, cfg.loc)
	d, t, err := p.ledger.Spent(c.ID, day)
	if err != nil {
		return nil, err
	}
	st.spentDay.Store(d)
	st.spentTotal.Store(t)
	st.day.Store(day)
	st.dayNum.Store(num)
	st.dayStart.Store(start)
	st.dayEnd.Store(end)
	st.setThrottle(1)
	st.mult.Store(math.Float64bits(1))
	st.curve.Store(p.curve0)
	if v, err := store.Get(p.db, curveKey(c.ID)); err == nil {
		if cv, err := decodeCurve(v); err == nil {
			st.curve.Store(cv)
		} else {
			p.log.Warn("pacing: ignoring stored traffic curve", "campaign", c.ID, "err", err)
		}
	}
	p.loadVolatile(st, now)
	p.loadHour(st, now/3600)
	st.ctl.countFrom = now
	n := make(map[string]*campState, len(old)+1)
	for k, v := range old {
		n[k] = v
	}
	n[c.ID] = st
	p.states.Store(&n)
	return st, nil
}

// config returns the derived config of campaign version c.
func (st *campState) config(c *campaign.Campaign) *campCfg {
	cfg := st.cfg.Load()
	if cfg != nil && cfg.c == c {
		return cfg
	}
	n := &campCfg{c: c, loc: c.Location(), even: c.Pacing == campaign.PacingEven,
		capN: c.FrequencyCap.Impressions, capPer: c.FrequencyCap.Per}
	if n.capN > 0 && n.capPer <= 0 {
		n.capN = 0
	}
	st.cfg.Store(n)
	if cfg != nil && cfg.loc.String() != n.loc.String() {
		st.dayEnd.Store(0) // time zone changed: recompute the day
	}
	return n
}

// roll moves the campaign to the day of unix when it has ended.
func (st *campState) roll(unix int64) {
	if unix >= st.dayStart.Load() && unix < st.dayEnd.Load() {
		return
	}
	st.rollSlow(unix)
}

func (st *campState) rollSlow(unix int64) {
	st.rollMu.Lock()
	defer st.rollMu.Unlock()
	if unix >= st.dayStart.Load() && unix < st.dayEnd.Load() {
		return
	}
	cfg := st.cfg.Load()
	day, num, start, end := dayBounds(unix, cfg.loc)
	if num < st.dayNum.Load() {
		return // the clock stepped back over midnight: stay on the later day
	}
	d, _, err := st.p.ledger.Spent(st.id, day)
	if err != nil {
		st.p.log.Error("pacing: read day spend", "campaign", st.id, "err", err)
		d = math.MaxInt64 / 4 // unknown: hold bids until Tick retries
		end = start + 1
	}
	if num != st.dayNum.Load() {
		for i := range st.minutes[num&1] {
			st.minutes[num&1][i].Store(0)
		}
	}
	st.spentDay.Store(d)
	st.day.Store(day)
	st.dayNum.Store(num)
	st.dayStart.Store(start)
	st.dayEnd.Store(end)
}

// left returns how many micros the campaign may still commit: the smaller of
// daily and total budget minus spend and outstanding reservations.
func (st *campState) left(c *campaign.Campaign) int64 {
	r := st.res.total.Load()
	left := int64(math.MaxInt64)
	if b := c.Budget.DailyMicros; b > 0 {
		left = b - st.spentDay.Load() - r
	}
	if b := c.Budget.TotalMicros; b > 0 {
		left = min(left, b-st.spentTotal.Load()-r)
	}
	return left
}

// fits reports whether reservations totalling r fit both budgets.
func (st *campState) fits(c *campaign.Campaign, r int64) bool {
	if b := c.Budget.DailyMicros; b > 0 && st.spentDay.Load()+r > b {
		return false
	}
	if b := c.Budget.TotalMicros; b > 0 && st.spentTotal.Load()+r > b {
		return false
	}
	return true
}

// Handle is one campaign's pacing state for one bid decision, from Admit.
type Handle struct {
	st  *campState
	cfg *campCfg
}

// Valid reports whether h came from a successful Admit.
func (h Handle) Valid() bool { return h.st != nil }

// Admit decides whether campaign c, whose audience matched user, may bid on
// this request now: budget left (spend plus reservations), frequency cap,
// and for even pacing the controller's throttle. It counts the request as
// matched for the traffic curve and the report. An empty reason means yes.
func (p *Pacer) Admit(c *campaign.Campaign, user [16]byte, now time.Time) (Handle, string) {
	unix := now.Unix()
	st, err := p.state(c, unix)
	if err != nil {
		p.log.Error("pacing: load campaign spend", "campaign", c.ID, "err", err)
		return Handle{}, ReasonError
	}
	cfg := st.config(c)
	st.roll(unix)
	st.matched.Add(1)
	st.slot(unix).matched.Add(1)
	if m := (unix - st.dayStart.Load()) / 60; m >= 0 && m < dayMinutesMax {
		st.minutes[st.dayNum.Load()&1][m].Add(1)
	}
	if st.left(c) <= 0 {
		return Handle{}, ReasonBudget
	}
	if cfg.capN > 0 && p.freq.Count(c.ID, user, cfg.capPer, now) >= cfg.capN {
		return Handle{}, ReasonFrequency
	}
	if t := st.throttle.Load(); t != always && rand.Uint64() >= t {
		return Handle{}, ReasonPaced
	}
	st.admitted.Add(1)
	return Handle{st: st, cfg: cfg}, ""
}

// Reserve holds what one impression at price (CPM micros) costs against
// the budget until its notice settles it or ReserveTTL passes. It fails,
// changing nothing, when the budget cannot take it; so however many bids
// race, spend plus reservations never exceed the budget. Call it once per
// bid placed, with the time put in the bid's token.
func (h Handle) Reserve(price int64, firstPrice bool, now time.Time) bool {
	st, c := h.st, h.cfg.c
	unix := now.Unix()
	if !st.res.tryReserve(impCost(price), unix, func(r int64) bool { return st.fits(c, r) }) {
		st.blocked.Add(1)
		return false
	}
	st.bids.Add(1)
	st.slot(unix).bids.Add(1)
	if firstPrice {
		st.market.bid(price)
	}
	return true
}

// NoticeResult says what a notice did.
type NoticeResult struct {
	Token    Token
	Spent    int64 // micros added to spend
	Released bool  // the bid's reservation was released
}

// Notice applies a win, billing, loss or impression notice. price is the
// clearing price in CPM micros (${AUCTION_PRICE}; required for win and
// billing, else pass −1); minToWin is ${AUCTION_MIN_TO_WIN} or −1. Spend
// moves at most once per auction, only on a valid signature and a price no
// higher than the bid, and is durable when Notice returns for win and
// billing notices. A repeated notice returns ErrDuplicate and changes nothing.
func (p *Pacer) Notice(kind string, token []byte, price, minToWin int64) (NoticeResult, error) {
	var res NoticeResult
	if _, ok := kindFlag(kind); !ok {
		return res, ErrBadKind
	}
	t, err := p.signer.ParseBytes(token)
	if err != nil {
		return res, err
	}
	res.Token = t
	money := kind == NoticeWin || kind == NoticeBill
	if money {
		if price < 0 {
			return res, ErrBadPrice
		}
		if price > t.BidMicros {
			return res, ErrPriceAboveBid
		}
	}
	now := p.o.Now()
	unix := now.Unix()
	if unix-t.Unix > int64(NoticeMaxAge/time.Second) || t.Unix > unix+60 {
		return res, ErrExpired
	}
	c := p.camps.Snapshot().ByID[t.Campaign]
	if c == nil {
		return res, ErrUnknownCampaign
	}
	// The state exists before the ledger moves, so its spend mirror either
	// loaded the ledger before this notice or gets this notice's add.
	st, err := p.state(c, unix)
	if err != nil {
		return res, fmt.Errorf("pacing: %s notice: %w", kind, err)
	}
	cfg := st.config(c)
	e := Entry{Kind: kind, Auction: AuctionKey(&t), Campaign: c.ID, BidUnix: t.Unix,
		Day: dayOfUnix(t.Unix, cfg.loc), Sync: money, Now: unix}
	if money {
		e.Cost = impCost(price)
	}
	a, err := p.ledger.Apply(&e)
	if err != nil {
		return res, fmt.Errorf("pacing: %s notice: %w", kind, err)
	}
	if a.Duplicate {
		return res, ErrDuplicate
	}
	if a.Spent > 0 {
		st.rollMu.RLock()
		if e.Day == st.day.Load() {
			st.spentDay.Add(a.Spent)
		}
		st.spentTotal.Add(a.Spent)
		st.rollMu.RUnlock()
		res.Spent = a.Spent
	}
	// Spend first, then release: the budget check never sees neither.
	if !a.Settled {
		res.Released = st.res.release(impCost(t.BidMicros), t.Unix, unix)
	}
	if t.FirstPrice {
		if money && !a.Settled {
			st.market.win(t.BidMicros)
		}
		if minToWin > 0 && !a.Settled {
			st.market.minToWin(minToWin)
		}
	}
	if a.FirstDelivery && cfg.capN > 0 {
		if err := p.freq.Record(c.ID, t.User, time.Unix(t.Unix, 0)); err != nil {
			p.log.Error("pacing: record frequency", "campaign", c.ID, "err", err)
		}
	}
	return res, nil
}

// Click counts a click on campaign id's ad for its report.
func (p *Pacer) Click(id string, now time.Time) {
	c := p.camps.Snapshot().ByID[id]
	if c == nil {
		return
	}
	if st, err := p.state(c, now.Unix()); err == nil {
		st.slot(now.Unix()).clicks.Add(1)
	}
}

// EraseUser forgets what pacing keeps about one pseudonymous person: their
// frequency counts. Spend records and reports hold no user ids; notice
// tokens carry the pseudonym but are not stored.
func (p *Pacer) EraseUser(user [16]byte) error { return p.freq.Erase(user) }

// Spend returns campaign c's spend today (in its time zone) and in total, micros.
func (p *Pacer) Spend(c *campaign.Campaign) (today, total int64) {
	c = p.canonical(c)
	unix := p.o.Now().Unix()
	st, err := p.state(c, unix)
	if err != nil {
		p.log.Error("pacing: load campaign spend", "campaign", c.ID, "err", err)
		return 0, 0
	}
	st.config(c)
	st.roll(unix)
	return st.spentDay.Load(), st.spentTotal.Load()
}

// SetRates replaces the exchange rate table (units per USD).
func (p *Pacer) SetRates(r Rates) {
	if r == nil {
		r = DefaultRates
	}
	p.rates.Store(&r)
}

// canonical returns the snapshot's version of c when c is a copy (the
// admin API's), so state is keyed on the same pointer the bid path uses.
func (p *Pacer) canonical(c *campaign.Campaign) *campaign.Campaign {
	if sc := p.camps.Snapshot().ByID[c.ID]; sc != nil {
		return sc
	}
	return c
}

// Run calls Tick every second until ctx ends, then flushes.
func (p *Pacer) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.Flush()
			return
		case <-t.C:
			p.Tick(p.o.Now())
		}
	}
}
