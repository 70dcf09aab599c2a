package bidder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"
)

// specExamples returns the OpenRTB 2.5/2.6 specification's example requests
// from ../shared/data (see its PROVENANCE.md), or nil when absent.
func specExamples(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	root := filepath.Join("..", "..", "shared", "data", "openrtb-examples")
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") || !strings.Contains(path, "bid-request") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil {
			out[path] = b
		}
		return nil
	})
	return out
}

// TestSpecExamples: every example request of the OpenRTB 2.5 and 2.6
// specifications is a valid request: answered 200 or 204, never 400.
func TestSpecExamples(t *testing.T) {
	ex := specExamples(t)
	if len(ex) == 0 {
		t.Skip("../shared/data/openrtb-examples not present")
	}
	f := newFixture(t)
	for path, body := range ex {
		resp := f.do("POST", "/openrtb2/bid", "application/json", body, nil)
		if c := resp.StatusCode(); c != 200 && c != 204 {
			t.Errorf("%s: status %d: %s", path, c, resp.Body())
		}
	}
}

// FuzzBidRequest feeds arbitrary bodies to the bid endpoint: it must never
// panic, answer only 200, 204 or 400, and every 200 must be a valid
// response for the request.
func FuzzBidRequest(f *testing.F) {
	for _, dir := range []string{filepath.Join("testdata", "requests")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, p := range files {
			b, _ := os.ReadFile(p)
			f.Add(b)
		}
	}
	for _, b := range specExamples(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"id":"x","imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":1e308}],"user":{"buyeruid":"member-cookie"}}`))
	f.Add([]byte(`{"id":"x","imp":[{"id":"1","banner":{"format":[{"w":0,"h":0}]}}],"device":{"ifa":"00000000-0000-0000-0000-000000000000"}}`))
	f.Add([]byte(`{"id":"","imp":null}`))
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := fx.do("POST", "/openrtb2/bid", "application/json", body, nil)
		switch resp.StatusCode() {
		case 204, 400:
			return
		case 200:
		default:
			t.Fatalf("status %d for %q", resp.StatusCode(), body)
		}
		// The bidder reads the fields of the wire types (wire_test.go) and
		// skips the rest: a type error in a field it never reads (app.id an
		// object) is no reason to refuse the request, as encoding/json would
		// into openrtb2.BidRequest. So a bid must stand against what
		// encoding/json reads into the wire types.
		var wire wireRequest
		if err := json.Unmarshal(body, &wire); err != nil {
			t.Fatalf("200 for a body that does not decode into the wire types: %v", err)
		}
		st := newBidState()
		wire.copyInto(st)
		var br openrtb2.BidResponse
		if err := json.Unmarshal(resp.Body(), &br); err != nil {
			t.Fatalf("200 with invalid JSON: %v", err)
		}
		checkResponse(t, &st.req, &br, fx.campaign)
	})
}

// FuzzNoticeURL sends arbitrary query strings to every notice and click
// endpoint: never a panic, never a 5xx, and spend only moves for a token the
// bidder signed.
func FuzzNoticeURL(f *testing.F) {
	fx := newFixture(f)
	good, _ := os.ReadFile(filepath.Join("testdata", "requests", "site_banner.json"))
	resp := fx.do("POST", "/openrtb2/bid", "application/json", good, nil)
	var br openrtb2.BidResponse
	if err := json.Unmarshal(resp.Body(), &br); err != nil || len(br.SeatBid) == 0 {
		f.Fatalf("fixture bid: %v %s", err, resp.Body())
	}
	nurl := br.SeatBid[0].Bid[0].NURL
	q := nurl[strings.IndexByte(nurl, '?')+1:]
	f.Add("/notice/win", strings.Replace(q, "${AUCTION_PRICE}", "1.0", 1))
	f.Add("/notice/bill", strings.Replace(q, "${AUCTION_PRICE}", "1e308", 1))
	f.Add("/notice/win", "t=%ZZ&p=-1")
	f.Add("/notice/loss", "t=AAAA&r=${AUCTION_LOSS}")
	f.Add("/notice/imp", "t=")
	f.Add("/click", "a=x&c=y&p=z&s=")
	f.Fuzz(func(t *testing.T, path, query string) {
		switch path {
		case "/notice/win", "/notice/bill", "/notice/loss", "/notice/imp", "/click":
		default:
			path = "/notice/win"
		}
		_, before := fx.deps.Pacer.Spend(&fx.campaign)
		resp := fx.do("GET", path+"?"+query, "", nil, nil)
		if resp.StatusCode() >= 500 {
			t.Fatalf("%s?%s: status %d", path, query, resp.StatusCode())
		}
		_, after := fx.deps.Pacer.Spend(&fx.campaign)
		if after != before && !strings.Contains(query, q[:strings.IndexByte(q, '&')]) {
			t.Fatalf("spend moved on a notice without the signed token: %s?%s", path, query)
		}
	})
}
