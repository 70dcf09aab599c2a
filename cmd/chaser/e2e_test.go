package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prebid/openrtb/v20/openrtb2"
)

// server is a running chaser on loopback for end-to-end tests.
type server struct {
	t                *testing.T
	app              *app
	bidURL, adminURL string
	cancel           context.CancelFunc
	done             chan error
}

const testToken = "test-admin-token-0123456789"

func startServer(t *testing.T, dir string, opts ...appOption) *server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	al, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bidURL := "http://" + bl.Addr().String()
	a, err := openApp(dir, []byte("0123456789abcdef0123456789abcdef"), testToken, bidURL, log, time.Now, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{t: t, app: a, bidURL: bidURL, adminURL: "http://" + al.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.ServeListeners(ctx, bl, al) }()
	t.Cleanup(s.stop)
	for deadline := time.Now().Add(10 * time.Second); !a.ready.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("server not ready after 10s")
		}
		time.Sleep(time.Millisecond)
	}
	return s
}

func (s *server) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	if err := <-s.done; err != nil {
		s.t.Errorf("serve: %v", err)
	}
	if err := s.app.Close(); err != nil {
		s.t.Errorf("close: %v", err)
	}
	s.cancel = nil
}

func (s *server) admin(method, path, ctype string, body string, want int) map[string]any {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.adminURL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func (s *server) bid(body string) (int, *openrtb2.BidResponse) {
	s.t.Helper()
	resp, err := http.Post(s.bidURL+"/openrtb2/bid", "application/json", strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if v := resp.Header.Get("X-Openrtb-Version"); v != "2.6" {
		s.t.Errorf("x-openrtb-version = %q", v)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var br openrtb2.BidResponse
	if err := json.Unmarshal(b, &br); err != nil {
		s.t.Fatalf("bad response JSON: %v: %s", err, b)
	}
	return resp.StatusCode, &br
}

func bidRequest(id, buyeruid string, floor float64) string {
	return fmt.Sprintf(`{"id":%q,"imp":[{"id":"imp-1","banner":{"format":[{"w":728,"h":90},{"w":300,"h":250}]},"bidfloor":%g,"bidfloorcur":"USD"}],
	"site":{"domain":"news.example","page":"https://news.example/"},"device":{"geo":{"country":"KOR"}},"user":{"buyeruid":%q},"at":2}`, id, floor, buyeruid)
}

const feedCSV = `id,title,price,currency,image_url,landing_url,category,brand,in_stock
sku-1,Red Running Shoe,59.90,USD,https://cdn.example/1.jpg,https://shop.example/p/1,shoes,Acme,true
sku-2,"Blue Trail Shoe, waterproof",79.00,USD,https://cdn.example/2.jpg,https://shop.example/p/2,shoes,Acme,true
sku-3,Sold Out Sock,5.00,USD,https://cdn.example/3.jpg,https://shop.example/p/3,socks,Acme,false
`

// TestEndToEnd drives the real servers over loopback: admin API set-up, a
// member gets a bid, a non-member gets 204, and the bid survives a restart.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	adv := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Acme Shoes","domain":"shop.example"}`, 201)
	advID := adv["id"].(string)
	rep := s.admin("PUT", "/v1/advertisers/"+advID+"/products", "text/csv", feedCSV, 200)
	if rep["valid"].(float64) != 3 || rep["in_stock"].(float64) != 2 {
		t.Fatalf("feed report %v", rep)
	}
	aud := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+advID+`","name":"visitors","type":"list"}`, 201)
	audID := aud["id"].(string)
	up := s.admin("POST", "/v1/audiences/"+audID+"/members?id_type=uid", "text/csv", "cookie-a\ncookie-b\ncookie-b\n\n", 200)
	if up["valid"].(float64) != 3 || up["applied"].(float64) != 2 || up["duplicates"].(float64) != 1 {
		t.Fatalf("upload stats %v", up)
	}
	cmp := s.admin("POST", "/v1/campaigns", "application/json", `{"advertiser_id":"`+advID+`","name":"Shoes retargeting",
		"status":"active","currency":"USD","budget":{"daily":100,"total":1000},"pacing":"asap",
		"bid":{"base_cpm":2.5,"max_cpm":6},"targeting":{"audiences":["`+audID+`"],"countries":["KOR"]},
		"creative":{"sizes":["300x250"]}}`, 201)
	cmpID := cmp["id"].(string)

	check := func(s *server) {
		t.Helper()
		code, resp := s.bid(bidRequest("r1", "cookie-a", 1.0))
		if code != 200 {
			t.Fatalf("member: status %d, want 200", code)
		}
		if resp.ID != "r1" || resp.Cur != "USD" || len(resp.SeatBid) != 1 || len(resp.SeatBid[0].Bid) != 1 {
			t.Fatalf("response %+v", resp)
		}
		b := resp.SeatBid[0].Bid[0]
		if b.ImpID != "imp-1" || b.Price < 1.0 || b.Price > 6 || b.CID != cmpID || b.MType != openrtb2.MarkupBanner {
			t.Fatalf("bid %+v", b)
		}
		if b.W != 300 || b.H != 250 || b.NURL == "" || b.BURL == "" || !strings.Contains(b.NURL, "${AUCTION_PRICE}") {
			t.Fatalf("bid size/notices %+v", b)
		}
		if !strings.Contains(b.AdM, "Red Running Shoe") && !strings.Contains(b.AdM, "Blue Trail Shoe, waterproof") {
			t.Fatalf("adm names no product from the feed: %s", b.AdM)
		}
		if strings.Contains(b.AdM, "Sold Out Sock") {
			t.Fatalf("adm shows an out-of-stock product")
		}
		// Floor above max: no bid. Non-member: no bid.
		if code, _ := s.bid(bidRequest("r2", "cookie-a", 7.0)); code != 204 {
			t.Fatalf("floor above max: status %d, want 204", code)
		}
		if code, _ := s.bid(bidRequest("r3", "stranger", 0)); code != 204 {
			t.Fatalf("non-member: status %d, want 204", code)
		}
	}
	check(s)

	// A win notice moves spend once.
	_, resp := s.bid(bidRequest("r4", "cookie-b", 0))
	nurl := strings.Replace(resp.SeatBid[0].Bid[0].NURL, "${AUCTION_PRICE}", "2.0", 1)
	for i := 0; i < 3; i++ {
		r, err := http.Get(nurl)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 204 {
			t.Fatalf("win notice: status %d", r.StatusCode)
		}
	}
	got := s.admin("GET", "/v1/campaigns/"+cmpID, "", "", 200)
	if got["spend_total"].(float64) != 0.002 {
		t.Fatalf("spend after one win at CPM 2.0 sent 3 times = %v, want 0.002", got["spend_total"])
	}

	s.stop()
	s2 := startServer(t, dir)
	check(s2)
	got = s2.admin("GET", "/v1/campaigns/"+cmpID, "", "", 200)
	if got["spend_total"].(float64) != 0.002 {
		t.Fatalf("spend after restart = %v, want 0.002", got["spend_total"])
	}
}

// TestDemoSeed checks the README's promise: after `chaser serve --demo`, a bid
// request for demo-user-1 with a 300×250 banner gets a bid showing a product
// that user viewed; seeding twice does not duplicate anything.
func TestDemoSeed(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := seedDemo(s.app, log); err != nil {
		t.Fatal(err)
	}
	if err := seedDemo(s.app, log); err != nil {
		t.Fatal(err)
	}
	if n := len(s.app.campaigns.List(demoAdvertiser)); n != 1 {
		t.Fatalf("campaigns after two seeds = %d, want 1", n)
	}
	req := `{"id":"demo-1","imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.5,"bidfloorcur":"USD"}],
	"site":{"domain":"news.example"},"user":{"buyeruid":"demo-user-1"}}`
	code, resp := s.bid(req)
	if code != 200 {
		t.Fatalf("demo bid: status %d", code)
	}
	prof, err := s.app.audiences.Profile(demoAdvertiser, s.app.audiences.Pseudonymizer().Of(6, "demo-user-1"))
	if err != nil || len(prof.Events) == 0 {
		t.Fatalf("demo profile: %v %v", prof, err)
	}
	viewed := prof.Events[len(prof.Events)-1].Products[0]
	feed := s.app.catalog.Feed(demoAdvertiser)
	if !bytes.Contains([]byte(resp.SeatBid[0].Bid[0].AdM), []byte(htmlEscape(feed.ByID[viewed].Title))) {
		t.Fatalf("demo ad does not show the viewed product %q: %s", feed.ByID[viewed].Title, resp.SeatBid[0].Bid[0].AdM)
	}
}

func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "'", "&#39;", "<", "&lt;", ">", "&gt;", `"`, "&#34;")
	return r.Replace(s)
}
