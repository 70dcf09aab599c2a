package pacing

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/campaign"
)

// The pacing simulator: whole days of synthetic bid traffic for one
// campaign, with a daily traffic curve, an auction model and notices that
// come late, twice or never, through the real Pacer and Pebble ledger (on
// an in-memory file system) with an injected clock. A day runs in well
// under a second.

// dayShape is matched requests per minute, relative, by local hour: a
// quiet night, a lunch peak and a bigger evening one.
func dayShape(hour float64) float64 {
	g := func(mu, sd, a float64) float64 { d := (hour - mu) / sd; return a * math.Exp(-d*d/2) }
	return 0.15 + g(9, 1.5, 0.5) + g(12.5, 1.8, 1.0) + g(21.5, 1.8, 1.5)
}

type simConfig struct {
	days        int
	tz          string
	pacing      string
	budget      float64 // daily, currency units
	baseCPM     float64
	maxCPM      float64
	reqPerDay   float64 // matched requests per day
	medianOther float64 // the market's highest other bid, CPM (log-normal)
	sigmaOther  float64
	firstPrice  bool
	mtwShare    float64 // share of notices carrying ${AUCTION_MIN_TO_WIN}
	lossShare   float64 // share of lost auctions with a loss notice
	silentWins  float64 // share of wins whose notice never comes
	dupShare    float64 // share of notices sent twice
	seed        uint64
	// at is called at the start of every simulated second.
	at func(day int, sec int, s *simRun)
	// opts configure the Pacer (clock and logger are the simulator's).
	opts Options
}

type simDay struct {
	spend, wins, bids, matched int64
	hourSpend                  [24]int64
	hourMatched                [24]int64
	hourBids                   [24]int64
	maxPrice                   int64 // highest bid placed
	paidSum                    float64
	valueSum                   float64
}

type simRun struct {
	e    *env
	cfg  simConfig
	c    *campaign.Campaign
	days []simDay
}

type simNotice struct {
	kind      string
	tok       []byte
	price     int64
	mtw       int64
	dayOfBid  int
	hourOfBid int
}

func runSim(t testing.TB, cfg simConfig) *simRun {
	t.Helper()
	loc, err := time.LoadLocation(cfg.tz)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, loc)
	c := testCampaign("cmp_sim", cfg.pacing)
	c.Timezone = cfg.tz
	c.Budget = campaign.Budget{DailyMicros: campaign.Micros(cfg.budget)}
	c.Bid = campaign.Bid{BaseCPMMicros: campaign.Micros(cfg.baseCPM), MaxCPMMicros: campaign.Micros(cfg.maxCPM)}
	e := newMemEnv(t, start, cfg.opts, c)
	s := &simRun{e: e, cfg: cfg, c: e.camps.get(c.ID), days: make([]simDay, cfg.days)}
	r := rand.New(rand.NewPCG(cfg.seed, 42))

	// Per-minute request rates following dayShape, normalised to reqPerDay.
	var rate [minutesPerDay]float64
	sum := 0.0
	for m := range rate {
		rate[m] = dayShape(float64(m) / 60)
		sum += rate[m]
	}
	for m := range rate {
		rate[m] *= cfg.reqPerDay / sum / 60 // per second
	}
	// Notices due in the next 16 s, by second.
	var due [16][]simNotice
	auction := 0
	for day := 0; day < cfg.days; day++ {
		d := &s.days[day]
		for sec := 0; sec < 86400; sec++ {
			now := start.AddDate(0, 0, day).Add(time.Duration(sec) * time.Second)
			e.clock.Set(now)
			if cfg.at != nil {
				cfg.at(day, sec, s)
			}
			for _, n := range due[sec%16] {
				res, err := e.p.Notice(n.kind, n.tok, n.price, n.mtw)
				if err != nil && err != ErrDuplicate {
					t.Fatalf("%s notice: %v", n.kind, err)
				}
				if res.Spent > 0 {
					bd := &s.days[n.dayOfBid]
					bd.spend += res.Spent
					bd.hourSpend[n.hourOfBid] += res.Spent
					bd.wins++
				}
			}
			due[sec%16] = due[sec%16][:0]
			c := e.camps.get("cmp_sim")
			n := poisson(r, rate[sec/60])
			for i := 0; i < n; i++ {
				d.matched++
				d.hourMatched[sec/3600]++
				if !c.LiveAt(now) {
					continue
				}
				user := [16]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
				h, why := e.p.Admit(c, user, now)
				if why != "" {
					continue
				}
				q := Quote{FirstPrice: cfg.firstPrice}
				price, why := h.Quote(q)
				if why != "" || !h.Reserve(price, cfg.firstPrice, now) {
					continue
				}
				d.bids++
				d.hourBids[sec/3600]++
				d.maxPrice = max(d.maxPrice, price)
				auction++
				tok := Token{Campaign: c.ID, AuctionID: fmt.Sprint("a", auction), ImpID: "1", BidMicros: price, Unix: now.Unix(), User: user, FirstPrice: cfg.firstPrice}
				enc := e.signer.Append(nil, &tok)
				other := int64(float64(campaign.Micros(cfg.medianOther)) * math.Exp(cfg.sigmaOther*r.NormFloat64()))
				mtw := int64(-1)
				if r.Float64() < cfg.mtwShare {
					mtw = other + 10_000 // exchanges report the price that would have won
				}
				delay := 1 + r.IntN(8)
				won := price > other
				var ns []simNotice
				switch {
				case won && r.Float64() < cfg.silentWins:
				case won:
					paid := other // second price
					if cfg.firstPrice {
						paid = price
					}
					d.paidSum += float64(paid)
					d.valueSum += float64(campaign.Micros(cfg.baseCPM))
					ns = append(ns, simNotice{kind: NoticeWin, tok: enc, price: paid, mtw: mtw, dayOfBid: day, hourOfBid: sec / 3600})
					ns = append(ns, simNotice{kind: NoticeImp, tok: enc, price: -1, mtw: -1, dayOfBid: day, hourOfBid: sec / 3600})
				case r.Float64() < cfg.lossShare:
					ns = append(ns, simNotice{kind: NoticeLoss, tok: enc, price: -1, mtw: mtw, dayOfBid: day, hourOfBid: sec / 3600})
				}
				for _, sn := range ns {
					due[(sec+delay)%16] = append(due[(sec+delay)%16], sn)
					if r.Float64() < cfg.dupShare {
						due[(sec+delay+1+r.IntN(5))%16] = append(due[(sec+delay+1+r.IntN(5))%16], sn)
					}
				}
			}
			e.p.Tick(now)
		}
	}
	return s
}

// poisson draws from a Poisson distribution (Knuth; λ is small here).
func poisson(r *rand.Rand, lambda float64) int {
	if lambda > 30 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// hourShares is each local hour's share of the day's traffic.
func hourShares() [24]float64 {
	var h [24]float64
	sum := 0.0
	for m := 0; m < minutesPerDay; m++ {
		v := dayShape(float64(m) / 60)
		h[m/60] += v
		sum += v
	}
	for i := range h {
		h[i] /= sum
	}
	return h
}

// report describes a simulated day for logs and BENCHMARKS.md.
func (s *simRun) report(day int, budget int64) string {
	d := &s.days[day]
	shares := hourShares()
	var b strings.Builder
	worst, worstHour := 0.0, 0
	for h := 0; h < 24; h++ {
		target := shares[h] * float64(budget)
		dev := (float64(d.hourSpend[h]) - target) / target
		if math.Abs(dev) > math.Abs(worst) {
			worst, worstHour = dev, h
		}
	}
	fmt.Fprintf(&b, "day %d: spent %.2f%% of %.2f (%d wins of %d bids, %d matched); worst hour %02d at %+.1f%% of its target",
		day+1, 100*float64(d.spend)/float64(budget), campaign.Units(budget), d.wins, d.bids, d.matched, worstHour, 100*worst)
	return b.String()
}

func (s *simRun) hourDeviations(day int, budget int64) []float64 {
	shares := hourShares()
	out := make([]float64, 24)
	for h := range out {
		target := shares[h] * float64(budget)
		out[h] = (float64(s.days[day].hourSpend[h]) - target) / target
	}
	return out
}

// simDefaults: a $40 daily budget against about three times as much
// supply. Under the race detector or -short the volume shrinks fivefold
// (hourly spend is then too noisy to judge, see quick).
func simDefaults() simConfig {
	c := simConfig{days: 3, tz: "Asia/Seoul", pacing: campaign.PacingEven, budget: 40, baseCPM: 2, maxCPM: 4,
		reqPerDay: 120_000, medianOther: 1.8, sigmaOther: 0.35, lossShare: 0.5, silentWins: 0.002, dupShare: 0.05, seed: 1}
	if quick() {
		c.days, c.budget, c.reqPerDay = 2, 8, 24_000
	}
	return c
}

// quick reports whether simulations run at reduced volume.
func quick() bool { return raceEnabled || testing.Short() }

// checkDelivered asserts a day's spend is 98–100 % of budget and never over
// by more than one impression's price.
func checkDelivered(t *testing.T, s *simRun, day int, budget int64) {
	t.Helper()
	d := &s.days[day]
	if over := d.spend - budget; over > impCost(d.maxPrice) {
		t.Errorf("day %d: over budget by %d micros (one impression is at most %d)", day+1, over, impCost(d.maxPrice))
	}
	if f := float64(d.spend) / float64(budget); f < 0.98 {
		t.Errorf("day %d: delivered %.2f%% of the budget, want ≥ 98%%", day+1, 100*f)
	}
}

// TestPacingSimEven: three days; the curve is learned on day 1, after
// which every hour's spend is within 10 % of the budget spread over the
// day's traffic.
func TestPacingSimEven(t *testing.T) {
	cfg := simDefaults()
	s := runSim(t, cfg)
	budget := campaign.Micros(cfg.budget)
	for day := range s.days {
		t.Log(s.report(day, budget))
		checkDelivered(t, s, day, budget)
	}
	// Hourly spend against the target curve (budget × the hour's share of
	// the day's traffic), once the curve is learned. Hours of the night
	// carry about 1 % of the day, some 250 wins here, so Poisson noise
	// alone is ±6 %: they are held to 15 %, the others to 10 % (over ten
	// seeds the worst hour of all was 9.9 %; see BENCHMARKS.md).
	shares := hourShares()
	for day := 1; day < cfg.days && !quick(); day++ {
		for h, dev := range s.hourDeviations(day, budget) {
			if tol := map[bool]float64{true: 0.10, false: 0.15}[shares[h] >= 0.025]; math.Abs(dev) > tol {
				t.Errorf("day %d hour %02d (%.1f%% of traffic): spend %+.1f%% off the target curve", day+1, h, 100*shares[h], 100*dev)
			}
		}
	}
	rows, err := s.e.p.Report("cmp_sim", s.e.clock.Now().Add(-24*time.Hour), s.e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	var spend int64
	for _, r := range rows {
		spend += r.SpendMicros
		if r.Matched > 0 && (r.Throttle < 0 || r.Throttle > 1 || r.Multiplier < 1) {
			t.Fatalf("report row %+v: pacing state out of range", r)
		}
	}
	if spend == 0 {
		t.Fatal("report shows no spend")
	}
	if st := s.e.p.State(s.c); st.CurveDays < 1 {
		t.Fatalf("curve never learned: %+v", st)
	}
}

// TestPacingSimASAP: asap spends the budget as early as traffic allows.
func TestPacingSimASAP(t *testing.T) {
	cfg := simDefaults()
	cfg.days, cfg.pacing = 1, campaign.PacingASAP
	s := runSim(t, cfg)
	budget := campaign.Micros(cfg.budget)
	t.Log(s.report(0, budget))
	checkDelivered(t, s, 0, budget)
	// Until the budget is nearly gone it bids on every matched request.
	d := &s.days[0]
	var cum int64
	exhausted := -1
	for h := 0; h < 24; h++ {
		cum += d.hourSpend[h]
		if cum < budget*9/10 && d.hourBids[h] < d.hourMatched[h]*99/100 {
			t.Fatalf("hour %02d: asap bid on %d of %d matched requests with budget left", h, d.hourBids[h], d.hourMatched[h])
		}
		if cum >= budget*98/100 && exhausted < 0 {
			exhausted = h
		}
	}
	if exhausted < 0 || exhausted == 23 {
		t.Fatalf("asap did not finish the budget early (hour %d)", exhausted)
	}
}

// TestPacingSimBudgetAboveSupply: a budget far above what the traffic can
// buy is spent as far as the traffic goes: even pacing bids on everything.
func TestPacingSimBudgetAboveSupply(t *testing.T) {
	cfg := simDefaults()
	cfg.days, cfg.pacing, cfg.budget = 1, campaign.PacingASAP, cfg.budget*250
	asap := runSim(t, cfg)
	cfg.pacing = campaign.PacingEven
	even := runSim(t, cfg)
	t.Logf("asap, unbounded: spent %.2f with %d bids; even: spent %.2f with %d bids",
		campaign.Units(asap.days[0].spend), asap.days[0].bids, campaign.Units(even.days[0].spend), even.days[0].bids)
	if even.days[0].bids < asap.days[0].bids*97/100 {
		t.Fatalf("even pacing held back bids it could have made: %d of %d", even.days[0].bids, asap.days[0].bids)
	}
	if even.days[0].spend < asap.days[0].spend*97/100 {
		t.Fatalf("even pacing left supply unbought: spent %d, all of it was %d", even.days[0].spend, asap.days[0].spend)
	}
	if st := even.e.p.State(even.c); st.Throttle != 1 || st.Multiplier <= 1 {
		t.Fatalf("under-delivering campaign should bid on all at a raised price: %+v", st)
	}
}

// TestPacingSimBudgetChanges: raised and lowered mid-day, and paused.
func TestPacingSimBudgetChanges(t *testing.T) {
	edit := func(s *simRun, f func(c *campaign.Campaign)) {
		c := *s.e.camps.get("cmp_sim")
		f(&c)
		s.c = s.e.camps.put(&c)
	}
	t.Run("raised", func(t *testing.T) {
		cfg := simDefaults()
		cfg.days = 1
		raised := cfg.budget * 5 / 4
		cfg.budget /= 2
		cfg.at = func(day, sec int, s *simRun) {
			if sec == 12*3600 {
				edit(s, func(c *campaign.Campaign) { c.Budget.DailyMicros = campaign.Micros(raised) })
			}
		}
		s := runSim(t, cfg)
		t.Log(s.report(0, campaign.Micros(raised)))
		checkDelivered(t, s, 0, campaign.Micros(raised))
	})
	t.Run("lowered", func(t *testing.T) {
		cfg := simDefaults()
		cfg.days = 1
		lowered := cfg.budget * 3 / 4
		var spentAtCut int64
		cfg.at = func(day, sec int, s *simRun) {
			if sec == 12*3600 {
				spentAtCut, _ = s.e.p.Spend(s.c)
				edit(s, func(c *campaign.Campaign) { c.Budget.DailyMicros = campaign.Micros(lowered) })
			}
		}
		s := runSim(t, cfg)
		t.Logf("spent %.2f by noon; %s", campaign.Units(spentAtCut), s.report(0, campaign.Micros(lowered)))
		if spentAtCut >= campaign.Micros(lowered) {
			t.Fatalf("scenario needs spend below the new budget at the cut, got %d", spentAtCut)
		}
		checkDelivered(t, s, 0, campaign.Micros(lowered))
	})
	t.Run("lowered below spend", func(t *testing.T) {
		cfg := simDefaults()
		cfg.days, cfg.pacing = 1, campaign.PacingASAP
		cfg.budget *= 2
		var spentAtCut int64
		cfg.at = func(day, sec int, s *simRun) {
			if sec == 10*3600 {
				spentAtCut, _ = s.e.p.Spend(s.c)
				edit(s, func(c *campaign.Campaign) { c.Budget.DailyMicros = 1_000 })
			}
		}
		s := runSim(t, cfg)
		if s.days[0].spend > spentAtCut+impCost(s.days[0].maxPrice)*int64(16) {
			// Only bids already in flight at the cut may still win.
			t.Fatalf("kept spending after the budget fell below spend: %d at the cut, %d at the end", spentAtCut, s.days[0].spend)
		}
	})
	t.Run("paused", func(t *testing.T) {
		cfg := simDefaults()
		cfg.days = 1
		cfg.at = func(day, sec int, s *simRun) {
			switch sec {
			case 10 * 3600:
				edit(s, func(c *campaign.Campaign) { c.Status = campaign.StatusPaused })
			case 14 * 3600:
				edit(s, func(c *campaign.Campaign) { c.Status = campaign.StatusActive })
			}
		}
		s := runSim(t, cfg)
		budget := campaign.Micros(cfg.budget)
		t.Log(s.report(0, budget))
		for h := 11; h < 14; h++ {
			if s.days[0].hourSpend[h] != 0 {
				t.Fatalf("spent %d in hour %d while paused", s.days[0].hourSpend[h], h)
			}
		}
		checkDelivered(t, s, 0, budget)
	})
}

// TestPacingSimFirstPrice: in first-price auctions with min-to-win
// feedback, shading pays less per impression than bidding the value and
// the budget is still delivered.
func TestPacingSimFirstPrice(t *testing.T) {
	cfg := simDefaults()
	cfg.firstPrice, cfg.mtwShare = true, 0.5
	cfg.days = min(cfg.days, 2)
	s := runSim(t, cfg)
	budget := campaign.Micros(cfg.budget)
	for day := range s.days {
		t.Log(s.report(day, budget))
		checkDelivered(t, s, day, budget)
	}
	d := &s.days[1]
	ratio := d.paidSum / d.valueSum
	t.Logf("day 2: paid %.1f%% of the base CPM on average; model %q", 100*ratio, s.e.p.State(s.c).Market)
	if ratio > 0.95 {
		t.Fatalf("first-price bids were not shaded: paid %.1f%% of value", 100*ratio)
	}
}
