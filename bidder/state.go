package bidder

import (
	"sync"
	"unsafe"

	"github.com/prebid/openrtb/v20/openrtb2"
)

// bidState is the per-request scratch of the bid path, pooled so a request
// costs no allocation for it: the decoded request with the nested objects it
// points to (filled by decode.go), and the response buffer.
type bidState struct {
	req openrtb2.BidRequest

	imps    objPool[openrtb2.Imp]
	banners objPool[openrtb2.Banner]
	formats objPool[openrtb2.Format]
	natives objPool[openrtb2.Native]
	eids    objPool[openrtb2.EID]
	uids    objPool[openrtb2.UID]
	strs    objPool[string] // bcat, badv, site.cat, app.cat
	int8s   objPool[int8]   // imp.secure, device.lmt, regs.gdpr, regs.gpp_sid
	int64s  objPool[int64]  // banner.w, banner.h

	site      openrtb2.Site
	app       openrtb2.App
	device    openrtb2.Device
	deviceGeo openrtb2.Geo
	user      openrtb2.User
	userGeo   openrtb2.Geo
	regs      openrtb2.Regs
	used      uint8 // which of the single objects above the decoder handed out

	dec     decoder
	scratch []byte // the decoder's buffer for unescaping strings
	out     []byte
	ans     answerState // the answer (bid.go)
}

const (
	// maxPooledOut bounds the response buffer kept in the pool, so one huge
	// response does not pin its memory.
	maxPooledOut = 64 << 10
	// maxPooledObjs bounds each pool of nested objects (a hostile request
	// may carry thousands of imps before validation refuses it: beyond the
	// pool they are allocated, and the pool grows to at most this).
	maxPooledObjs = 64
	// maxPooledStrs bounds the pool of strings of string arrays (bcat
	// lists run to a hundred entries).
	maxPooledStrs = 256
	// maxPooledScratch bounds the unescaping buffer kept in the pool.
	maxPooledScratch = 4 << 10
)

// bidState.used bits.
const (
	usedSite = 1 << iota
	usedApp
	usedDevice
	usedDeviceGeo
	usedUser
	usedUserGeo
	usedRegs
)

var bidStates = sync.Pool{New: func() any { return newBidState() }}

func newBidState() *bidState {
	return &bidState{
		imps:    newObjPool[openrtb2.Imp](4),
		banners: newObjPool[openrtb2.Banner](4),
		formats: newObjPool[openrtb2.Format](8),
		natives: newObjPool[openrtb2.Native](2),
		eids:    newObjPool[openrtb2.EID](4),
		uids:    newObjPool[openrtb2.UID](4),
		strs:    newObjPool[string](16),
		int8s:   newObjPool[int8](8),
		int64s:  newObjPool[int64](8),
		out:     make([]byte, 0, 4<<10),
	}
}

func getBidState() *bidState { return bidStates.Get().(*bidState) }

// reset clears st for the next request. Everything is zeroed, not reused in
// place: the decoder merges into objects it finds set (as encoding/json
// does with a repeated key), which would leak one request's fields into the
// next.
func (st *bidState) reset() {
	st.req = openrtb2.BidRequest{}
	st.ans.reset()
	st.imps.reset(maxPooledObjs)
	st.banners.reset(maxPooledObjs)
	st.formats.reset(maxPooledObjs)
	st.natives.reset(maxPooledObjs)
	st.eids.reset(maxPooledObjs)
	st.uids.reset(maxPooledObjs)
	st.strs.reset(maxPooledStrs)
	st.int8s.reset(maxPooledObjs)
	st.int64s.reset(maxPooledObjs)
	if st.used != 0 {
		// The decoder zeroes one when it hands it out; these keep the pool
		// from holding on to a request's strings.
		if st.used&usedSite != 0 {
			st.site = openrtb2.Site{}
		}
		if st.used&usedApp != 0 {
			st.app = openrtb2.App{}
		}
		if st.used&usedDevice != 0 {
			st.device = openrtb2.Device{}
		}
		if st.used&usedDeviceGeo != 0 {
			st.deviceGeo = openrtb2.Geo{}
		}
		if st.used&usedUser != 0 {
			st.user = openrtb2.User{}
		}
		if st.used&usedUserGeo != 0 {
			st.userGeo = openrtb2.Geo{}
		}
		if st.used&usedRegs != 0 {
			st.regs = openrtb2.Regs{}
		}
		st.used = 0
	}
	if cap(st.scratch) > maxPooledScratch {
		st.scratch = nil
	}
	if cap(st.out) > maxPooledOut {
		st.out = make([]byte, 0, 4<<10)
	}
	st.out = st.out[:0]
}

// keep copies b (an unescaped string) into the request's arena (the
// answer state's, which the bids' strings share) and returns it as a string
// valid until st.reset. The arena only grows within a request: when append
// moves it, the strings already handed out stay in the old array,
// unchanged.
func (st *bidState) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	a := &st.ans.arena
	off := len(*a)
	*a = append(*a, b...)
	return unsafe.String(&(*a)[off], len(b))
}

// release clears st and returns it to the pool.
func (st *bidState) release() {
	st.reset()
	bidStates.Put(st)
}

// objPool hands out the objects of one type a request points to, and the
// backing arrays of its slices, from one pooled array: buf[:len(buf)] is
// handed out, buf[len(buf):cap(buf)] is zero. A request that needs more gets
// them from the heap, and the pool grows (up to a limit) at the next reset.
type objPool[T any] struct {
	buf  []T
	over bool
}

func newObjPool[T any](n int) objPool[T] { return objPool[T]{buf: make([]T, 0, n)} }

// new returns a pointer to a zero T.
func (p *objPool[T]) new() *T {
	n := len(p.buf)
	if n == cap(p.buf) {
		p.over = true
		return new(T)
	}
	p.buf = p.buf[:n+1]
	return &p.buf[n]
}

// grow returns s (len(s) == cap(s)) with one more element, zero, and s's
// elements kept, as append does. The slice that was handed out last grows
// in place; another is copied to the end of the pool.
func (p *objPool[T]) grow(s []T) []T {
	n, used := len(s), len(p.buf)
	if used < cap(p.buf) {
		b := p.buf
		if n > 0 && n <= used && &b[used-n] == &s[0] {
			p.buf = b[:used+1]
			return b[used-n : used+1 : used+1]
		}
		if used+n+1 <= cap(b) {
			p.buf = b[:used+n+1]
			r := b[used : used+n+1 : used+n+1]
			copy(r, s)
			return r
		}
	}
	p.over = true
	var zero T
	return append(s, zero)
}

// reset zeroes what was handed out and, if the last request needed more
// than the pool held, grows the pool to at most limit objects.
func (p *objPool[T]) reset(limit int) {
	clear(p.buf)
	p.buf = p.buf[:0]
	if p.over {
		p.over = false
		if c := cap(p.buf); c < limit {
			p.buf = make([]T, 0, min(2*c, limit))
		}
	}
}
