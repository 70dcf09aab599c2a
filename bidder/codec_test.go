package bidder

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/prebid/openrtb/v20/openrtb2"
	"github.com/prebid/openrtb/v20/openrtb3"
)

// TestAppendResponse: the append-style encoder writes what encoding/json
// writes (HTML escaping off), byte for byte, including hostile strings and
// unusual prices.
func TestAppendResponse(t *testing.T) {
	nbr := openrtb3.NoBidReason(2)
	cases := []openrtb2.BidResponse{
		{ID: "r"},
		{ID: "r", NBR: &nbr, BidID: "b", CustomData: "cd", Ext: json.RawMessage(`{"a":1}`)},
		{ID: "a\"b\\c<d>&e\u2028f\u2029g\x00h\x1f\ti\n\r\b\f", Cur: "USD", SeatBid: []openrtb2.SeatBid{{Seat: "chaser", Bid: []openrtb2.Bid{
			{ID: "1", ImpID: "i", Price: 0.000001, AdM: "<div onclick=\"x('&amp;')\">é ☃ \xff\xfe bad</div>", ADomain: []string{"shop.example"},
				CID: "c", CrID: "cr", W: 300, H: 250, MType: openrtb2.MarkupBanner, Cat: []string{"IAB22"},
				NURL: "https://x/?t=a&p=${AUCTION_PRICE}", BURL: "https://x/b", LURL: "https://x/l"},
			{ID: "2", ImpID: "j", Price: 1e21, Attr: nil, MType: openrtb2.MarkupNative, Ext: json.RawMessage(`{}`)},
			{ID: "3", ImpID: "k", Price: 1.5e-7, DealID: "d", Exp: 30},
		}}, {Bid: nil, Group: 1}}},
		{ID: "p", SeatBid: []openrtb2.SeatBid{{Bid: []openrtb2.Bid{{ID: "x", ImpID: "y", Price: 123456.789}, {Price: 2.5}}}}},
	}
	for i := range cases {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&cases[i]); err != nil {
			t.Fatal(err)
		}
		want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if got := appendResponse(nil, &cases[i]); string(got) != string(want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestDecodeMatchesStdlib: on the request fixtures and a few malformed
// bodies, decodeRequest accepts what encoding/json accepts and decodes the
// same value.
func TestDecodeMatchesStdlib(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	bodies := [][]byte{
		[]byte(`{"id":"x","imp":[{"id":"1"}]`),
		[]byte(`{"id":1}`),
		[]byte(`{"id":"x","imp":{}}`),
		[]byte(`{"id":"x"} trailing`),
		[]byte(`{"ID":"case","IMP":[{"ID":"1","BidFloor":"1"}]}`),
		[]byte(`{"id":"\ud800 lone surrogate","imp":[{"id":"\xff"}]}`),
		[]byte(`{"id":"x","tmax":1.5}`),
		[]byte(`{"id":"x","regs":{"ext":{"gdpr":1,}}}`),
		[]byte(`[]`),
		[]byte(`null`),
		// a type error in a field the bidder never reads: encoding/json
		// refuses it into openrtb2.BidRequest, the bidder reads the rest
		[]byte(`{"id":"x","imp":[{"id":"1"}],"device":{"ua":5,"ifa":"a"}}`),
		// syntax errors in skipped values are still errors
		[]byte(`{"id":"x","imp":[{"id":"1"}],"source":{"schain":{"nodes":[}}}`),
		[]byte(`{"id":"x","imp":[{"id":"1"}],"ext":{"a":tru}}`),
		[]byte(`{"id":"x","imp":[{"id":"1","banner":{"format":[]}}],"user":{"eids":[{"uids":[]}]}}`),
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	for _, b := range bodies {
		checkDecodeMatches(t, b)
	}
}

// checkDecodeMatches: decodeRequest accepts a body exactly when
// encoding/json accepts it into the wire types, always when encoding/json
// accepts it into openrtb2.BidRequest, and then reads the same values as
// encoding/json does into either.
func checkDecodeMatches(t testing.TB, body []byte) {
	t.Helper()
	st := newBidState()
	own := bytes.Clone(body)
	gerr := decodeRequest(own, st)
	var stdWire wireRequest
	werr := json.Unmarshal(body, &stdWire)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: encoding/json (wire types) error %v, decodeRequest error %v", body, werr, gerr)
	}
	if werr == nil {
		std := newBidState()
		stdWire.copyInto(std)
		if !reflect.DeepEqual(std.req, st.req) {
			t.Fatalf("%q: decoded differently:\nstd %+v\ngot %+v", body, std.req, st.req)
		}
	}
	var full openrtb2.BidRequest
	if err := json.Unmarshal(body, &full); err == nil {
		if gerr != nil {
			t.Fatalf("%q: encoding/json accepts it, decodeRequest says %v", body, gerr)
		}
		if want, got := readView(&full), readView(&st.req); !reflect.DeepEqual(want, got) {
			t.Fatalf("%q: read fields differ from encoding/json's:\nstd %+v\ngot %+v", body, want, got)
		}
	}
}

// readView is what the bidder reads of a request (the fields of wire.go),
// taken from an openrtb2.BidRequest.
func readView(r *openrtb2.BidRequest) wireRequest {
	w := wireRequest{ID: r.ID, AT: r.AT, TMax: r.TMax, BCat: r.BCat, BAdv: r.BAdv}
	if r.Imp != nil {
		w.Imp = []wireImp{}
	}
	for _, imp := range r.Imp {
		wi := wireImp{ID: imp.ID, BidFloor: imp.BidFloor, BidFloorCur: imp.BidFloorCur, Secure: imp.Secure}
		if b := imp.Banner; b != nil {
			wi.Banner = &wireBanner{W: b.W, H: b.H}
			if b.Format != nil {
				wi.Banner.Format = []wireFormat{}
			}
			for _, f := range b.Format {
				wi.Banner.Format = append(wi.Banner.Format, wireFormat{W: f.W, H: f.H})
			}
		}
		if n := imp.Native; n != nil {
			wi.Native = &wireNative{Request: n.Request}
		}
		w.Imp = append(w.Imp, wi)
	}
	if s := r.Site; s != nil {
		w.Site = &wireSite{Domain: s.Domain, Cat: s.Cat, Page: s.Page}
	}
	if a := r.App; a != nil {
		w.App = &wireApp{Bundle: a.Bundle, Cat: a.Cat}
	}
	geo := func(g *openrtb2.Geo) *wireGeo {
		if g == nil {
			return nil
		}
		return &wireGeo{Country: g.Country, Region: g.Region, UTCOffset: g.UTCOffset}
	}
	if d := r.Device; d != nil {
		w.Device = &wireDevice{Geo: geo(d.Geo), Lmt: d.Lmt, DeviceType: d.DeviceType, OS: d.OS, IFA: d.IFA}
	}
	if u := r.User; u != nil {
		w.User = &wireUser{ID: u.ID, BuyerUID: u.BuyerUID, Geo: geo(u.Geo), Consent: u.Consent, Ext: u.Ext}
		if u.EIDs != nil {
			w.User.EIDs = []wireEID{}
		}
		for _, e := range u.EIDs {
			we := wireEID{Source: e.Source}
			if e.UIDs != nil {
				we.UIDs = []wireUID{}
			}
			for _, id := range e.UIDs {
				we.UIDs = append(we.UIDs, wireUID{ID: id.ID})
			}
			w.User.EIDs = append(w.User.EIDs, we)
		}
	}
	if g := r.Regs; g != nil {
		w.Regs = &wireRegs{COPPA: g.COPPA, GDPR: g.GDPR, USPrivacy: g.USPrivacy, GPP: g.GPP, GPPSID: g.GPPSID, Ext: g.Ext}
	}
	return w
}

// FuzzCodec: decodeRequest accepts exactly what encoding/json accepts into
// the wire types, whatever encoding/json accepts into openrtb2.BidRequest,
// and reads the same values.
func FuzzCodec(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"x","imp":[{"id":"1","bidfloor":"2"}]}`))
	f.Add([]byte(`{"id":"x","user":{"ext":{"consent":"a"}},"regs":{"gdpr":300}}`))
	f.Add([]byte(`{"id":"x","device":{"ua":5},"imp":[{"id":"1","banner":{"format":[]}}],"user":{"eids":[{"uids":[]}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkDecodeMatches(t, body) })
}

// TestShedOverload: beyond MaxInFlight the bid endpoint answers a fast 204
// and counts it; a request that has used half its tmax before decide is
// shed too.
func TestShedOverload(t *testing.T) {
	f := newFixture(t)
	body, err := os.ReadFile(filepath.Join("testdata", "requests", "site_banner.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c := f.do("POST", "/openrtb2/bid", "application/json", body, nil).StatusCode(); c != 200 {
		t.Fatalf("known user: status %d, want 200", c)
	}
	before := shedOverload.Get()
	f.srv.lim.n.Add(f.srv.lim.max) // the limit's worth of requests in flight
	resp := f.do("POST", "/openrtb2/bid", "application/json", body, nil)
	f.srv.lim.n.Add(-f.srv.lim.max)
	if c := resp.StatusCode(); c != 204 {
		t.Fatalf("overloaded: status %d, want 204", c)
	}
	if shedOverload.Get() != before+1 {
		t.Fatalf("shed counter %d, want %d", shedOverload.Get(), before+1)
	}
	if f.srv.lim.n.Load() != 0 {
		t.Fatalf("in flight %d after requests, want 0", f.srv.lim.n.Load())
	}
	if c := f.do("POST", "/openrtb2/bid", "application/json", body, nil).StatusCode(); c != 200 {
		t.Fatalf("after overload: status %d, want 200", c)
	}

	start := time.Unix(1000, 0)
	req := &openrtb2.BidRequest{TMax: 100}
	if late(req, start, start.Add(40*time.Millisecond)) {
		t.Error("40 ms into a 100 ms tmax: shed, want kept")
	}
	if !late(req, start, start.Add(60*time.Millisecond)) {
		t.Error("60 ms into a 100 ms tmax: kept, want shed")
	}
	if late(&openrtb2.BidRequest{}, start, start.Add(time.Hour)) {
		t.Error("no tmax: shed, want kept")
	}
}
