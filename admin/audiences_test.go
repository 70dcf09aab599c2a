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

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/store"
)

const testToken = "admin-test-token"

type apiFixture struct {
	t   *testing.T
	srv *httptest.Server
	aud *audience.Manager
	adv string
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cs, err := campaign.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	am, err := audience.NewManager(db, audience.Options{Secret: []byte("admin-test-secret-0123456789"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	adv, err := cs.CreateAdvertiser(campaign.Advertiser{Name: "Shop", Domain: "shop.example", Country: "82"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Deps{DB: db, Campaigns: cs, Audiences: am, AdminToken: testToken, Logger: log}))
	t.Cleanup(func() {
		srv.Close()
		am.Close()
		db.Close()
	})
	return &apiFixture{t: t, srv: srv, aud: am, adv: adv.ID}
}

func (f *apiFixture) do(method, path, ctype string, body io.Reader, want int) map[string]any {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		f.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			f.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return out
}

func (f *apiFixture) json(method, path, body string, want int) map[string]any {
	f.t.Helper()
	return f.do(method, path, "application/json", strings.NewReader(body), want)
}

func num(m map[string]any, path ...string) float64 {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return -1
		}
		v = mm[k]
	}
	n, ok := v.(float64)
	if !ok {
		return -1
	}
	return n
}

func TestAudienceAPI(t *testing.T) {
	f := newAPIFixture(t)
	// Unknown types are a 400 naming the field.
	for _, typ := range []string{"bogus", "LIST"} {
		e := f.json("POST", "/v1/audiences", `{"advertiser_id":"`+f.adv+`","name":"x","type":"`+typ+`"}`, 400)
		if e["field"] != "type" {
			t.Errorf("type %s: %v", typ, e)
		}
	}
	f.json("POST", "/v1/audiences", `{"advertiser_id":"`+f.adv+`","name":"x","ttl_days":-1}`, 400)
	a := f.json("POST", "/v1/audiences", `{"advertiser_id":"`+f.adv+`","name":"CRM","type":"list","ttl_days":30}`, 201)
	id := a["id"].(string)
	base := "/v1/audiences/" + id

	// A gzip CSV with a header, Korean national phone numbers (the
	// advertiser's country is 82) and a bad row.
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	io.WriteString(zw, "email,phone\nAlice@Example.com,010-1234-5678\nbob@example.com,\nnope,nope\n")
	zw.Close()
	up := f.do("POST", base+"/members", "text/csv", bytes.NewReader(zb.Bytes()), 200)
	if num(up, "rows_read") != 3 || num(up, "valid") != 2 || num(up, "invalid") != 1 || num(up, "applied") != 3 ||
		up["state"] != "done" || up["id"] == "" {
		t.Fatalf("upload %v", up)
	}
	got := f.json("GET", base, "", 200)
	if got["status"] != "ready" || num(got, "size") != 3 || num(got, "upload", "applied") != 3 ||
		num(got, "uploads", "jobs") != 1 || num(got, "filter", "bytes") <= 0 {
		t.Errorf("audience %v", got)
	}
	c := f.json("POST", base+"/contains", `{"ids":[{"type":"phone","value":"+82 10-1234-5678"},{"type":"phone","value":"010 1234 5678"},
		{"type":"email","value":"BOB@example.com"},{"type":"email","value":"carol@example.com"},{"type":"maid","value":"junk"}]}`, 200)
	if fmt.Sprint(c["results"]) != "[true true true false false]" {
		t.Errorf("contains %v", c["results"])
	}
	f.json("POST", base+"/contains", `{"ids":[{"type":"fax","value":"1"}]}`, 400)

	// Removal, then the job list (newest first).
	rm := f.do("DELETE", base+"/members?id_type=email", "text/csv", strings.NewReader("bob@example.com\nzed@example.com\n"), 200)
	if num(rm, "applied") != 1 || num(rm, "not_members") != 1 || rm["remove"] != true {
		t.Errorf("removal %v", rm)
	}
	jobs := f.json("GET", base+"/uploads", "", 200)["uploads"].([]any)
	if len(jobs) != 2 || jobs[0].(map[string]any)["remove"] != true {
		t.Errorf("uploads %v", jobs)
	}

	// Bad requests.
	f.do("POST", base+"/members?id_type=fax", "text/csv", strings.NewReader("1\n"), 400)
	f.do("POST", base+"/members?id_type=uid", "application/json", strings.NewReader("{}"), 415)
	e := f.do("POST", base+"/members", "text/csv", strings.NewReader("alice@example.com\n"), 400)
	if e["field"] != "id_type" || e["upload"] == nil {
		t.Errorf("no header, no type: %v", e)
	}
	f.do("POST", "/v1/audiences/aud_nope/members?id_type=uid", "text/csv", strings.NewReader("a\n"), 404)

	// Lists, scoped by advertiser.
	l := f.json("GET", "/v1/audiences?advertiser_id="+f.adv, "", 200)["audiences"].([]any)
	if len(l) != 1 {
		t.Errorf("list %v", l)
	}
	if l := f.json("GET", "/v1/audiences?advertiser_id=adv_other", "", 200)["audiences"].([]any); len(l) != 0 {
		t.Errorf("other advertiser's list %v", l)
	}
	f.json("DELETE", base, "", 204)
	f.json("GET", base, "", 404)
}

// TestUploadProgressOverHTTP streams a body slowly: GET shows the running
// job's rows; the client then goes away and the job is reported failed.
func TestUploadProgressOverHTTP(t *testing.T) {
	f := newAPIFixture(t)
	a := f.json("POST", "/v1/audiences", `{"advertiser_id":"`+f.adv+`","name":"big"}`, 201)
	base := "/v1/audiences/" + a["id"].(string)
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, "uid\n")
		for i := 0; i < 40000; i++ {
			fmt.Fprintf(pw, "cookie-%d\n", i)
		}
	}()
	req, _ := http.NewRequest("POST", f.srv.URL+base+"/members", pr)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "text/csv")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		errc <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := f.json("GET", base, "", 200)
		if got["status"] == "building" && num(got, "upload", "rows_read") >= 32768 {
			if up := got["upload"].(map[string]any); up["state"] != "running" {
				t.Fatalf("upload block %v", up)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress visible: %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	pw.CloseWithError(io.ErrClosedPipe) // the client goes away mid-body
	<-errc
	for {
		got := f.json("GET", base, "", 200)
		if up, _ := got["upload"].(map[string]any); up != nil && up["state"] == "failed" {
			if got["status"] != "failed" || num(got, "upload", "applied") < 32768 || up["error"] == "" {
				t.Errorf("failed upload %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not reported failed: %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
