//go:build !race

// The race detector makes sync.Pool drop items at random: allocation
// counts are only meaningful without it.

package bidder

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestBidAllocs bounds the allocations of one bid request through the
// handler (decode + decide + encode), per request shape. The bounds sit a
// little above what BenchmarkBidRequest measures (BENCHMARKS.md, "Bid
// path"); raise one only with a reason.
func TestBidAllocs(t *testing.T) {
	f := benchFixture(t)
	max := map[string]float64{"typical_2k_known": 16, "typical_2k_unknown": 3, "site_known": 16, "site_unknown": 3, "app_ifa": 16, "multi_imp": 16, "native_known": 16}
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
		if n := testing.AllocsPerRun(200, run); n > max[sh.name] {
			t.Errorf("%s: %.0f allocs per request, want ≤ %.0f", sh.name, n, max[sh.name])
		} else {
			t.Logf("%s: %.0f allocs per request", sh.name, n)
		}
	}
}

// TestDecodeAllocs: with a warm pooled state, decoding a request costs one
// allocation, for all its strings (decode.go).
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
		if n := testing.AllocsPerRun(100, run); n > 1 {
			t.Errorf("%s: %.0f allocations, want 1", sh.name, n)
		}
	}
}
