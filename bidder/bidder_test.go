package bidder

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prebid/openrtb/v20/openrtb2"
	"github.com/valyala/fasthttp"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/creative"
	"github.com/chaser-dsp/chaser/pacing"
	"github.com/chaser-dsp/chaser/store"
)

var testSecret = []byte("bidder-test-secret-0123456789abcdef")

// fixture is a bidder over a real Pebble store with one advertiser, a feed,
// an audience of known ids and a campaign targeting it.
type fixture struct {
	srv      *Server
	deps     Deps
	campaign campaign.Campaign
	audience string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cs, err := campaign.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	am, err := audience.NewManager(db, audience.Options{Secret: testSecret, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := creative.OpenCatalog(db)
	if err != nil {
		t.Fatal(err)
	}
	signer := pacing.NewSigner(testSecret)
	pc, err := pacing.New(db, signer, cs, pacing.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	adv, err := cs.CreateAdvertiser(campaign.Advertiser{Name: "Shop", Domain: "shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	feed := "id,title,price,currency,image_url,landing_url,category,brand,in_stock\n" +
		"sku-1,Red Shoe,59.90,USD,http://cdn.example/1.jpg,https://shop.example/p/1,shoes,Acme,true\n" +
		"sku-2,Blue Shoe,79.00,USD,https://cdn.example/2.jpg,https://shop.example/p/2,shoes,Acme,true\n" +
		"sku-3,Green Hat,19.00,USD,https://cdn.example/3.jpg,https://shop.example/p/3,hats,Acme,true\n"
	if _, err := cat.Replace(adv.ID, strings.NewReader(feed), "csv"); err != nil {
		t.Fatal(err)
	}
	aud, err := am.Create(audience.Audience{AdvertiserID: adv.ID, Name: "members", Type: audience.TypeList})
	if err != nil {
		t.Fatal(err)
	}
	for _, up := range []struct {
		t    audience.IDType
		body string
	}{
		{audience.IDUID, "member-cookie\n"},
		{audience.IDMAID, "6d92078a-8246-4ba4-ae5b-76104861e7dc\n"},
		{audience.IDEID, "id5-sync.com:ID5-member\n"},
	} {
		if _, err := am.Upload(context.Background(), aud.ID, strings.NewReader(up.body), audience.UploadOptions{Type: up.t}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := cs.Create(campaign.Campaign{AdvertiserID: adv.ID, Name: "retarget", Currency: "USD", Pacing: campaign.PacingASAP,
		Start:     time.Now().Add(-time.Hour),
		Budget:    campaign.Budget{DailyMicros: campaign.Micros(1e6)}, // bids reserve budget until notices or 2 min: benchmarks must not run out
		Bid:       campaign.Bid{BaseCPMMicros: campaign.Micros(2), MaxCPMMicros: campaign.Micros(5)},
		Targeting: campaign.Targeting{Audiences: []string{aud.ID}, Countries: []string{"KOR"}},
		Creative: campaign.Creative{Sizes: []campaign.Size{{W: 300, H: 250}, {W: 320, H: 50}, {W: 728, H: 90}, {W: 300, H: 600}},
			Offer: "10% off"},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := Deps{Campaigns: cs, Audiences: am, Catalog: cat, Pacer: pc, Notices: signer,
		Clicks: creative.NewClickSigner(testSecret), BaseURL: "https://bid.example", Logger: log}
	return &fixture{srv: New(d), deps: d, campaign: c, audience: aud.ID}
}

// do runs one request through the handler in memory.
func (f *fixture) do(method, path, ctype string, body []byte, hdr map[string]string) *fasthttp.Response {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	if ctype != "" {
		ctx.Request.Header.SetContentType(ctype)
	}
	for k, v := range hdr {
		ctx.Request.Header.Set(k, v)
	}
	ctx.Request.SetBody(body)
	f.srv.Handle(&ctx)
	var resp fasthttp.Response
	ctx.Response.CopyTo(&resp)
	return &resp
}

func TestRequestFixtures(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		file   string
		status int
		imps   []string // imp ids that get a bid
	}{
		{"site_banner.json", 200, []string{"1"}},
		{"typical_2k.json", 200, []string{"1"}}, // a full 2.6 request as exchanges send them (sua, eids, schain, gpid)
		{"app_ifa.json", 200, []string{"a1"}},
		{"multi_imp_format.json", 200, []string{"m1"}}, // m2's floor is above max CPM, m3's size is not ours
		{"eids.json", 200, []string{"1"}},
		{"video_only.json", 204, nil},
		{"unknown_user.json", 204, nil},
		{"coppa.json", 204, nil},
		{"bcat_shopping.json", 204, nil},
		{"badv.json", 204, nil},
		{"floor_other_currency.json", 200, []string{"1"}}, // 1200 KRW ≈ 0.87 USD: below our bid
		{"floor_unknown_currency.json", 204, nil},         // BRL is not in the rate table
		{"floor_krw_above_max.json", 204, nil},            // 8000 KRW ≈ 5.80 USD: above max CPM
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "requests", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var req openrtb2.BidRequest
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatalf("fixture is not valid OpenRTB: %v", err)
			}
			resp := f.do("POST", "/openrtb2/bid", "application/json", body, nil)
			if resp.StatusCode() != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode(), tc.status, resp.Body())
			}
			if string(resp.Header.Peek("x-openrtb-version")) != "2.6" {
				t.Errorf("missing x-openrtb-version")
			}
			if tc.status != 200 {
				return
			}
			var br openrtb2.BidResponse
			if err := json.Unmarshal(resp.Body(), &br); err != nil {
				t.Fatal(err)
			}
			checkResponse(t, &req, &br, f.campaign)
			var got []string
			for _, sb := range br.SeatBid {
				for _, b := range sb.Bid {
					got = append(got, b.ImpID)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.imps, ",") {
				t.Fatalf("bids for imps %v, want %v", got, tc.imps)
			}
		})
	}
}

// checkResponse checks what every exchange requires of a bid response.
func checkResponse(t *testing.T, req *openrtb2.BidRequest, br *openrtb2.BidResponse, c campaign.Campaign) {
	t.Helper()
	if br.ID != req.ID || br.Cur != "USD" {
		t.Fatalf("response id %q cur %q", br.ID, br.Cur)
	}
	imps := map[string]*openrtb2.Imp{}
	for i := range req.Imp {
		imps[req.Imp[i].ID] = &req.Imp[i]
	}
	for _, sb := range br.SeatBid {
		for _, b := range sb.Bid {
			imp := imps[b.ImpID]
			if imp == nil {
				t.Fatalf("bid for unknown imp %q", b.ImpID)
			}
			floor := imp.BidFloor
			if imp.BidFloorCur != "" && imp.BidFloorCur != "USD" {
				f, _ := pacing.DefaultRates.Convert(int64(floor*1e6), imp.BidFloorCur, "USD")
				floor = campaign.Units(f)
			}
			if b.Price < floor || b.Price > campaign.Units(c.Bid.MaxCPMMicros) || b.Price <= 0 {
				t.Fatalf("price %v outside [floor %v, max %v]", b.Price, imp.BidFloor, campaign.Units(c.Bid.MaxCPMMicros))
			}
			if b.AdM == "" || b.CrID == "" || b.MType != openrtb2.MarkupBanner || b.W == 0 || b.H == 0 {
				t.Fatalf("incomplete bid %+v", b)
			}
			if len(b.ADomain) != 1 || b.ADomain[0] != "shop.example" {
				t.Fatalf("adomain %v", b.ADomain)
			}
			for _, u := range []string{b.NURL, b.BURL, b.LURL} {
				if !strings.HasPrefix(u, "https://bid.example/notice/") || !strings.Contains(u, "t=") {
					t.Fatalf("notice URL %q", u)
				}
			}
			if imp.Secure != nil && *imp.Secure == 1 && strings.Contains(b.AdM, `src='http://`) {
				t.Fatalf("insecure asset in secure imp: %s", b.AdM)
			}
		}
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)
	good, _ := os.ReadFile(filepath.Join("testdata", "requests", "site_banner.json"))
	cases := []struct {
		name, method, ctype string
		body                []byte
		hdr                 map[string]string
		status              int
		reason              string
	}{
		{"malformed JSON", "POST", "application/json", []byte(`{"id":"x","imp":[{"id":`), nil, 400, "bad_json"},
		{"not an object", "POST", "application/json", []byte(`[1,2,3]`), nil, 400, "bad_json"},
		{"wrong types", "POST", "application/json", []byte(`{"id":5,"imp":"no"}`), nil, 400, "bad_json"},
		{"empty body", "POST", "application/json", nil, nil, 400, "empty_body"},
		{"whitespace body", "POST", "application/json", []byte("  \n"), nil, 400, "empty_body"},
		{"no imps", "POST", "application/json", []byte(`{"id":"x","imp":[]}`), nil, 400, "no_imps"},
		{"no id", "POST", "application/json", []byte(`{"imp":[{"id":"1","banner":{"w":300,"h":250}}]}`), nil, 400, "missing_id"},
		{"duplicate imp ids", "POST", "application/json", []byte(`{"id":"x","imp":[{"id":"1","banner":{"w":300,"h":250}},{"id":"1","banner":{"w":300,"h":250}}]}`), nil, 400, "duplicate_imp_id"},
		{"missing imp id", "POST", "application/json", []byte(`{"id":"x","imp":[{"banner":{"w":300,"h":250}}]}`), nil, 400, "missing_imp_id"},
		{"negative floor", "POST", "application/json", []byte(`{"id":"x","imp":[{"id":"1","bidfloor":-1}]}`), nil, 400, "bad_floor"},
		{"too many imps", "POST", "application/json", []byte(`{"id":"x","imp":[` + strings.Repeat(`{"id":"a"},`, 40) + `{"id":"z"}]}`), nil, 400, "too_many_imps"},
		{"wrong content type", "POST", "application/x-www-form-urlencoded", good, nil, 400, "content_type"},
		{"GET", "GET", "", nil, nil, 400, "method"},
		{"bad gzip", "POST", "application/json", []byte("not gzip at all"), map[string]string{"Content-Encoding": "gzip"}, 400, "gzip"},
		{"unknown encoding", "POST", "application/json", good, map[string]string{"Content-Encoding": "br"}, 400, "content_encoding"},
		{"gzip bomb", "POST", "application/json", gz(bytes.Repeat([]byte(" "), 8<<20)), map[string]string{"Content-Encoding": "gzip"}, 400, "gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := bidBad(tc.reason).Get()
			resp := f.do(tc.method, "/openrtb2/bid", tc.ctype, tc.body, tc.hdr)
			if resp.StatusCode() != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode(), tc.status, resp.Body())
			}
			if got := bidBad(tc.reason).Get() - before; got != 1 {
				t.Fatalf("reason %q counted %d times, want 1", tc.reason, got)
			}
		})
	}
	t.Run("gzip accepted", func(t *testing.T) {
		resp := f.do("POST", "/openrtb2/bid", "application/json", gz(good), map[string]string{"Content-Encoding": "gzip"})
		if resp.StatusCode() != 200 {
			t.Fatalf("gzip body: status %d: %s", resp.StatusCode(), resp.Body())
		}
	})
}

// TestHugeBodyOverLoopback sends a 10 MB body to a real server: fasthttp
// refuses it with 413 before it is read, and the server keeps serving.
func TestHugeBodyOverLoopback(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.srv.Serve(ln)
	defer f.srv.Shutdown(context.Background())
	url := "http://" + ln.Addr().String() + "/openrtb2/bid"
	before := bidBad("body_too_large").Get()
	resp, err := http.Post(url, "application/json", bytes.NewReader(bytes.Repeat([]byte("a"), 10<<20)))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("10 MB body: status %d, want 413", resp.StatusCode)
		}
		if bidBad("body_too_large").Get() != before+1 {
			t.Fatalf("10 MB body not counted")
		}
	} // a reset connection is also an acceptable refusal
	good, _ := os.ReadFile(filepath.Join("testdata", "requests", "site_banner.json"))
	resp, err = http.Post(url, "application/json", bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after a huge body the server answers %d", resp.StatusCode)
	}
}

func TestNotices(t *testing.T) {
	f := newFixture(t)
	good, _ := os.ReadFile(filepath.Join("testdata", "requests", "site_banner.json"))
	resp := f.do("POST", "/openrtb2/bid", "application/json", good, nil)
	var br openrtb2.BidResponse
	if err := json.Unmarshal(resp.Body(), &br); err != nil {
		t.Fatal(err)
	}
	b := br.SeatBid[0].Bid[0]
	path := func(u, price string) string {
		u = strings.TrimPrefix(u, "https://bid.example")
		return strings.NewReplacer("${AUCTION_PRICE}", price, "${AUCTION_LOSS}", "102").Replace(u)
	}
	spend := func() int64 { _, total := f.deps.Pacer.Spend(&f.campaign); return total }
	tampered := strings.Replace(path(b.NURL, "1.5"), "t=", "t=A", 1)
	cases := []struct {
		name   string
		url    string
		status int
		spend  int64
	}{
		{"forged token", tampered, 403, 0},
		{"no price", path(b.NURL, ""), 400, 0},
		{"price above bid", path(b.NURL, "9.99"), 400, 0},
		{"win", path(b.NURL, "1.5"), 204, 1500},
		{"duplicate win", path(b.NURL, "1.5"), 204, 1500},
		{"billing after win", path(b.BURL, "1.5"), 204, 1500},
		{"duplicate billing", path(b.BURL, "1.5"), 204, 1500},
		{"loss", path(b.LURL, ""), 204, 1500},
	}
	for _, tc := range cases {
		resp := f.do("GET", tc.url, "", nil, nil)
		if resp.StatusCode() != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, resp.StatusCode(), tc.status, resp.Body())
		}
		if got := spend(); got != tc.spend {
			t.Fatalf("%s: spend %d micros, want %d", tc.name, got, tc.spend)
		}
	}
}

func TestClickRedirect(t *testing.T) {
	f := newFixture(t)
	adv := f.campaign.AdvertiserID
	u := string(f.deps.Clicks.AppendClickURL(nil, "", adv, f.campaign.ID, "sku-2"))
	resp := f.do("GET", u, "", nil, nil)
	if resp.StatusCode() != 302 || string(resp.Header.Peek("Location")) != "https://shop.example/p/2" {
		t.Fatalf("click: %d %q", resp.StatusCode(), resp.Header.Peek("Location"))
	}
	for _, bad := range []string{
		strings.Replace(u, "sku-2", "sku-3", 1),           // signature of another product
		strings.Replace(u, "&s=", "&s=x", 1),              // tampered signature
		u + "&url=https%3A%2F%2Fevil.example%2F",          // extra target is ignored, but signature still holds
		"/click?a=" + adv + "&c=x&p=sku-1&s=AAAAAAAAAAAA", // forged
	} {
		resp := f.do("GET", bad, "", nil, nil)
		loc := string(resp.Header.Peek("Location"))
		if strings.Contains(loc, "evil.example") {
			t.Fatalf("open redirect via %s", bad)
		}
		if resp.StatusCode() == 302 && loc != "https://shop.example/p/2" {
			t.Fatalf("%s redirected to %q", bad, loc)
		}
	}
}

// TestNativeImp: a native-capable campaign answers a native imp with a
// native 1.2 response in adm, mtype 4; a banner-only campaign does not bid.
func TestNativeImp(t *testing.T) {
	f := newFixture(t)
	body, _ := os.ReadFile(filepath.Join("testdata", "requests", "native.json"))
	if resp := f.do("POST", "/openrtb2/bid", "application/json", body, nil); resp.StatusCode() != 204 {
		t.Fatalf("banner-only campaign on a native imp: status %d", resp.StatusCode())
	}
	c := f.campaign
	c.Creative.Native = true
	if _, err := f.deps.Campaigns.Update(c); err != nil {
		t.Fatal(err)
	}
	resp := f.do("POST", "/openrtb2/bid", "application/json", body, nil)
	if resp.StatusCode() != 200 {
		t.Fatalf("native: status %d", resp.StatusCode())
	}
	var br openrtb2.BidResponse
	if err := json.Unmarshal(resp.Body(), &br); err != nil {
		t.Fatal(err)
	}
	b := br.SeatBid[0].Bid[0]
	if b.MType != openrtb2.MarkupNative || !strings.HasPrefix(b.CrID, "n:") {
		t.Fatalf("native bid %+v", b)
	}
	var adm struct {
		Ver    string `json:"ver"`
		Assets []struct {
			ID    int64 `json:"id"`
			Title *struct {
				Text string `json:"text"`
			} `json:"title"`
			Img *struct {
				URL string `json:"url"`
			} `json:"img"`
			Data *struct {
				Value string `json:"value"`
			} `json:"data"`
		} `json:"assets"`
		Link struct {
			URL string `json:"url"`
		} `json:"link"`
		ImpTrackers []string `json:"imptrackers"`
	}
	if err := json.Unmarshal([]byte(b.AdM), &adm); err != nil {
		t.Fatalf("adm is not a native response: %v: %s", err, b.AdM)
	}
	if adm.Ver != "1.2" || len(adm.Assets) != 4 || !strings.Contains(adm.Link.URL, "/click?") || len(adm.ImpTrackers) != 1 {
		t.Fatalf("native response %s", b.AdM)
	}
	for _, a := range adm.Assets {
		switch a.ID {
		case 1:
			if a.Title == nil || len([]rune(a.Title.Text)) > 25 {
				t.Fatalf("title asset %+v", a.Title)
			}
		case 2:
			if a.Img == nil || !strings.HasPrefix(a.Img.URL, "https://") {
				t.Fatalf("image asset must be https on a secure imp: %+v", a.Img)
			}
		case 5:
			t.Fatalf("optional icon asset filled without an icon")
		}
	}
}
