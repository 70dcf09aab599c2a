package pacing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// minutesPerDay is the length of an ordinary day. Days of a daylight-saving
// change are 23 or 25 hours; dayMinutesMax leaves room for the longer one.
const (
	minutesPerDay = 1440
	dayMinutesMax = 1500
)

// trafficCurve is the shape of a campaign's day: cum[m] is the share of the
// day's matched requests that arrive before minute m (local time), so
// cum[0] = 0 and cum[1440] = 1. Immutable once published.
type trafficCurve struct {
	days int // full days learned; 0 for the default curve
	cum  [minutesPerDay + 1]float64
}

// curveFromShares builds a curve from per-minute shares summing to ~1.
func curveFromShares(share []float64, days int) *trafficCurve {
	c := &trafficCurve{days: days}
	sum := 0.0
	for _, s := range share {
		sum += s
	}
	if !(sum > 0) {
		return flatCurve()
	}
	acc := 0.0
	for m := 0; m < minutesPerDay; m++ {
		c.cum[m] = acc / sum
		acc += share[m]
	}
	c.cum[minutesPerDay] = 1
	return c
}

func flatCurve() *trafficCurve {
	c := &trafficCurve{}
	for m := range c.cum {
		c.cum[m] = float64(m) / minutesPerDay
	}
	return c
}

// curveFromHours builds a default curve from 24 hourly weights.
func curveFromHours(w []float64) (*trafficCurve, error) {
	if len(w) == 0 {
		return flatCurve(), nil
	}
	if len(w) != 24 {
		return nil, fmt.Errorf("pacing: default curve needs 24 hourly weights, got %d", len(w))
	}
	share := make([]float64, minutesPerDay)
	sum := 0.0
	for m := range share {
		if w[m/60] < 0 || math.IsNaN(w[m/60]) || math.IsInf(w[m/60], 0) || w[m/60] > 1e9 {
			return nil, errors.New("pacing: default curve weights must be finite and non-negative")
		}
		share[m] = w[m/60] / 60
		sum += share[m]
	}
	if sum <= 0 {
		return nil, errors.New("pacing: default curve weights must not all be zero")
	}
	return curveFromShares(share, 0), nil
}

// at returns the share of the day's traffic before elapsed seconds into the
// day (linear within a minute; 1 past the 1440th minute).
func (c *trafficCurve) at(sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	m := sec / 60
	if m >= minutesPerDay {
		return 1
	}
	i := int(m)
	f := m - float64(i)
	return c.cum[i] + f*(c.cum[i+1]-c.cum[i])
}

// shares returns the per-minute shares of the curve.
func (c *trafficCurve) shares() []float64 {
	s := make([]float64, minutesPerDay)
	for m := range s {
		s[m] = c.cum[m+1] - c.cum[m]
	}
	return s
}

// learnWindow smooths a day's per-minute counts over ±learnWindow minutes:
// per-minute counts of a small campaign are noisy, its traffic shape is not.
const learnWindow = 10

// learn blends one full day's per-minute request counts into the curve:
// the first day learned replaces the default curve, later days move it by
// a weight of max(1/(days+1), 0.3), so the curve follows a changing week.
func (c *trafficCurve) learn(counts []int64) *trafficCurve {
	total := int64(0)
	for _, n := range counts[:minutesPerDay] {
		total += n
	}
	if total <= 0 {
		return c
	}
	prefix := make([]int64, minutesPerDay+1)
	for m := 0; m < minutesPerDay; m++ {
		prefix[m+1] = prefix[m] + counts[m]
	}
	day := make([]float64, minutesPerDay)
	for m := range day {
		lo, hi := max(m-learnWindow, 0), min(m+learnWindow+1, minutesPerDay)
		day[m] = float64(prefix[hi]-prefix[lo]) / float64(hi-lo) / float64(total)
	}
	old := c.shares()
	a := 1.0
	if c.days > 0 {
		a = max(1/float64(c.days+1), 0.3)
	}
	for m := range day {
		day[m] = a*day[m] + (1-a)*old[m]
	}
	return curveFromShares(day, c.days+1)
}

// encode stores a learned curve: days, then 1440 per-minute shares as float32.
func (c *trafficCurve) encode() []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(c.days))
	for _, s := range c.shares() {
		b = binary.BigEndian.AppendUint32(b, math.Float32bits(float32(s)))
	}
	return b
}

func decodeCurve(b []byte) (*trafficCurve, error) {
	if len(b) != 4+4*minutesPerDay {
		return nil, errors.New("pacing: corrupt traffic curve")
	}
	days := int(binary.BigEndian.Uint32(b))
	share := make([]float64, minutesPerDay)
	for m := range share {
		f := float64(math.Float32frombits(binary.BigEndian.Uint32(b[4+4*m:])))
		if !(f >= 0) || math.IsInf(f, 0) {
			return nil, errors.New("pacing: corrupt traffic curve")
		}
		share[m] = f
	}
	return curveFromShares(share, days), nil
}
