package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestCartReminderEndToEnd drives the real servers over loopback: a browser
// (with a cookie jar) hits the pixel as it views and carts products, which
// puts its cookie id in a cart-abandoner rule audience; a bid request with
// that id as user.buyeruid gets a bid from the cart-reminder campaign with
// the offer line; a purchase takes the user out, and the next request gets
// 204. The segment survives a restart (rebuilt from the stored profiles).
func TestCartReminderEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	advID := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Acme Shoes","domain":"shop.example"}`, 201)["id"].(string)
	s.admin("PUT", "/v1/advertisers/"+advID+"/products", "text/csv", feedCSV, 200)
	const abandoners = `{"all":[{"event":"add_to_cart","within_days":7},{"not":{"event":"purchase","within_days":7}}]}`
	aud := s.admin("POST", "/v1/audiences", "application/json",
		`{"advertiser_id":"`+advID+`","name":"Cart abandoners","type":"rule","rule":`+abandoners+`}`, 201)
	audID := aud["id"].(string)
	if aud["type"] != "rule" {
		t.Fatalf("audience %v", aud)
	}
	cmp := s.admin("POST", "/v1/campaigns", "application/json", `{"advertiser_id":"`+advID+`","name":"Cart reminder",
		"status":"active","currency":"USD","budget":{"daily":100,"total":1000},"pacing":"asap",
		"bid":{"base_cpm":2.5,"max_cpm":6},"targeting":{"audiences":["`+audID+`"]},
		"creative":{"sizes":["300x250"],"offer":"10% off today"}}`, 201)
	cmpID := cmp["id"].(string)

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar}
	pixel := func(q string) {
		t.Helper()
		resp, err := browser.Get(s.bidURL + "/px?adv=" + advID + "&" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" || !strings.HasPrefix(string(b), "GIF89a") {
			t.Fatalf("pixel %s: %d %s", q, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	pixel("ev=product_view&pid=sku-1")
	pixel("ev=product_view&pid=sku-2")
	u, _ := url.Parse(s.bidURL)
	var uid string
	for _, c := range jar.Cookies(u) {
		if c.Name == "chaser_uid" {
			uid = c.Value
		}
	}
	if len(uid) != 32 {
		t.Fatalf("no chaser_uid cookie after the pixel: %v", jar.Cookies(u))
	}
	// Viewers are not cart abandoners.
	if code, _ := s.bid(bidRequest("v1", uid, 0.5)); code != 204 {
		t.Fatalf("viewer: status %d, want 204", code)
	}
	pixel("ev=add_to_cart&pid=sku-2&val=79&cur=USD")
	// The recommender saw the events (OnEvent): both products, and their pair.
	if st := s.app.recs.For(advID).Stats(); st.Items < 2 || st.Pairs == 0 {
		t.Fatalf("recommender after the pixel events: %+v", st)
	}
	est := s.admin("POST", "/v1/audiences/estimate", "application/json", `{"advertiser_id":"`+advID+`","rule":`+abandoners+`}`, 200)
	if est["size"].(float64) != 1 {
		t.Fatalf("estimate %v", est)
	}
	if got := s.admin("GET", "/v1/audiences/"+audID, "", "", 200); got["size"].(float64) != 1 || got["status"] != "ready" {
		t.Fatalf("audience after the cart %v", got)
	}

	checkReminder := func(s *server, id string) {
		t.Helper()
		code, resp := s.bid(bidRequest(id, uid, 0.5))
		if code != 200 {
			t.Fatalf("cart abandoner: status %d, want 200", code)
		}
		b := resp.SeatBid[0].Bid[0]
		if b.CID != cmpID || !strings.Contains(b.AdM, "10% off today") || !strings.Contains(b.AdM, "Blue Trail Shoe") {
			t.Fatalf("bid %s: adm without the offer or the carted product: %s", b.CID, b.AdM)
		}
	}
	checkReminder(s, "c1")

	// The segment is rebuilt from profiles after a restart.
	s.stop()
	s = startServer(t, dir)
	checkReminder(s, "c2")

	// A purchase takes them out at once.
	pixel("ev=purchase&pid=sku-2&val=79&cur=USD&evid=order-1")
	if code, _ := s.bid(bidRequest("p1", uid, 0.5)); code != 204 {
		t.Fatalf("after the purchase: status %d, want 204", code)
	}
	if got := s.admin("GET", "/v1/audiences/"+audID, "", "", 200); got["size"].(float64) != 0 {
		t.Fatalf("audience after the purchase %v", got)
	}
}

// TestEventsAPIEndToEnd sends server-to-server events with an advertiser
// key; a line forging another advertiser is refused and stores nothing.
func TestEventsAPIEndToEnd(t *testing.T) {
	s := startServer(t, t.TempDir())
	advID := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Acme"}`, 201)["id"].(string)
	otherID := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Other"}`, 201)["id"].(string)
	key := s.admin("POST", "/v1/advertisers/"+advID+"/keys", "", "", 201)["key"].(string)
	ts := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	body := `{"event":"add_to_cart","uid":"cookie-x","products":["sku-1"],"ts":"` + ts + `"}
{"advertiser_id":"` + otherID + `","event":"purchase","uid":"cookie-x","value":10}
{"event":"add_to_cart","uid":"cookie-y","products":["sku-1"]`
	req, _ := http.NewRequest("POST", s.adminURL+"/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"accepted": 1`) || !strings.Contains(string(b), `"rejected": 2`) ||
		!strings.Contains(string(b), `"line": 2`) || !strings.Contains(string(b), "does not match the API key's advertiser") ||
		!strings.Contains(string(b), `"line": 3`) {
		t.Fatalf("events: %d %s", resp.StatusCode, b)
	}
	pz := s.app.audiences.Pseudonymizer()
	if p, _ := s.app.audiences.Profile(otherID, pz.Of(6, "cookie-x")); len(p.Events) != 0 {
		t.Fatalf("forged line stored: %+v", p)
	}
	if p, _ := s.app.audiences.Profile(advID, pz.Of(6, "cookie-x")); len(p.Events) != 1 {
		t.Fatalf("good line not stored: %+v", p)
	}
}

// TestDemoRuleAudience: the demo's cart-abandoner rule audience is filled
// from the seeded events (every third demo user carted).
func TestDemoRuleAudience(t *testing.T) {
	s := startServer(t, t.TempDir())
	if err := seedDemo(s.app, s.app.log); err != nil {
		t.Fatal(err)
	}
	s.app.audiences.WaitRules()
	var found bool
	for _, a := range s.app.audiences.List(demoAdvertiser) {
		if a.Type != "rule" {
			continue
		}
		found = true
		if a.Status != "ready" || a.Size != demoUsers/3 {
			t.Fatalf("demo rule audience %+v, want ready with %d members", a, demoUsers/3)
		}
		pz := s.app.audiences.Pseudonymizer()
		snap := s.app.audiences.Snapshot()
		if !snap.Contains(a.ID, pz.Of(6, "demo-user-3")) || snap.Contains(a.ID, pz.Of(6, "demo-user-1")) {
			t.Fatal("demo-user-3 (carted) should be in, demo-user-1 (viewed only) out")
		}
	}
	if !found {
		t.Fatal("no demo rule audience")
	}
}

// TestEmailListReachesCookieEndToEnd: an advertiser uploads a CRM list of
// e-mails; a browser logs in on the site (the pixel sends the hashed
// e-mail along with Chaser's cookie); a bid request carrying only that
// cookie as user.buyeruid now matches the list's campaign.
func TestEmailListReachesCookieEndToEnd(t *testing.T) {
	s := startServer(t, t.TempDir())
	advID := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Acme"}`, 201)["id"].(string)
	s.admin("PUT", "/v1/advertisers/"+advID+"/products", "text/csv", feedCSV, 200)
	audID := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+advID+`","name":"CRM","type":"list"}`, 201)["id"].(string)
	s.admin("POST", "/v1/audiences/"+audID+"/members?id_type=email", "text/csv", "Loyal.Customer@Example.com\n", 200)
	s.admin("POST", "/v1/campaigns", "application/json", `{"advertiser_id":"`+advID+`","name":"CRM","status":"active",
		"currency":"USD","budget":{"daily":100},"pacing":"asap","bid":{"base_cpm":2,"max_cpm":5},
		"targeting":{"audiences":["`+audID+`"]},"creative":{"sizes":["300x250"]}}`, 201)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	get := func(q string) {
		t.Helper()
		resp, err := browser.Get(s.bidURL + "/px?adv=" + advID + "&" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get("ev=page_view")
	u, _ := url.Parse(s.bidURL)
	var uid string
	for _, c := range jar.Cookies(u) {
		if c.Name == "chaser_uid" {
			uid = c.Value
		}
	}
	if uid == "" {
		t.Fatal("no cookie")
	}
	if code, _ := s.bid(bidRequest("l1", uid, 0.5)); code != 204 {
		t.Fatalf("before login: status %d, want 204", code)
	}
	h := sha256.Sum256([]byte("loyal.customer@example.com"))
	get("ev=login&em=" + hex.EncodeToString(h[:]))
	if code, _ := s.bid(bidRequest("l2", uid, 0.5)); code != 200 {
		t.Fatalf("after login: status %d, want 200", code)
	}
}

// TestFeedChangeRefreshesRules: a rule over a category follows the product
// feed: when a new feed moves the product out of the category, the viewer
// leaves the audience.
func TestFeedChangeRefreshesRules(t *testing.T) {
	s := startServer(t, t.TempDir())
	advID := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Acme"}`, 201)["id"].(string)
	s.admin("PUT", "/v1/advertisers/"+advID+"/products", "text/csv", feedCSV, 200) // sku-1 is in "shoes"
	audID := s.admin("POST", "/v1/audiences", "application/json",
		`{"advertiser_id":"`+advID+`","name":"Shoe viewers","type":"rule","rule":{"event":"product_view","category":"shoes"}}`, 201)["id"].(string)
	resp, err := http.Get(s.bidURL + "/px?adv=" + advID + "&ev=product_view&pid=sku-1&uid=viewer-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s.app.audiences.WaitRules()
	if got := s.admin("GET", "/v1/audiences/"+audID, "", "", 200); got["size"].(float64) != 1 {
		t.Fatalf("shoe viewers %v", got)
	}
	s.admin("PUT", "/v1/advertisers/"+advID+"/products", "text/csv", "id,title,price,currency,image_url,landing_url,category,brand,in_stock\n"+
		"sku-1,Red Running Shoe,59.90,USD,https://cdn.example/1.jpg,https://shop.example/p/1,sale,Acme,true\n", 200)
	s.app.audiences.WaitRules()
	if got := s.admin("GET", "/v1/audiences/"+audID, "", "", 200); got["size"].(float64) != 0 {
		t.Fatalf("shoe viewers after sku-1 moved to sale: %v", got)
	}
}
