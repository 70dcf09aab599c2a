package bidder

import (
	"sync"

	"github.com/prebid/openrtb/v20/openrtb2"
)

// bidState is the per-request scratch of the bid path, pooled so a request
// costs no allocation for it: the wire form the decoder fills, the decoded
// request with the nested objects it points to, and the response buffer.
type bidState struct {
	wire wireRequest
	req  openrtb2.BidRequest

	imps      []openrtb2.Imp
	banners   []openrtb2.Banner
	formats   []openrtb2.Format
	natives   []openrtb2.Native
	eids      []openrtb2.EID
	uids      []openrtb2.UID
	site      openrtb2.Site
	app       openrtb2.App
	device    openrtb2.Device
	deviceGeo openrtb2.Geo
	user      openrtb2.User
	userGeo   openrtb2.Geo
	regs      openrtb2.Regs

	out []byte
}

const (
	// maxPooledOut bounds the response buffer kept in the pool, so one huge
	// response does not pin its memory.
	maxPooledOut = 64 << 10
	// maxPooledObjs bounds each pooled slice of nested objects (a hostile
	// request may carry thousands of imps before validation refuses it).
	maxPooledObjs = 64
)

var bidStates = sync.Pool{New: func() any { return newBidState() }}

func newBidState() *bidState {
	return &bidState{
		imps:    make([]openrtb2.Imp, 0, 4),
		banners: make([]openrtb2.Banner, 0, 4),
		formats: make([]openrtb2.Format, 0, 8),
		natives: make([]openrtb2.Native, 0, 2),
		eids:    make([]openrtb2.EID, 0, 4),
		uids:    make([]openrtb2.UID, 0, 4),
		out:     make([]byte, 0, 4<<10),
	}
}

func getBidState() *bidState { return bidStates.Get().(*bidState) }

// reset clears st for the next request. Everything is zeroed, not reused in
// place: a decoder fills pointers it finds set, which would leak one
// request's fields into the next.
func (st *bidState) reset() {
	st.wire = wireRequest{}
	st.req = openrtb2.BidRequest{}
	st.imps = resetObjs(st.imps)
	st.banners = resetObjs(st.banners)
	st.formats = resetObjs(st.formats)
	st.natives = resetObjs(st.natives)
	st.eids = resetObjs(st.eids)
	st.uids = resetObjs(st.uids)
	st.site, st.app, st.device, st.deviceGeo = openrtb2.Site{}, openrtb2.App{}, openrtb2.Device{}, openrtb2.Geo{}
	st.user, st.userGeo, st.regs = openrtb2.User{}, openrtb2.Geo{}, openrtb2.Regs{}
	if cap(st.out) > maxPooledOut {
		st.out = make([]byte, 0, 4<<10)
	}
	st.out = st.out[:0]
}

func resetObjs[T any](s []T) []T {
	if cap(s) > maxPooledObjs {
		return make([]T, 0, 4)
	}
	clear(s[:cap(s)])
	return s[:0]
}

// release clears st and returns it to the pool.
func (st *bidState) release() {
	st.reset()
	bidStates.Put(st)
}
