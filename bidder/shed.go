package bidder

import (
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prebid/openrtb/v20/openrtb2"
)

// Load shedding. An exchange drops a bidder that answers late, so when the
// bidder falls behind it answers a fast 204 instead of queuing work it
// cannot finish in time:
//
//   - more than Deps.MaxInFlight bid requests in the handler at once: 204
//     before decoding (reason "overload");
//   - a request that has already spent half its tmax in the handler by the
//     time it is decoded (a GC pause, a starved scheduler): 204 before
//     decide (reason "late").
//
// Shed requests are counted as no-bids with those reasons and in
// chaser_bid_shed_total.

// DefaultMaxInFlight is the in-flight bid request limit when
// Deps.MaxInFlight is 0. On 2 cores a decided request takes tens of
// microseconds, so 256 in flight is already milliseconds of queue.
const DefaultMaxInFlight = 256

const (
	reasonOverload = "overload"
	reasonLate     = "late"
)

var (
	shedOverload = metrics.NewCounter(`chaser_bid_shed_total{reason="overload"}`)
	shedLate     = metrics.NewCounter(`chaser_bid_shed_total{reason="late"}`)
)

// limiter counts the bid requests in the handler.
type limiter struct {
	n   atomic.Int64
	max int64
}

// enter reports whether one more request may start; when it does, the
// caller must call leave.
func (l *limiter) enter() bool {
	if l.n.Add(1) > l.max {
		l.n.Add(-1)
		shedOverload.Inc()
		return false
	}
	return true
}

func (l *limiter) leave() { l.n.Add(-1) }

// late reports whether req, whose handling started at start, has used half
// its tmax already (then the answer would likely arrive too late).
func late(req *openrtb2.BidRequest, start, now time.Time) bool {
	if req.TMax <= 0 {
		return false
	}
	if now.Sub(start) > time.Duration(req.TMax)*time.Millisecond/2 {
		shedLate.Inc()
		return true
	}
	return false
}
