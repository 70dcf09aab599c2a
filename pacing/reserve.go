package pacing

import "sync/atomic"

// reservations hold money bid but not yet settled, for one campaign, in
// per-second slots so they expire without per-bid bookkeeping. A slot packs
// the second it belongs to (low 24 bits of the unix second) and the micros
// reserved in that second (low 40 bits) into one word, so reserve, release
// and expiry are single compare-and-swaps: no locks, no allocation.
//
// total is never below the sum of live slots (every update raises total
// before a slot, or lowers a slot before total), so a budget check against
// total is conservative.
type reservations struct {
	total atomic.Int64
	swept atomic.Int64 // last second a sweep ran for
	ttl   int64        // seconds a reservation lives without a notice
	mask  int64
	slots []atomic.Uint64
}

const (
	slotAmountBits = 40
	slotAmountMask = 1<<slotAmountBits - 1
	slotEpochMask  = 1<<24 - 1
)

func newReservations(ttlSeconds int64) *reservations {
	n := int64(8)
	for n < ttlSeconds+4 {
		n <<= 1
	}
	return &reservations{ttl: ttlSeconds, mask: n - 1, slots: make([]atomic.Uint64, n)}
}

func slotEpoch(sec int64) uint64 { return uint64(sec) & slotEpochMask }

// live reports whether a slot of epoch ep still counts at second now: its
// second is less than ttl ago (or up to 2 s in the future: clock steps).
func (r *reservations) live(ep uint64, now int64) bool {
	d := (slotEpoch(now) - ep) & slotEpochMask
	return d < uint64(r.ttl) || d > slotEpochMask-2
}

// tryReserve reserves amt micros at second sec if fits(total) holds for the
// new total; otherwise it changes nothing and returns false.
func (r *reservations) tryReserve(amt, sec int64, fits func(total int64) bool) bool {
	if amt <= 0 || amt > slotAmountMask/4 {
		return amt == 0
	}
	r.maybeSweep(sec)
	t := r.total.Add(amt)
	if !fits(t) {
		r.total.Add(-amt)
		return false
	}
	s := &r.slots[sec&r.mask]
	ep := slotEpoch(sec)
	for {
		w := s.Load()
		if w>>slotAmountBits != ep {
			// The slot holds an older second: whatever is left of it has
			// expired. Take it over and drop its amount from the total.
			if s.CompareAndSwap(w, ep<<slotAmountBits|uint64(amt)) {
				if old := int64(w & slotAmountMask); old > 0 {
					r.total.Add(-old)
				}
				return true
			}
			continue
		}
		if int64(w&slotAmountMask)+amt > slotAmountMask {
			r.total.Add(-amt)
			return false
		}
		if s.CompareAndSwap(w, w+uint64(amt)) {
			return true
		}
	}
}

// release settles amt micros reserved by a bid at second sec (a win, a loss
// or a billing notice came). Reservations already expired are left alone.
// The bid's token may carry the second before the one the reservation went
// into (the two clock reads straddled a second), so the next second is tried
// too: slots aggregate by second, so which bid's micros are released does not
// matter, only that a second's total stays right.
func (r *reservations) release(amt, sec, now int64) bool {
	if amt <= 0 {
		return false
	}
	for _, s2 := range [2]int64{sec, sec + 1} {
		if s2 > now+2 || !r.live(slotEpoch(s2), now) {
			continue
		}
		s := &r.slots[s2&r.mask]
		ep := slotEpoch(s2)
		for {
			w := s.Load()
			if w>>slotAmountBits != ep || int64(w&slotAmountMask) < amt {
				break
			}
			if s.CompareAndSwap(w, w-uint64(amt)) {
				r.total.Add(-amt)
				return true
			}
		}
	}
	return false
}

// maybeSweep sweeps once per second, by whichever caller gets there first.
func (r *reservations) maybeSweep(now int64) {
	last := r.swept.Load()
	if last != now && r.swept.CompareAndSwap(last, now) {
		r.sweep(now)
	}
}

// sweep expires every slot whose second is ttl or more ago.
func (r *reservations) sweep(now int64) {
	for i := range r.slots {
		s := &r.slots[i]
		for {
			w := s.Load()
			amt := int64(w & slotAmountMask)
			if amt == 0 || r.live(w>>slotAmountBits, now) {
				break
			}
			if s.CompareAndSwap(w, w&^slotAmountMask) {
				r.total.Add(-amt)
				break
			}
		}
	}
}

// restore puts back, after a restart, what was reserved at second sec
// before it, so bids still in flight keep counting against the budget until
// they would have expired.
func (r *reservations) restore(amt, sec, now int64) {
	if amt <= 0 || now-sec >= r.ttl || sec > now {
		return
	}
	r.tryReserve(min(amt, slotAmountMask/4), sec, func(int64) bool { return true })
}
