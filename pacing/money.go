package pacing

import (
	"fmt"
	"math"
	"strings"
)

// MaxPriceUnits bounds a price read from outside (a CPM in currency units).
const MaxPriceUnits = 1_000_000_000

// ParsePrice parses a decimal price in currency units, as exchanges put in
// ${AUCTION_PRICE} ("1.25", "0.8", "3"), into micros. Digits beyond the
// sixth decimal are rounded half up. Signs, exponents, spaces, several dots,
// an unsubstituted macro or more than 64 bytes are refused. It does not
// allocate.
func ParsePrice(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 64 {
		return 0, false
	}
	var units, frac int64
	fracDigits, digits := 0, 0
	dot, roundUp := false, false
	for _, ch := range b {
		switch {
		case ch >= '0' && ch <= '9':
			d := int64(ch - '0')
			digits++
			switch {
			case !dot:
				units = units*10 + d
				if units > MaxPriceUnits {
					return 0, false
				}
			case fracDigits < 6:
				frac = frac*10 + d
				fracDigits++
			case fracDigits == 6:
				roundUp = d >= 5
				fracDigits++
			}
		case ch == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	for i := min(fracDigits, 6); i < 6; i++ {
		frac *= 10
	}
	v := units*1_000_000 + frac
	if roundUp {
		v++
	}
	return v, true
}

// impCost is what one impression at a CPM costs, in micros, rounded up so a
// reservation never falls short of the spend it stands for.
func impCost(cpmMicros int64) int64 {
	if cpmMicros <= 0 {
		return 0
	}
	return (cpmMicros + 999) / 1000
}

// Rates are exchange rates: units of each currency (ISO 4217) worth one US
// dollar. They convert a floor in the exchange's currency to the campaign's.
type Rates map[string]float64

// DefaultRates is the built-in table, overridable by configuration
// (Options.Rates). Rates drift; operators who bid on floors in several
// currencies should set their own.
var DefaultRates = Rates{"USD": 1, "EUR": 0.92, "GBP": 0.79, "JPY": 150, "KRW": 1380}

// ParseRates reads "EUR=0.92,KRW=1380" (units per USD); USD is always 1.
func ParseRates(s string) (Rates, error) {
	r := Rates{"USD": 1}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.ToUpper(strings.TrimSpace(k))
		var f float64
		if ok {
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%g", &f)
			ok = err == nil
		}
		if !ok || len(k) != 3 || !(f > 0) || math.IsInf(f, 0) || f > 1e9 {
			return nil, fmt.Errorf("rates: %q: want CUR=units-per-USD, e.g. KRW=1380", part)
		}
		r[k] = f
	}
	return r, nil
}

// Convert converts micros in currency from to currency to, rounding up (a
// converted floor must still be met). It reports false when either currency
// is not in the table.
func (r Rates) Convert(micros int64, from, to string) (int64, bool) {
	if from == to {
		return micros, true
	}
	rf, ok1 := r[from]
	rt, ok2 := r[to]
	if !ok1 || !ok2 || rf <= 0 || rt <= 0 {
		return 0, false
	}
	v := math.Ceil(float64(micros) * rt / rf)
	if v > math.MaxInt64/2 {
		return 0, false
	}
	return int64(v), true
}
