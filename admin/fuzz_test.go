package admin

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// serve runs one request in process.
func (e *adminEnv) serve(method, path, ctype string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.keyA)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	return rec
}

// checkAnswer: never a 5xx for a caller's body, and 4xx answers are API errors.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
	}
	if rec.Code >= 400 {
		var ae apiError
		if json.Unmarshal(rec.Body.Bytes(), &ae) != nil || ae.Error == "" {
			t.Fatalf("status %d without an API error for body %q: %s", rec.Code, body, rec.Body)
		}
	}
}

func FuzzCampaignBody(f *testing.F) {
	e := newAdminEnv(f, AuthLimit{Burst: 1 << 30})
	f.Add([]byte(`{"name":"x","budget":{"daily":10},"bid":{"base_cpm":1,"max_cpm":2},"targeting":{"audiences":["` + e.audA + `"]},"creative":{"sizes":["300x250"]}}`))
	f.Add([]byte(`{"name":"x","start":"2026-01-01T00:00:00Z","end":"2025-01-01T00:00:00Z","frequency_cap":{"impressions":3,"per":"7d"},"timezone":"Asia/Seoul"}`))
	f.Add([]byte(`{"budget":{"daily":1e400},"bid":{"base_cpm":-0,"max_cpm":"2"}}`))
	f.Add([]byte(`{"frequency_cap":{"impressions":-1,"per":"1ns"},"creative":{"sizes":["0x0","99999x1"]}}`))
	f.Add([]byte(`{"targeting":{"countries":["K"],"device_types":[1.5]}} {}`))
	f.Add([]byte(`null`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := e.serve("POST", "/v1/campaigns", "application/json", body)
		checkAnswer(t, rec, body)
		if rec.Code == 201 {
			var c struct{ ID, AdvertiserID string }
			_ = json.Unmarshal(rec.Body.Bytes(), &c)
			if g := e.serve("GET", "/v1/campaigns/"+c.ID, "", nil); g.Code != 200 {
				t.Fatalf("created campaign %s not readable: %d", c.ID, g.Code)
			}
		}
	})
}

func FuzzMergePatch(f *testing.F) {
	e := newAdminEnv(f, AuthLimit{Burst: 1 << 30})
	f.Add([]byte(`{"status":"paused"}`))
	f.Add([]byte(`{"end":null,"budget":{"total":null,"daily":5}}`))
	f.Add([]byte(`{"targeting":{"audiences":null}}`))
	f.Add([]byte(`{"creative":{"sizes":["728x90"],"offer":null},"frequency_cap":null}`))
	f.Add([]byte(`{"bid":7}`))
	f.Add([]byte(`{"a":{"b":{"c":{"d":[[[[{}]]]]}}}}`))
	f.Add([]byte(`{"name":"` + strings.Repeat("é", 300) + `"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		before := e.serve("GET", "/v1/campaigns/"+e.cmpA, "", nil).Body.String()
		rec := e.serve("PATCH", "/v1/campaigns/"+e.cmpA, "application/merge-patch+json", body)
		checkAnswer(t, rec, body)
		after := e.serve("GET", "/v1/campaigns/"+e.cmpA, "", nil)
		if after.Code != 200 {
			t.Fatalf("campaign lost after patch %q: %d", body, after.Code)
		}
		if rec.Code != 200 && after.Body.String() != before {
			t.Fatalf("refused patch %q changed the campaign", body)
		}
	})
}
