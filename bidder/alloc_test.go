//go:build !race

// The race detector makes sync.Pool drop items at random: allocation
// counts are only meaningful without it.

package bidder

import (
	"runtime/debug"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestBidAllocs: one bid request through the handler (decode + decide +
// encode) allocates nothing once the pools are warm, for every request
// shape: the request borrows its body, the pooled state holds its objects,
// the answer's strings live in the state's arenas (BENCHMARKS.md, "Bid
// path"). The collector is off while counting: a collection empties the
// sync.Pools, and refilling them would count as a few allocations per
// request on average, hiding the one a change adds.
func TestBidAllocs(t *testing.T) {
	f := benchFixture(t)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, sh := range benchShapes {
		body := benchBody(t, sh.file, sh.buyer)
		var ctx fasthttp.RequestCtx
		run := func() {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.Header.SetMethod("POST")
			ctx.Request.SetRequestURI("/openrtb2/bid")
			ctx.Request.Header.SetContentType("application/json")
			ctx.Request.SetBody(body)
			f.srv.Handle(&ctx)
		}
		run()
		if c := ctx.Response.StatusCode(); c != sh.status {
			t.Fatalf("%s: status %d, want %d", sh.name, c, sh.status)
		}
		// Warm up: the profile cache (ristretto) applies a Set from its own
		// goroutine, and a known user's profile is read from Pebble until then.
		for i := 0; i < 100 && testing.AllocsPerRun(1, run) > 0; i++ {
			time.Sleep(time.Millisecond)
		}
		if n := testing.AllocsPerRun(200, run); n > 0 {
			t.Errorf("%s: %.2f allocations per request, want 0", sh.name, n)
		}
	}
}

// TestDecodeAllocs: with a warm pooled state, decoding a request allocates
// nothing: its strings borrow the body, and unescaped ones (the native
// request is an escaped JSON string) go into the state's arena (decode.go).
func TestDecodeAllocs(t *testing.T) {
	st := newBidState()
	for _, sh := range benchShapes {
		body := benchBody(t, sh.file, sh.buyer)
		run := func() {
			if err := decodeRequest(body, st); err != nil {
				t.Fatal(err)
			}
			st.reset()
		}
		run()
		if n := testing.AllocsPerRun(100, run); n > 0 {
			t.Errorf("%s: %.0f allocations, want 0", sh.name, n)
		}
	}
}
