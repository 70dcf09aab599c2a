package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCampaignReport: over loopback, a bid, its win, impression and a click
// show up in the campaign's hourly report; an advertiser key sees its own
// campaigns' reports only; bad ranges are refused.
func TestCampaignReport(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	adv := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Shop","domain":"shop.example"}`, 201)["id"].(string)
	other := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Other"}`, 201)["id"].(string)
	s.admin("PUT", "/v1/advertisers/"+adv+"/products", "text/csv", feedCSV, 200)
	aud := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+adv+`","name":"v","type":"list"}`, 201)["id"].(string)
	s.admin("POST", "/v1/audiences/"+aud+"/members?id_type=uid", "text/csv", "cookie-a\n", 200)
	cmp := s.admin("POST", "/v1/campaigns", "application/json", `{"advertiser_id":"`+adv+`","name":"c","currency":"USD",
		"budget":{"daily":50},"pacing":"even","bid":{"base_cpm":2,"max_cpm":4},"frequency_cap":{"impressions":2,"per":"24h"},
		"targeting":{"audiences":["`+aud+`"]},"creative":{"sizes":["300x250"]}}`, 201)["id"].(string)

	code, resp := s.bid(bidRequest("rep-1", "cookie-a", 0.5))
	if code != 200 {
		t.Fatalf("bid: %d", code)
	}
	b := resp.SeatBid[0].Bid[0]
	get := func(u string) int {
		r, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if c := get(strings.NewReplacer("${AUCTION_PRICE}", "1.25", "${AUCTION_MIN_TO_WIN}", "1.1").Replace(b.NURL)); c != 204 {
		t.Fatalf("win: %d", c)
	}
	imp := b.AdM[strings.Index(b.AdM, s.bidURL+"/notice/imp"):]
	imp = strings.ReplaceAll(imp[:strings.Index(imp, `'`)], "&amp;", "&")
	if c := get(imp); c != 200 {
		t.Fatalf("imp: %d", c)
	}
	click := b.AdM[strings.Index(b.AdM, s.bidURL+"/click"):]
	click = strings.ReplaceAll(click[:strings.Index(click, `'`)], "&amp;", "&")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if r, err := noRedirect.Get(click); err != nil || r.StatusCode != 302 {
		t.Fatalf("click: %v %v", r, err)
	}

	rep := s.admin("GET", "/v1/campaigns/"+cmp+"/report", "", "", 200)
	rows := rep["rows"].([]any)
	if len(rows) != 24 {
		t.Fatalf("default report: %d rows, want the last 24 hours", len(rows))
	}
	var got map[string]float64
	for _, r := range rows {
		m := r.(map[string]any)
		if m["bids"].(float64) > 0 {
			got = map[string]float64{}
			for k, v := range m {
				if f, ok := v.(float64); ok {
					got[k] = f
				}
			}
		}
	}
	want := map[string]float64{"requests_matched": 1, "bids": 1, "wins": 1, "impressions": 1, "clicks": 1, "spend": 0.00125}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("report row %v: %s = %v, want %v", got, k, got[k], v)
		}
	}
	pc := rep["pacing"].(map[string]any)
	if pc["mode"] != "even" || pc["spend_today"].(float64) != 0.00125 || pc["daily_budget_effective"].(float64) != 50 {
		t.Fatalf("pacing state %v", pc)
	}

	// Ranges.
	hour := time.Now().UTC().Truncate(time.Hour)
	q := "?from=" + hour.Format(time.RFC3339) + "&to=" + hour.Add(time.Hour).Format(time.RFC3339)
	if n := len(s.admin("GET", "/v1/campaigns/"+cmp+"/report"+q, "", "", 200)["rows"].([]any)); n != 1 {
		t.Fatalf("one-hour range: %d rows", n)
	}
	for _, bad := range []string{"?from=yesterday", "?to=2026-13-01", "?from=2026-01-10&to=2026-01-01", "?from=2026-01-01&to=2026-03-01"} {
		s.admin("GET", "/v1/campaigns/"+cmp+"/report"+bad, "", "", 400)
	}
	s.admin("GET", "/v1/campaigns/cmp_nope/report", "", "", 404)

	// Advertiser keys: own campaign yes, someone else's no.
	key := func(adv string) string {
		return s.admin("POST", "/v1/advertisers/"+adv+"/keys", "", "", 201)["key"].(string)
	}
	for _, c := range []struct {
		key  string
		want int
	}{{key(adv), 200}, {key(other), 404}, {"wrong", 401}} {
		req, _ := http.NewRequest("GET", s.adminURL+"/v1/campaigns/"+cmp+"/report", nil)
		req.Header.Set("Authorization", "Bearer "+c.key)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != c.want {
			t.Fatalf("key for report: %d, want %d: %s", r.StatusCode, c.want, body)
		}
		if c.want == 200 && !json.Valid(body) {
			t.Fatalf("report is not JSON: %s", body)
		}
	}

	// A restart keeps the figures.
	s.stop()
	s2 := startServer(t, dir)
	rows = s2.admin("GET", "/v1/campaigns/"+cmp+"/report", "", "", 200)["rows"].([]any)
	found := false
	for _, r := range rows {
		m := r.(map[string]any)
		if m["bids"].(float64) == 1 && m["wins"].(float64) == 1 && m["clicks"].(float64) == 1 && m["spend"].(float64) == 0.00125 {
			found = true
		}
	}
	if !found {
		t.Fatalf("report after restart lost figures: %v", rows)
	}
}
