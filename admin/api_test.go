package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/campaign"
)

func TestAuthRateLimit(t *testing.T) {
	e := newAdminEnv(t, AuthLimit{Burst: 3, Every: 10 * time.Second})
	for i := 0; i < 3; i++ {
		if r := e.do("GET", "/v1/campaigns", "chk_guess", "", ""); r.status != 401 {
			t.Fatalf("bad key %d: status %d, want 401", i, r.status)
		}
	}
	before := authThrottled.Get()
	r := e.do("GET", "/v1/campaigns", opsAdminToken, "", "")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "10" {
		t.Fatalf("after 3 failures: status %d Retry-After %q, want 429 and 10", r.status, r.header.Get("Retry-After"))
	}
	apiErrOf(t, r)
	if authThrottled.Get() != before+1 {
		t.Fatalf("throttled request not counted")
	}
	if r := e.do("GET", "/healthz", "", "", ""); r.status != 200 {
		t.Fatalf("public routes are not limited: %d", r.status)
	}
	e.clock.Add(4 * time.Second)
	if r := e.do("GET", "/v1/campaigns", "chk_guess", "", ""); r.status != 429 || r.header.Get("Retry-After") != "6" {
		t.Fatalf("4s later: %d Retry-After %q, want 429 and 6", r.status, r.header.Get("Retry-After"))
	}
	e.clock.Add(6 * time.Second)
	if r := e.do("GET", "/v1/campaigns", opsAdminToken, "", ""); r.status != 200 {
		t.Fatalf("after refill the right key works: %d", r.status)
	}
	if r := e.do("GET", "/v1/campaigns", "chk_guess", "", ""); r.status != 401 {
		t.Fatalf("one attempt refilled: %d, want 401", r.status)
	}
	if r := e.do("GET", "/v1/campaigns", "chk_guess", "", ""); r.status != 429 {
		t.Fatalf("then limited again: %d, want 429", r.status)
	}
}

func TestLimiterPerAddressAndOverflow(t *testing.T) {
	clk := &testClock{t: time.Unix(1e9, 0)}
	l := newLimiter(AuthLimit{Burst: 2, Every: time.Minute, MaxClients: 2}, clk.Now)
	l.fail("10.0.0.1")
	l.fail("10.0.0.1")
	if l.wait("10.0.0.1") != time.Minute || l.wait("10.0.0.2") != 0 {
		t.Fatalf("buckets are per address: %v %v", l.wait("10.0.0.1"), l.wait("10.0.0.2"))
	}
	l.fail("10.0.0.2")
	// The table is full: new addresses share the overflow bucket.
	l.fail("10.0.0.3")
	l.fail("10.0.0.4")
	if l.wait("10.0.0.5") == 0 {
		t.Fatalf("overflow bucket not shared by untracked addresses")
	}
	if len(l.clients) > 3 {
		t.Fatalf("%d buckets for MaxClients 2 (+ overflow)", len(l.clients))
	}
	clk.Add(3 * time.Minute)
	l.fail("10.0.0.6") // sweeps refilled buckets
	if len(l.clients) > 3 || l.wait("10.0.0.1") != 0 {
		t.Fatalf("refilled buckets not swept: %d", len(l.clients))
	}
}

func TestPagination(t *testing.T) {
	e := newAdminEnv(t, AuthLimit{})
	want := map[string]bool{e.cmpA: true}
	for i := 0; i < 24; i++ {
		c, err := e.deps.Campaigns.Create(campaign.Campaign{AdvertiserID: e.advA, Name: fmt.Sprint("c", i), Currency: "USD",
			Budget: campaign.Budget{DailyMicros: 1e6}, Bid: campaign.Bid{BaseCPMMicros: 1e6, MaxCPMMicros: 1e6},
			Targeting: campaign.Targeting{Audiences: []string{e.audA}}, Creative: campaign.Creative{Sizes: []campaign.Size{{W: 300, H: 250}}}})
		if err != nil {
			t.Fatal(err)
		}
		want[c.ID] = true
	}
	seen := map[string]bool{}
	last, cursor, pages := "", "", 0
	for {
		var page struct {
			Campaigns  []struct{ ID string }
			NextCursor string `json:"next_cursor"`
		}
		e.mustJSON(e.do("GET", "/v1/campaigns?limit=10&cursor="+cursor, e.keyA, "", ""), 200, &page)
		pages++
		for _, c := range page.Campaigns {
			if seen[c.ID] || c.ID <= last {
				t.Fatalf("page %d: %s repeated or out of order", pages, c.ID)
			}
			seen[c.ID], last = true, c.ID
		}
		if page.NextCursor == "" {
			if len(page.Campaigns) != 5 {
				t.Fatalf("last page has %d campaigns, want 5", len(page.Campaigns))
			}
			break
		}
		if len(page.Campaigns) != 10 {
			t.Fatalf("page %d has %d campaigns, want 10", pages, len(page.Campaigns))
		}
		cursor = page.NextCursor
	}
	if pages != 3 || len(seen) != len(want) {
		t.Fatalf("%d pages, %d campaigns; want 3 and %d", pages, len(seen), len(want))
	}
	// A campaign deleted between pages does not disturb the next page: the
	// cursor is the last id seen, not an offset.
	var p1, p2 struct {
		Campaigns  []struct{ ID string }
		NextCursor string `json:"next_cursor"`
	}
	e.mustJSON(e.do("GET", "/v1/campaigns?limit=10", e.keyA, "", ""), 200, &p1)
	e.mustJSON(e.do("DELETE", "/v1/campaigns/"+p1.Campaigns[9].ID, e.keyA, "", ""), 204, nil)
	e.mustJSON(e.do("DELETE", "/v1/campaigns/"+p1.Campaigns[0].ID, e.keyA, "", ""), 204, nil)
	e.mustJSON(e.do("GET", "/v1/campaigns?limit=10&cursor="+p1.NextCursor, e.keyA, "", ""), 200, &p2)
	if len(p2.Campaigns) != 10 || p2.Campaigns[0].ID <= p1.Campaigns[9].ID {
		t.Fatalf("page after a deletion: %+v", p2.Campaigns)
	}
	for _, c := range p2.Campaigns {
		if !seen[c.ID] {
			t.Fatalf("page 2 holds %s, unseen before", c.ID)
		}
	}
	for _, tc := range []struct{ q, field string }{
		{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=ten", "limit"}, {"cursor=%21%21", "cursor"},
	} {
		r := e.do("GET", "/v1/campaigns?"+tc.q, e.keyA, "", "")
		if r.status != 400 || apiErrOf(t, r).Field != tc.field {
			t.Fatalf("%s: %d %s", tc.q, r.status, r.body)
		}
	}
	var st struct{ Campaigns []struct{ Status string } }
	e.mustJSON(e.do("PATCH", "/v1/campaigns/"+e.cmpA, e.keyA, "application/merge-patch+json", `{"status":"paused"}`), 200, nil)
	e.mustJSON(e.do("GET", "/v1/campaigns?status=paused", e.keyA, "", ""), 200, &st)
	if len(st.Campaigns) != 1 || st.Campaigns[0].Status != "paused" {
		t.Fatalf("status filter: %+v", st.Campaigns)
	}
}

func TestKeys(t *testing.T) {
	e := newAdminEnv(t, AuthLimit{})
	var created struct{ ID, Key string }
	e.mustJSON(e.do("POST", "/v1/advertisers/"+e.advB+"/keys", opsAdminToken, "", ""), 201, &created)
	if !strings.HasPrefix(created.ID, "key_") || !strings.HasPrefix(created.Key, "chk_") {
		t.Fatalf("key %+v", created)
	}
	if r := e.do("GET", "/v1/campaigns", created.Key, "", ""); r.status != 200 {
		t.Fatalf("new key: %d", r.status)
	}
	r := e.do("GET", "/v1/advertisers/"+e.advB+"/keys", e.keyB, "", "")
	if r.status != 200 || strings.Contains(string(r.body), created.Key) || strings.Contains(string(r.body), hashKey(created.Key)) {
		t.Fatalf("key list shows a key or its hash: %s", r.body)
	}
	var list struct{ Keys []keyView }
	e.mustJSON(r, 200, &list)
	if len(list.Keys) != 2 {
		t.Fatalf("B has %d keys, want 2: %s", len(list.Keys), r.body)
	}
	if r := e.do("DELETE", "/v1/advertisers/"+e.advB+"/keys/"+created.ID, e.keyB, "", ""); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/campaigns", created.Key, "", ""); r.status != 401 {
		t.Fatalf("revoked key: %d, want 401", r.status)
	}
	if r := e.do("DELETE", "/v1/advertisers/"+e.advB+"/keys/"+created.ID, opsAdminToken, "", ""); r.status != 204 {
		t.Fatalf("revoke twice: %d", r.status)
	}
	if r := e.do("DELETE", "/v1/advertisers/"+e.advB+"/keys/key_nope", opsAdminToken, "", ""); r.status != 404 {
		t.Fatalf("revoke unknown: %d", r.status)
	}
	e.mustJSON(e.do("GET", "/v1/advertisers/"+e.advB+"/keys", opsAdminToken, "", ""), 200, &list)
	revoked := 0
	for _, k := range list.Keys {
		if k.RevokedAt != "" {
			revoked++
		}
	}
	if revoked != 1 {
		t.Fatalf("%d revoked keys listed, want 1: %+v", revoked, list.Keys)
	}
	if r := e.do("GET", "/v1/campaigns", e.keyB, "", ""); r.status != 200 {
		t.Fatalf("B's other key revoked too: %d", r.status)
	}
	if r := e.do("GET", "/v1/campaigns", "Bearer "+strings.Repeat("x", 5000), "", ""); r.status != 401 {
		t.Fatalf("huge key: %d", r.status)
	}
}

func TestValidationErrors(t *testing.T) {
	e := newAdminEnv(t, AuthLimit{Burst: 1000})
	good := func(mut func(m map[string]any)) string {
		m := map[string]any{"advertiser_id": e.advA, "name": "x", "budget": map[string]any{"daily": 10.0},
			"bid": map[string]any{"base_cpm": 1.0, "max_cpm": 2.0}, "targeting": map[string]any{"audiences": []any{e.audA}},
			"creative": map[string]any{"sizes": []any{"300x250"}}}
		mut(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		field                           string
	}{
		{"unknown field", "POST", "/v1/campaigns", "application/json", good(func(m map[string]any) { m["budjet"] = 1 }), 400, "budjet"},
		{"wrong type", "POST", "/v1/campaigns", "application/json", good(func(m map[string]any) { m["name"] = 5 }), 400, "name"},
		{"negative budget", "POST", "/v1/campaigns", "application/json", good(func(m map[string]any) { m["budget"] = map[string]any{"daily": -1} }), 400, "budget.daily"},
		{"max below base", "POST", "/v1/campaigns", "application/json", good(func(m map[string]any) { m["bid"] = map[string]any{"base_cpm": 3, "max_cpm": 2} }), 400, "bid.max_cpm"},
		{"bad size", "POST", "/v1/campaigns", "application/json", good(func(m map[string]any) { m["creative"] = map[string]any{"sizes": []any{"big"}} }), 400, "creative.sizes[0]"},
		{"frequency cap over the limit", "POST", "/v1/campaigns", "application/json", good(func(m map[string]any) { m["frequency_cap"] = map[string]any{"impressions": 1000, "per": "24h"} }), 400, "frequency_cap.impressions"},
		{"frequency cap period too short", "POST", "/v1/campaigns", "application/json", good(func(m map[string]any) { m["frequency_cap"] = map[string]any{"impressions": 3, "per": "30s"} }), 400, "frequency_cap.per"},
		{"frequency cap period too long", "POST", "/v1/campaigns", "application/json", good(func(m map[string]any) { m["frequency_cap"] = map[string]any{"impressions": 3, "per": "400d"} }), 400, "frequency_cap.per"},
		{"patch frequency cap over the limit", "PATCH", "/v1/campaigns/" + e.cmpA, "application/merge-patch+json", `{"frequency_cap":{"impressions":256,"per":"24h"}}`, 400, "frequency_cap.impressions"},
		{"no audience", "POST", "/v1/campaigns", "application/json", good(func(m map[string]any) { m["targeting"] = map[string]any{} }), 400, "targeting.audiences"},
		{"unknown advertiser", "POST", "/v1/campaigns", "application/json", good(func(m map[string]any) { m["advertiser_id"] = "adv_nope" }), 400, "advertiser_id"},
		{"trailing data", "POST", "/v1/campaigns", "application/json", good(func(map[string]any) {}) + `{}`, 400, ""},
		{"empty body", "POST", "/v1/campaigns", "application/json", "", 400, ""},
		{"not JSON", "POST", "/v1/campaigns", "text/plain", good(func(map[string]any) {}), 415, ""},
		{"too large", "POST", "/v1/campaigns", "application/json", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, ""},
		{"patch read-only", "PATCH", "/v1/campaigns/" + e.cmpA, "application/merge-patch+json", `{"id":"cmp_x"}`, 400, "id"},
		{"patch spend", "PATCH", "/v1/campaigns/" + e.cmpA, "application/merge-patch+json", `{"spend_total":0}`, 400, "spend_total"},
		{"patch unknown", "PATCH", "/v1/campaigns/" + e.cmpA, "application/merge-patch+json", `{"targeting":{"audiencez":[]}}`, 400, "audiencez"},
		{"patch bad status", "PATCH", "/v1/campaigns/" + e.cmpA, "application/merge-patch+json", `{"status":"running"}`, 400, "status"},
		{"patch not an object", "PATCH", "/v1/campaigns/" + e.cmpA, "application/merge-patch+json", `[1]`, 400, ""},
		{"patch wrong media", "PATCH", "/v1/campaigns/" + e.cmpA, "text/csv", `{}`, 415, ""},
		{"advertiser without name", "POST", "/v1/advertisers", "application/json", `{"name":" "}`, 400, "name"},
		{"advertiser bad domain", "PATCH", "/v1/advertisers/" + e.advA, "application/json", `{"domain":"https://x"}`, 400, "domain"},
		{"advertiser bad country", "PATCH", "/v1/advertisers/" + e.advA, "application/json", `{"country":"KR"}`, 400, "country"},
		{"erase unknown type", "POST", "/v1/privacy/erase", "application/json", `{"type":"ssn","value":"1"}`, 400, "type"},
		{"erase bad email", "POST", "/v1/privacy/erase", "application/json", `{"type":"email","value":"nobody"}`, 400, "value"},
		{"unknown path", "GET", "/v1/nothing", "", "", 404, ""},
		{"wrong method", "PUT", "/v1/campaigns", "application/json", "{}", 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, opsAdminToken, tc.ctype, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if ae := apiErrOf(t, r); ae.Field != tc.field {
				t.Fatalf("field %q, want %q (%s)", ae.Field, tc.field, ae.Error)
			}
		})
	}
	if ae := apiErrOf(t, e.do("POST", "/v1/campaigns", opsAdminToken, "application/json",
		good(func(m map[string]any) { m["frequency_cap"] = map[string]any{"impressions": 1000, "per": "24h"} }))); !strings.Contains(ae.Error, "255") {
		t.Errorf("frequency cap over the limit: error %q does not name the limit 255", ae.Error)
	}
	var c struct{ End *string }
	e.mustJSON(e.do("PATCH", "/v1/campaigns/"+e.cmpA, opsAdminToken, "application/merge-patch+json", `{"end":"2027-01-01T00:00:00Z","budget":{"total":500}}`), 200, &c)
	if c.End == nil {
		t.Fatal("end not set")
	}
	var c2 struct {
		End    *string
		Budget struct{ Daily, Total float64 }
	}
	e.mustJSON(e.do("PATCH", "/v1/campaigns/"+e.cmpA, opsAdminToken, "application/merge-patch+json", `{"end":null}`), 200, &c2)
	if c2.End != nil || c2.Budget.Daily != 100 || c2.Budget.Total != 500 {
		t.Fatalf("merge patch: %+v", c2)
	}
}

func TestEraseEndpoint(t *testing.T) {
	e := newAdminEnv(t, AuthLimit{})
	var out struct{ Pseudonym string }
	e.mustJSON(e.do("POST", "/v1/privacy/erase", opsAdminToken, "application/json", `{"type":"email","value":"  Some.One@Example.com "}`), 200, &out)
	want, err := e.deps.Audiences.Pseudonymizer().Raw(1, "some.one@example.com", "") // IDEmail
	if err != nil {
		t.Fatal(err)
	}
	if out.Pseudonym != want.String() || len(e.eraser.seen) != 1 || e.eraser.seen[0] != want {
		t.Fatalf("erased %v (answer %s), want the normalised e-mail's pseudonym %s", e.eraser.seen, out.Pseudonym, want)
	}
	if r := e.do("POST", "/v1/privacy/erase", e.keyA, "application/json", `{"type":"email","value":"a@b.example"}`); r.status != 403 {
		t.Fatalf("advertiser key erases: %d", r.status)
	}
	e.api.d.Erasers = nil
	if r := e.do("POST", "/v1/privacy/erase", opsAdminToken, "application/json", `{"type":"uid","value":"u-1"}`); r.status != 503 {
		t.Fatalf("without erasers: %d, want 503", r.status)
	}
}

func TestOperations(t *testing.T) {
	e := newAdminEnv(t, AuthLimit{})
	ready := false
	e.api.d.Ready = func() bool { return ready }
	if r := e.do("GET", "/readyz", "", "", ""); r.status != 503 {
		t.Fatalf("readyz before ready: %d", r.status)
	}
	ready = true
	if r := e.do("GET", "/readyz", "", "", ""); r.status != 200 {
		t.Fatalf("readyz when ready: %d", r.status)
	}
	e.do("GET", "/v1/campaigns/"+e.cmpA, e.keyA, "", "")
	e.do("POST", "/v1/audiences/"+e.audA+"/members?id_type=uid", e.keyA, "text/csv", "x-1\nx-2\n")
	r := e.do("GET", "/metrics", "", "", "")
	for _, want := range []string{
		`chaser_admin_requests_total{route="GET /v1/campaigns/{id}",code="2xx"}`,
		`chaser_admin_request_duration_seconds_bucket{route="GET /v1/campaigns/{id}",le=`,
		`chaser_audience_size{audience="` + e.audA + `",advertiser="` + e.advA + `",type="list"} 3`,
		`chaser_upload_jobs_total{kind="audience_members",outcome="ok"}`,
		`chaser_upload_jobs_running 0`,
		`chaser_audiences{status="ready"} 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if r := e.do("GET", "/debug/pprof/goroutine?debug=1", opsAdminToken, "", ""); r.status != 200 || !strings.Contains(string(r.body), "goroutine") {
		t.Fatalf("pprof: %d", r.status)
	}
	if r := e.do("GET", "/debug/pprof/heap", e.keyA, "", ""); r.status != 403 {
		t.Fatalf("pprof with an advertiser key: %d", r.status)
	}
}

// TestPanicIsA500 checks the recovery of a handler panic.
func TestPanicIsA500(t *testing.T) {
	a := New(Deps{AdminToken: opsAdminToken}) // no store: handlers that need one panic
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/advertisers/adv_x", nil)
	req.Header.Set("Authorization", "Bearer "+opsAdminToken)
	a.ServeHTTP(rec, req)
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "internal error") {
		t.Fatalf("panic: %d %s", rec.Code, rec.Body)
	}
}

func TestAudienceListPages(t *testing.T) {
	e := newAdminEnv(t, AuthLimit{})
	for i := 0; i < 4; i++ {
		e.mustJSON(e.do("POST", "/v1/audiences", e.keyA, "application/json", fmt.Sprintf(`{"name":"a%d"}`, i)), 201, nil)
	}
	var p1, p2 struct {
		Audiences []struct {
			ID           string
			AdvertiserID string `json:"advertiser_id"`
		}
		NextCursor string `json:"next_cursor"`
	}
	e.mustJSON(e.do("GET", "/v1/audiences?limit=3", e.keyA, "", ""), 200, &p1)
	e.mustJSON(e.do("GET", "/v1/audiences?limit=3&cursor="+p1.NextCursor, e.keyA, "", ""), 200, &p2)
	if len(p1.Audiences) != 3 || len(p2.Audiences) != 2 || p2.NextCursor != "" || p2.Audiences[0].ID <= p1.Audiences[2].ID {
		t.Fatalf("pages %+v %+v", p1, p2)
	}
	for _, au := range append(p1.Audiences, p2.Audiences...) {
		if au.AdvertiserID != e.advA {
			t.Fatalf("A's list holds %+v", au)
		}
	}
}
