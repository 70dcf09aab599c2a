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
	max := map[string]float64{"typical_2k_known": 12, "typical_2k_unknown": 3, "site_known": 12, "site_unknown": 3, "app_ifa": 12, "multi_imp": 12, "native_known": 15}
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
// allocation, for all its strings (decode.go), plus one per string with
// escapes.
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
		want := 1.0
		if sh.name == "native_known" {
			want = 2 // the native request string has escapes: its own allocation
		}
		if n := testing.AllocsPerRun(100, run); n > want {
			t.Errorf("%s: %.0f allocations, want %.0f", sh.name, n, want)
		}
	}
}
