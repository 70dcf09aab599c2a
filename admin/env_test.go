package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/creative"
	"github.com/chaser-dsp/chaser/pacing"
	"github.com/chaser-dsp/chaser/store"
)

const (
	opsAdminToken = "admin-token-for-tests-0123456789"
	opsSecret     = "admin-test-secret-0123456789abcdef"
)

// clock is a settable test clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recordingEraser remembers what it was asked to erase.
type recordingEraser struct {
	mu   sync.Mutex
	seen []audience.Pseudonym
}

func (r *recordingEraser) Erase(p audience.Pseudonym) error {
	r.mu.Lock()
	r.seen = append(r.seen, p)
	r.mu.Unlock()
	return nil
}

// env is the admin API over a real Pebble store, served over loopback, with
// two advertisers: A (a campaign, a list audience, a feed, two keys) and B
// (one key).
type adminEnv struct {
	t      testing.TB
	db     *pebble.DB
	deps   Deps
	api    *API
	srv    *httptest.Server
	clock  *testClock
	eraser *recordingEraser

	advA, advB       string
	keyA, keyB       string
	keyA2ID          string // a second key of A, to revoke
	cmpA, audA, audB string
}

func newAdminEnv(t testing.TB, lim AuthLimit) *adminEnv {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &testClock{t: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cs, err := campaign.Open(db, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	am, err := audience.NewManager(db, audience.Options{Secret: []byte(opsSecret), Now: clk.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := creative.OpenCatalog(db)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pacing.New(db, pacing.NewSigner([]byte(opsSecret)), cs, pacing.Options{Now: clk.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e := &adminEnv{t: t, db: db, clock: clk, eraser: &recordingEraser{}}
	e.deps = Deps{DB: db, Campaigns: cs, Audiences: am, Catalog: cat, Pacer: pc, AdminToken: opsAdminToken,
		Now: clk.Now, Logger: log, Erasers: []Eraser{e.eraser}, AuthLimit: lim}
	e.api = New(e.deps)
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(e.srv.Close)

	a, err := cs.CreateAdvertiser(campaign.Advertiser{Name: "Shop A", Domain: "a.example"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cs.CreateAdvertiser(campaign.Advertiser{Name: "Shop B", Domain: "b.example"})
	if err != nil {
		t.Fatal(err)
	}
	e.advA, e.advB = a.ID, b.ID
	feed := "id,title,price,currency,image_url,landing_url,category,brand,in_stock\n" +
		"sku-1,Red Shoe,59.90,USD,https://cdn.example/1.jpg,https://a.example/p/1,shoes,Acme,true\n"
	if _, err := cat.Replace(e.advA, strings.NewReader(feed), "csv"); err != nil {
		t.Fatal(err)
	}
	audA, err := am.Create(audience.Audience{AdvertiserID: e.advA, Name: "A buyers", Type: audience.TypeList})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := am.Upload(context.Background(), audA.ID, strings.NewReader("a-member\n"), audience.UploadOptions{Type: audience.IDUID}); err != nil {
		t.Fatal(err)
	}
	audB, err := am.Create(audience.Audience{AdvertiserID: e.advB, Name: "B buyers", Type: audience.TypeList})
	if err != nil {
		t.Fatal(err)
	}
	e.audA, e.audB = audA.ID, audB.ID
	c, err := cs.Create(campaign.Campaign{AdvertiserID: e.advA, Name: "A retarget", Currency: "USD",
		Budget: campaign.Budget{DailyMicros: campaign.Micros(100)}, Bid: campaign.Bid{BaseCPMMicros: 2e6, MaxCPMMicros: 5e6},
		Targeting: campaign.Targeting{Audiences: []string{e.audA}}, Creative: campaign.Creative{Sizes: []campaign.Size{{W: 300, H: 250}}}})
	if err != nil {
		t.Fatal(err)
	}
	e.cmpA = c.ID
	var k struct{ ID, Key string }
	e.mustJSON(e.do("POST", "/v1/advertisers/"+e.advA+"/keys", opsAdminToken, "", ""), 201, &k)
	e.keyA = k.Key
	e.mustJSON(e.do("POST", "/v1/advertisers/"+e.advA+"/keys", opsAdminToken, "", ""), 201, &k)
	e.keyA2ID = k.ID
	e.mustJSON(e.do("POST", "/v1/advertisers/"+e.advB+"/keys", opsAdminToken, "", ""), 201, &k)
	e.keyB = k.Key
	return e
}

// response is one answer of the API.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request over loopback; key "" sends no Authorization.
func (e *adminEnv) do(method, path, key, ctype, body string) apiResponse {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apiResponse{resp.StatusCode, resp.Header, b}
}

// mustJSON checks the status and decodes the body into v (when not nil).
func (e *adminEnv) mustJSON(r apiResponse, status int, v any) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			e.t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// apiErr decodes an error answer.
func apiErrOf(t testing.TB, r apiResponse) apiError {
	t.Helper()
	var ae apiError
	if err := json.Unmarshal(r.body, &ae); err != nil || ae.Error == "" {
		t.Fatalf("not an API error (%d): %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error content type %q", ct)
	}
	return ae
}
