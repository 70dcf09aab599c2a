package admin

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/creative"
	"github.com/chaser-dsp/chaser/store"
)

const testAdminToken = "admin-test-token-0123456789"

type eventsFixture struct {
	t    *testing.T
	url  string
	aud  *audience.Manager
	cs   *campaign.Store
	adv  string // advertiser with a key
	key  string
	adv2 string
	now  time.Time
}

func newEventsFixture(t *testing.T) *eventsFixture {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	cs, err := campaign.Open(db, clock)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := creative.OpenCatalog(db)
	if err != nil {
		t.Fatal(err)
	}
	am, err := audience.NewManager(db, audience.Options{Secret: []byte("admin-test-secret-0123456789abcdef"), Now: clock, Logger: log,
		Events: audience.EventOptions{CategoryOf: func(adv, p string) string {
			if f := cat.Feed(adv); f != nil && f.ByID[p] != nil {
				return f.ByID[p].Category
			}
			return ""
		}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(am.CloseRules)
	srv := httptest.NewServer(New(Deps{DB: db, Campaigns: cs, Audiences: am, Catalog: cat, AdminToken: testAdminToken, Now: clock, Logger: log}))
	t.Cleanup(srv.Close)
	f := &eventsFixture{t: t, url: srv.URL, aud: am, cs: cs, now: now}
	f.adv = f.call(testAdminToken, "POST", "/v1/advertisers", "application/json", `{"name":"Shoes"}`, 201)["id"].(string)
	f.adv2 = f.call(testAdminToken, "POST", "/v1/advertisers", "application/json", `{"name":"Hats"}`, 201)["id"].(string)
	f.key = f.call(testAdminToken, "POST", "/v1/advertisers/"+f.adv+"/keys", "", "", 201)["key"].(string)
	feed := "id,title,price,currency,image_url,landing_url,category,brand,in_stock\n" +
		"sku-1,Red Shoe,59.90,USD,https://cdn.example/1.jpg,https://shop.example/p/1,shoes,Acme,true\n" +
		"sku-2,Green Hat,19.00,USD,https://cdn.example/2.jpg,https://shop.example/p/2,hats,Acme,true\n"
	f.call(f.key, "PUT", "/v1/advertisers/"+f.adv+"/products", "text/csv", feed, 200)
	return f
}

func (f *eventsFixture) do(key, method, path, ctype string, body []byte, hdr map[string]string) (int, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.url+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (f *eventsFixture) call(key, method, path, ctype, body string, want int) map[string]any {
	f.t.Helper()
	code, b := f.do(key, method, path, ctype, []byte(body), nil)
	if code != want {
		f.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, b)
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func (f *eventsFixture) events(key, body string, want int) eventsReport {
	f.t.Helper()
	code, b := f.do(key, "POST", "/v1/events", "application/x-ndjson", []byte(body), nil)
	if code != want {
		f.t.Fatalf("POST /v1/events: status %d, want %d: %s", code, want, b)
	}
	var rep eventsReport
	if err := json.Unmarshal(b, &rep); err != nil {
		f.t.Fatalf("report %s: %v", b, err)
	}
	return rep
}

func (f *eventsFixture) profile(adv, uid string) *audience.Profile {
	f.t.Helper()
	p, err := f.aud.Profile(adv, f.aud.Pseudonymizer().Of(audience.IDUID, uid))
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func TestPostEvents(t *testing.T) {
	f := newEventsFixture(t)
	forged := metrics.GetOrCreateCounter(`chaser_events_api_lines_total{outcome="rejected",reason="forged_advertiser"}`)
	forgedBefore := forged.Get()
	ts := f.now.Add(-time.Hour).Format(time.RFC3339)
	body := strings.Join([]string{
		`{"event":"product_view","uid":"u-1","products":["sku-1"],"ts":"` + ts + `"}`,
		`{"advertiser_id":"` + f.adv + `","event":"add_to_cart","uid":"u-1","products":["sku-1"],"value":59.9,"currency":"USD"}`,
		`{"event":"purchase","uid":"u-1",`,                                            // 3: broken JSON
		`{"advertiser_id":"` + f.adv2 + `","event":"purchase","uid":"u-1","value":5}`, // 4: forged
		``,
		`{"event":"purchase","uid":"u-2","ts":"` + f.now.Add(-31*24*time.Hour).Format(time.RFC3339) + `"}`, // 6: too old
		`{"event":"purchase","uid":"u-2","ts":"` + f.now.Add(time.Hour).Format(time.RFC3339) + `"}`,        // 7: future
		`{"event":"purchase","uid":"u-2","colour":"red"}`,                                                  // 8: unknown field
		`{"event":"purchase","email_sha256":"someone@example.com"}`,                                        // 9: plain e-mail
		`{"event":"Purchase!","uid":"u-2"}`,                                                                // 10: bad type
		`{"event":"purchase","uid":"u-2","event_id":"o-1","value":20}`,
		`{"event":"purchase","uid":"u-2","event_id":"o-1","value":20}`, // 12: duplicate
	}, "\n")
	rep := f.events(f.key, body, 200)
	if rep.Accepted != 3 || rep.Duplicates != 1 || rep.Rejected != 7 {
		t.Fatalf("report %+v", rep)
	}
	wantLines := map[int]string{3: "line", 4: "advertiser_id", 6: "ts", 7: "ts", 8: "colour", 9: "email_sha256", 10: "event"}
	for _, e := range rep.Errors {
		if wantLines[e.Line] != e.Field || !strings.HasPrefix(e.Error, e.Field+": ") {
			t.Errorf("line %d: %s (field %q), want field %q", e.Line, e.Error, e.Field, wantLines[e.Line])
		}
		delete(wantLines, e.Line)
	}
	if len(wantLines) != 0 {
		t.Errorf("lines not reported: %v", wantLines)
	}
	if forged.Get() != forgedBefore+1 {
		t.Errorf("forged line not counted")
	}
	if p := f.profile(f.adv, "u-1"); len(p.Events) != 2 || p.Events[0].Unix != f.now.Add(-time.Hour).Unix() {
		t.Errorf("u-1 profile %+v", p)
	}
	if p := f.profile(f.adv2, "u-1"); len(p.Events) != 0 {
		t.Errorf("forged line stored for the other advertiser: %+v", p)
	}
	if p := f.profile(f.adv, "u-2"); p.Purchases != 1 || p.MonetaryMicros != 20e6 {
		t.Errorf("u-2 profile %+v", p)
	}

	// An admin key must name the advertiser, and only existing ones.
	rep = f.events(testAdminToken, `{"event":"page_view","uid":"u-3"}`+"\n"+
		`{"advertiser_id":"adv_nobody","event":"page_view","uid":"u-3"}`+"\n"+
		`{"advertiser_id":"`+f.adv2+`","event":"page_view","uid":"u-3"}`, 200)
	if rep.Accepted != 1 || rep.Rejected != 2 || rep.Errors[0].Field != "advertiser_id" || rep.Errors[1].Error != "advertiser_id: no such advertiser" {
		t.Errorf("admin report %+v", rep)
	}
	if p := f.profile("adv_nobody", "u-3"); len(p.Events) != 0 {
		t.Errorf("unknown advertiser stored")
	}

	// All lines bad: 400 with the report.
	rep = f.events(f.key, "not json\n{}", 400)
	if rep.Rejected != 2 || rep.Error == "" {
		t.Errorf("all-bad report %+v", rep)
	}

	// Gzip bodies.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprintf(zw, `{"event":"page_view","uid":"u-4"}`)
	zw.Close()
	code, b := f.do(f.key, "POST", "/v1/events", "application/x-ndjson", gz.Bytes(), map[string]string{"Content-Encoding": "gzip"})
	if code != 200 || !strings.Contains(string(b), `"accepted": 1`) {
		t.Errorf("gzip: %d %s", code, b)
	}
}

func TestPostEventsLimits(t *testing.T) {
	f := newEventsFixture(t)
	for _, tc := range []struct {
		name   string
		ctype  string
		body   []byte
		hdr    map[string]string
		status int
		msg    string
	}{
		{"no key", "application/x-ndjson", []byte(`{}`), map[string]string{"Authorization": "Bearer nope"}, 401, "API key"},
		{"empty", "application/x-ndjson", []byte("\n\n"), nil, 400, "empty body"},
		{"wrong type", "text/csv", []byte(`{}`), nil, 415, "x-ndjson"},
		{"bad gzip", "application/x-ndjson", []byte("not gzip"), map[string]string{"Content-Encoding": "gzip"}, 400, "gzip"},
		{"too many lines", "application/x-ndjson", bytes.Repeat([]byte(`{"event":"page_view","uid":"u"}`+"\n"), MaxEventLines+1), nil, 413, "more than 10000 lines"},
		{"too large", "application/x-ndjson", bytes.Repeat([]byte(`{"event":"page_view","uid":"`+strings.Repeat("u", 1000)+`"}`+"\n"), 11000), nil, 413, "10 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := f.do(f.key, "POST", "/v1/events", tc.ctype, tc.body, tc.hdr)
			if code != tc.status || !strings.Contains(string(b), tc.msg) {
				t.Fatalf("status %d: %s; want %d …%s…", code, b, tc.status, tc.msg)
			}
		})
	}
	if p := f.profile(f.adv, "u"); len(p.Events) != 0 {
		t.Errorf("a refused batch stored %d events", len(p.Events))
	}
}

func TestRuleAudienceAPI(t *testing.T) {
	f := newEventsFixture(t)
	var lines []string
	for i := 0; i < 10; i++ {
		lines = append(lines, fmt.Sprintf(`{"event":"product_view","uid":"u-%d","products":["sku-1"]}`, i))
		if i < 4 {
			lines = append(lines, fmt.Sprintf(`{"event":"add_to_cart","uid":"u-%d","products":["sku-1"]}`, i))
		}
		if i < 2 {
			lines = append(lines, fmt.Sprintf(`{"event":"purchase","uid":"u-%d","products":["sku-1"],"value":59.9}`, i))
		}
	}
	f.events(f.key, strings.Join(lines, "\n"), 200)
	const abandoners = `{"all":[{"event":"add_to_cart","within_days":7},{"not":{"event":"purchase","within_days":7}}]}`
	est := f.call(f.key, "POST", "/v1/audiences/estimate", "application/json", `{"rule":`+abandoners+`}`, 200)
	if est["size"].(float64) != 2 {
		t.Fatalf("estimate %v", est)
	}
	est = f.call(f.key, "POST", "/v1/audiences/estimate", "application/json",
		`{"rule":{"event":"product_view","category":"shoes"}}`, 200)
	if est["size"].(float64) != 10 {
		t.Fatalf("category estimate %v", est)
	}
	bad := f.call(f.key, "POST", "/v1/audiences/estimate", "application/json", `{"rule":{"all":[{"event":"add_to_cart","within_days":0}]}}`, 400)
	if bad["field"] != "rule.all[0].within_days" {
		t.Fatalf("bad rule error %v", bad)
	}
	f.call(f.key, "POST", "/v1/audiences/estimate", "application/json", `{"advertiser_id":"`+f.adv2+`","rule":`+abandoners+`}`, 404)

	aud := f.call(f.key, "POST", "/v1/audiences", "application/json", `{"name":"Cart abandoners","type":"rule","rule":`+abandoners+`}`, 201)
	id := aud["id"].(string)
	f.aud.WaitRules()
	got := f.call(f.key, "GET", "/v1/audiences/"+id, "", "", 200)
	if got["status"] != "ready" || got["size"].(float64) != 2 || got["type"] != "rule" {
		t.Fatalf("rule audience %v", got)
	}
	bad = f.call(f.key, "POST", "/v1/audiences", "application/json", `{"name":"x","type":"rule","rule":{"event":"a","min_count":0}}`, 400)
	if bad["field"] != "rule.min_count" {
		t.Fatalf("bad rule audience %v", bad)
	}
	f.call(f.key, "POST", "/v1/audiences", "application/json", `{"name":"x","type":"rule"}`, 400)
	// Membership check and no uploads to a rule audience.
	c := f.call(f.key, "POST", "/v1/audiences/"+id+"/contains", "application/json", `{"ids":[{"type":"uid","value":"u-2"},{"type":"uid","value":"u-1"}]}`, 200)
	if r := c["results"].([]any); r[0] != true || r[1] != false {
		t.Fatalf("contains %v", c)
	}
	f.call(f.key, "POST", "/v1/audiences/"+id+"/members?id_type=uid", "text/csv", "u-9\n", 400)
	// A purchase moves the size.
	f.events(f.key, `{"event":"purchase","uid":"u-2","value":10}`, 200)
	if got := f.call(f.key, "GET", "/v1/audiences/"+id, "", "", 200); got["size"].(float64) != 1 {
		t.Fatalf("size after a purchase %v", got)
	}
}
