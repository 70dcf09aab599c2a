package bidder

import (
	"sync"

	"github.com/prebid/openrtb/v20/openrtb2"
)

// bidState is the per-request scratch of the bid path, pooled so a request
// costs no allocation for it: the decoded request and the response buffer.
type bidState struct {
	req openrtb2.BidRequest
	out []byte
}

// maxPooledOut bounds the response buffer kept in the pool, so one huge
// response does not pin its memory.
const maxPooledOut = 64 << 10

var bidStates = sync.Pool{New: func() any { return &bidState{out: make([]byte, 0, 4<<10)} }}

func getBidState() *bidState { return bidStates.Get().(*bidState) }

// release clears st for the next request and returns it to the pool. The
// request is zeroed, not reused: a decoder fills pointers it finds set,
// which would leak one request's fields into the next.
func (st *bidState) release() {
	st.req = openrtb2.BidRequest{}
	if cap(st.out) > maxPooledOut {
		st.out = make([]byte, 0, 4<<10)
	}
	st.out = st.out[:0]
	bidStates.Put(st)
}
