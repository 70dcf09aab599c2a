package pacing

import (
	"math"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/campaign"
)

func TestQuote(t *testing.T) {
	base := testCampaign("cmp_p", campaign.PacingASAP) // base 2, max 5 USD
	krw := testCampaign("cmp_krw", campaign.PacingASAP)
	krw.Currency = "KRW"
	krw.Bid = campaign.Bid{BaseCPMMicros: campaign.Micros(2500), MaxCPMMicros: campaign.Micros(6000)}
	e := newEnv(t, t0, Options{}, base, krw)
	cases := []struct {
		name string
		cmp  string
		q    Quote
		want int64
		why  string
	}{
		{"base", "cmp_p", Quote{}, 2_000_000, ""},
		{"viewed 10 min ago", "cmp_p", Quote{Recency: 10 * time.Minute}, 3_000_000, ""},
		{"viewed yesterday", "cmp_p", Quote{Recency: 20 * time.Hour}, 2_500_000, ""},
		{"viewed 3 days ago", "cmp_p", Quote{Recency: 72 * time.Hour}, 2_000_000, ""},
		{"viewed a month ago", "cmp_p", Quote{Recency: 30 * 24 * time.Hour}, 1_600_000, ""},
		{"lookalike", "cmp_p", Quote{Audience: AudienceLookalike}, 1_400_000, ""},
		{"lookalike, fresh", "cmp_p", Quote{Audience: AudienceLookalike, Recency: time.Minute}, 2_100_000, ""},
		{"floor below", "cmp_p", Quote{FloorMicros: 1_000_000, FloorCur: "USD"}, 2_000_000, ""},
		{"floor raises the bid", "cmp_p", Quote{FloorMicros: 4_200_000}, 4_200_000, ""},
		{"floor at max", "cmp_p", Quote{FloorMicros: 5_000_000}, 5_000_000, ""},
		{"floor above max", "cmp_p", Quote{FloorMicros: 5_000_001}, 0, ReasonFloor},
		{"floor in KRW converted", "cmp_p", Quote{FloorMicros: 4_140_000_000, FloorCur: "KRW"}, 3_000_000, ""},
		{"floor in KRW above max", "cmp_p", Quote{FloorMicros: 8_000_000_000, FloorCur: "KRW"}, 0, ReasonFloor},
		{"floor in unknown currency", "cmp_p", Quote{FloorMicros: 1, FloorCur: "BRL"}, 0, ReasonCurrency},
		{"no floor, unknown currency", "cmp_p", Quote{FloorCur: "BRL"}, 2_000_000, ""},
		{"KRW campaign, USD floor", "cmp_krw", Quote{FloorMicros: 2_000_000}, 2_760_000_000, ""},
		{"KRW campaign, capped", "cmp_krw", Quote{Recency: time.Minute, FloorMicros: 1_000_000}, 3_750_000_000, ""},
	}
	for _, tc := range cases {
		h, why := e.p.Admit(e.camps.get(tc.cmp), [16]byte{1}, e.clock.Now())
		if why != "" {
			t.Fatalf("%s: admit: %s", tc.name, why)
		}
		got, why := h.Quote(tc.q)
		if got != tc.want || why != tc.why {
			t.Errorf("%s: %d %q, want %d %q", tc.name, got, why, tc.want, tc.why)
		}
		if why == "" && got > e.camps.get(tc.cmp).Bid.MaxCPMMicros {
			t.Errorf("%s: %d above max CPM", tc.name, got)
		}
	}
	// A pricing config with a fresh-visit boost above the max: capped.
	e2 := newEnv(t, t0, Options{Price: PriceConfig{Recency: []RecencyStep{{time.Hour, 4}}}}, base)
	h, _ := e2.p.Admit(e2.camps.get("cmp_p"), [16]byte{1}, t0)
	if got, _ := h.Quote(Quote{Recency: time.Minute}); got != 5_000_000 {
		t.Fatalf("boosted beyond max: %d, want the max 5000000", got)
	}
	// Rates from configuration replace the table.
	e2.p.SetRates(Rates{"USD": 1, "BRL": 5})
	if got, why := h.Quote(Quote{FloorMicros: 15_000_000, FloorCur: "BRL"}); got != 3_000_000 || why != "" {
		t.Fatalf("BRL floor with configured rates: %d %q", got, why)
	}
	if _, why := h.Quote(Quote{FloorMicros: 1, FloorCur: "KRW"}); why != ReasonCurrency {
		t.Fatalf("KRW after the table was replaced: %q", why)
	}
}

func TestOptionsValidate(t *testing.T) {
	e := newMemEnv(t, t0, Options{})
	for _, o := range []Options{
		{ReserveTTL: time.Millisecond},
		{ControlInterval: time.Millisecond},
		{MaxMultiplier: 0.5},
		{Price: PriceConfig{Lookalike: -1}},
		{Price: PriceConfig{MinShade: 2}},
		{Price: PriceConfig{Recency: []RecencyStep{{0, 1}}}},
		{DefaultCurve: []float64{1, 2, 3}},
		{DefaultCurve: make([]float64, 24)},
	} {
		if _, err := New(e.db, NewSigner(testSecret), newCampSrc(), o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	if _, err := New(e.db, NewSigner(testSecret), newCampSrc(), Options{}); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
}

// TestShading: with a learned market, a first-price bid is shaded to the
// price that maximises expected surplus; without one, it is the value.
func TestShading(t *testing.T) {
	var m market
	if got := m.shade(3_000_000, 0, 0.5); got != 3_000_000 {
		t.Fatalf("no model: %d", got)
	}
	// Min-to-win uniformly spread over 1.0–2.0 CPM.
	for i := 0; i < 1000; i++ {
		m.minToWin(1_000_000 + int64(i)*1000)
	}
	m.rebuild(false)
	got := m.shade(3_000_000, 0, 0.5)
	// (v − p)·W(p) with W uniform on [1, 2] peaks at p = 2 (W = 1 there).
	if got < 1_900_000 || got > 2_200_000 {
		t.Fatalf("shaded bid %d, want about 2000000", got)
	}
	if got := m.shade(3_000_000, 2_500_000, 0.5); got < 2_500_000 {
		t.Fatalf("shaded below the floor: %d", got)
	}
	if got := m.shade(1_500_000, 0, 0.9); got < 1_350_000 || got > 1_500_000 {
		t.Fatalf("shaded below MinShade: %d", got)
	}
	// Win-rate model: bids at 1.5 win 20 %, at 2.5 win 90 %.
	var w market
	for i := 0; i < 500; i++ {
		w.bid(1_500_000)
		w.bid(2_500_000)
		if i%5 == 0 {
			w.win(1_500_000)
		}
		if i%10 != 0 {
			w.win(2_500_000)
		}
	}
	w.rebuild(true)
	if c := w.curve.Load(); c == nil || c.source != "win_rate" {
		t.Fatalf("win-rate curve not built")
	}
	got = w.shade(3_000_000, 0, 0.3)
	if b := bucketHigh(bucketOf(2_500_000)); got != b {
		t.Fatalf("win-rate shading chose %d, want the 90 %% bucket at %d", got, b)
	}
	if n := w.bids[bucketOf(1_500_000)].Load(); n != 250 {
		t.Fatalf("decay halved bids to %d, want 250", n)
	}
}

func TestBuckets(t *testing.T) {
	prev := int64(0)
	for b := 0; b < nBuckets; b++ {
		h := bucketHigh(b)
		if h <= prev {
			t.Fatalf("bucket %d high %d not above %d", b, h, prev)
		}
		if b > 0 && bucketOf(h-1) != b || bucketOf(h) != min(b+1, nBuckets-1) {
			t.Fatalf("bucket %d: bucketOf(%d)=%d bucketOf(%d)=%d", b, h-1, bucketOf(h-1), h, bucketOf(h))
		}
		prev = h
	}
	if r := float64(bucketHigh(100)) / float64(bucketHigh(99)); r > 1.13 {
		t.Fatalf("buckets too coarse: ratio %.3f", r)
	}
	if bucketOf(-5) != 0 || bucketOf(math.MaxInt64) != nBuckets-1 {
		t.Fatal("out-of-range prices must clamp")
	}
}

func TestCurveLearning(t *testing.T) {
	c := flatCurve()
	if c.at(43200) != 0.5 || c.at(-1) != 0 || c.at(90000) != 1 {
		t.Fatalf("flat curve: %v %v %v", c.at(43200), c.at(-1), c.at(90000))
	}
	counts := make([]int64, dayMinutesMax)
	for m := 0; m < minutesPerDay; m++ {
		if m >= 720 {
			counts[m] = 30 // all traffic in the afternoon, three times heavier
		} else {
			counts[m] = 10
		}
	}
	l := c.learn(counts)
	if l.days != 1 || math.Abs(l.at(43200)-0.25) > 0.01 {
		t.Fatalf("learned noon share %.3f, want 0.25 (days %d)", l.at(43200), l.days)
	}
	enc := l.encode()
	back, err := decodeCurve(enc)
	if err != nil || math.Abs(back.at(43200)-l.at(43200)) > 1e-6 || back.days != 1 {
		t.Fatalf("decode: %v %v", back.at(43200), err)
	}
	if _, err := decodeCurve(enc[:10]); err == nil {
		t.Fatal("short curve decoded")
	}
	hc, err := curveFromHours([]float64{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	if err != nil || hc.at(6*3600) != 0 || math.Abs(hc.at(15*3600)-0.5) > 1e-9 {
		t.Fatalf("hourly default curve: %v %v", hc.at(15*3600), err)
	}
}

// TestEffectiveDaily: what a campaign may spend today.
func TestEffectiveDaily(t *testing.T) {
	day := t0.Truncate(24 * time.Hour).Unix()
	end := time.Unix(day, 0).Add(4 * 24 * time.Hour) // today and three more days
	cases := []struct {
		name                 string
		b                    campaign.Budget
		end                  *time.Time
		today, total, expect int64
	}{
		{"daily", campaign.Budget{DailyMicros: 100}, nil, 10, 500, 100},
		{"daily within total", campaign.Budget{DailyMicros: 100, TotalMicros: 1000}, nil, 10, 950, 60},
		{"total, open end", campaign.Budget{TotalMicros: 1000}, nil, 0, 400, 600},
		{"total over 4 days left", campaign.Budget{TotalMicros: 1000}, &end, 50, 250, 200},
		{"total spent", campaign.Budget{TotalMicros: 1000}, &end, 0, 1200, 0},
	}
	for _, tc := range cases {
		c := &campaign.Campaign{Budget: tc.b, End: tc.end}
		if got := effectiveDaily(c, tc.today, tc.total, day); got != tc.expect {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.expect)
		}
	}
}
