package bidder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"
	"github.com/valyala/fasthttp"
)

// benchShapes are request shapes of the realistic mix: a known user on a
// site banner, an unknown user (most traffic), an app request with an ifa,
// a multi-imp request, and the "typical 2 KB request" of DESIGN.md (a full
// OpenRTB 2.6 site request as prebid-fed exchanges send it: sua, eids,
// schain, gpid, bcat/badv) for a known and an unknown user.
var benchShapes = []struct {
	name, file, buyer string
	status            int // through benchFixture's server
}{
	{"typical_2k_known", "typical_2k.json", "", 200},
	{"typical_2k_unknown", "typical_2k.json", "someone-we-never-saw", 204},
	{"site_known", "site_banner.json", "", 200},
	{"site_unknown", "site_banner.json", "someone-we-never-saw", 204},
	{"app_ifa", "app_ifa.json", "", 200},
	{"multi_imp", "multi_imp_format.json", "", 200},
	{"native_known", "native.json", "", 200},
}

// benchFixture is the fixture with its campaign serving banner and native
// ads, so that every known shape bids.
func benchFixture(tb testing.TB) *fixture {
	f := newFixture(tb)
	c := f.campaign
	c.Creative.Native = true
	if _, err := f.deps.Campaigns.Update(c); err != nil {
		tb.Fatal(err)
	}
	return f
}

func benchBody(b testing.TB, file, buyer string) []byte {
	body, err := os.ReadFile(filepath.Join("testdata", "requests", file))
	if err != nil {
		b.Fatal(err)
	}
	if buyer != "" {
		body = []byte(strings.Replace(string(body), `"member-cookie"`, `"`+buyer+`"`, 1))
	}
	return body
}

// BenchmarkBidRequest measures decode + decide + encode of one request in
// process, through the real handler.
func BenchmarkBidRequest(b *testing.B) {
	f := benchFixture(b)
	for _, sh := range benchShapes {
		body := benchBody(b, sh.file, sh.buyer)
		b.Run(sh.name, func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for i := 0; i < b.N; i++ {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.Header.SetMethod("POST")
				ctx.Request.SetRequestURI("/openrtb2/bid")
				ctx.Request.Header.SetContentType("application/json")
				ctx.Request.SetBody(body)
				f.srv.Handle(&ctx)
				if c := ctx.Response.StatusCode(); c != sh.status {
					b.Fatalf("status %d, want %d", c, sh.status)
				}
			}
		})
	}
}

// BenchmarkDecodeOnly is the yardstick of DESIGN.md: encoding/json merely
// decoding the same requests into openrtb2.BidRequest.
func BenchmarkDecodeOnly(b *testing.B) {
	for _, sh := range benchShapes {
		body := benchBody(b, sh.file, sh.buyer)
		b.Run(sh.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for i := 0; i < b.N; i++ {
				var req openrtb2.BidRequest
				if err := json.Unmarshal(body, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeRequest measures the bidder's own decoder (decodeRequest
// into pooled request state) on the same shapes as BenchmarkDecodeOnly.
func BenchmarkDecodeRequest(b *testing.B) {
	for _, sh := range benchShapes {
		body := benchBody(b, sh.file, sh.buyer)
		b.Run(sh.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for i := 0; i < b.N; i++ {
				st := getBidState()
				if err := decodeRequest(body, st); err != nil {
					b.Fatal(err)
				}
				st.release()
			}
		})
	}
}
