package admin

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
)

// authzSpec says how to call one route successfully as advertiser A (or the
// admin key), and what the other advertiser's key gets.
type authzSpec struct {
	ctype, body string
	ok          int // status for the admin key and A's key
	// other is the status for B's key on an anyKey route; 0 means 404.
	// Lists answer 200 without A's resources.
	other int
}

// authzSpecs has one entry per route of the route table. A route added to
// the table needs an entry here (the test says which).
func authzSpecs(e *adminEnv) map[string]authzSpec {
	campaignBody := fmt.Sprintf(`{"advertiser_id":%q,"name":"new","budget":{"daily":10},"bid":{"base_cpm":1,"max_cpm":2},
		"targeting":{"audiences":[%q]},"creative":{"sizes":["300x250"]}}`, e.advA, e.audA)
	return map[string]authzSpec{
		"GET /healthz":               {ok: 200},
		"GET /readyz":                {ok: 200},
		"GET /metrics":               {ok: 200},
		"GET /openapi.yaml":          {ok: 200},
		"GET /debug/pprof/{$}":       {ok: 200},
		"GET /debug/pprof/{profile}": {ok: 200},

		"POST /v1/advertisers":                       {ctype: "application/json", body: `{"name":"C"}`, ok: 201},
		"GET /v1/advertisers":                        {ok: 200, other: 200},
		"GET /v1/advertisers/{adv}":                  {ok: 200},
		"PATCH /v1/advertisers/{adv}":                {ctype: "application/merge-patch+json", body: `{"name":"A2"}`, ok: 200},
		"POST /v1/advertisers/{adv}/keys":            {ok: 201},
		"GET /v1/advertisers/{adv}/keys":             {ok: 200},
		"DELETE /v1/advertisers/{adv}/keys/{key_id}": {ok: 204},
		"PUT /v1/advertisers/{adv}/products":         {ctype: "text/csv", body: "id,title,price,currency,image_url,landing_url\nsku-9,Hat,9,USD,https://cdn.example/9.jpg,https://a.example/p/9\n", ok: 200},
		"GET /v1/advertisers/{adv}/products":         {ok: 200},
		"GET /v1/advertisers/{adv}/products/{pid}":   {ok: 200},
		"GET /v1/advertisers/{adv}/recommendations":  {ok: 200},
		"POST /v1/campaigns":                         {ctype: "application/json", body: campaignBody, ok: 201},
		"GET /v1/campaigns":                          {ok: 200, other: 200},
		"GET /v1/campaigns/{id}":                     {ok: 200},
		"PATCH /v1/campaigns/{id}":                   {ctype: "application/merge-patch+json", body: `{"status":"paused"}`, ok: 200},
		"DELETE /v1/campaigns/{id}":                  {ok: 204},
		"GET /v1/campaigns/{id}/report":              {ok: 200},
		"POST /v1/audiences":                         {ctype: "application/json", body: fmt.Sprintf(`{"advertiser_id":%q,"name":"new","type":"list"}`, e.advA), ok: 201},
		"GET /v1/audiences":                          {ok: 200, other: 200},
		"POST /v1/audiences/estimate":                {ctype: "application/json", body: fmt.Sprintf(`{"advertiser_id":%q,"rule":{"event":"purchase","within_days":7}}`, e.advA), ok: 200},
		"GET /v1/audiences/{id}":                     {ok: 200},
		"DELETE /v1/audiences/{id}":                  {ok: 409}, // A's campaign targets it: the check comes after access
		"POST /v1/audiences/{id}/members":            {ctype: "text/csv", body: "new-member\n", ok: 200},
		"DELETE /v1/audiences/{id}/members":          {ctype: "text/csv", body: "a-member\n", ok: 200},
		"POST /v1/audiences/{id}/contains":           {ctype: "application/json", body: `{"ids":[{"type":"uid","value":"a-member"}]}`, ok: 200},
		"GET /v1/audiences/{id}/uploads":             {ok: 200},
		"POST /v1/events":                            {ctype: "application/x-ndjson", body: fmt.Sprintf(`{"advertiser_id":%q,"event":"page_view","uid":"u-1"}`+"\n", e.advA), ok: 200},
		"POST /v1/privacy/erase":                     {ctype: "application/json", body: `{"type":"email","value":"someone@example.com"}`, ok: 200},
	}
}

// fill turns a route pattern into a path to A's resources.
func (e *adminEnv) fill(rt route) string {
	p := strings.TrimSuffix(rt.path, "{$}")
	id := e.cmpA
	if strings.HasPrefix(p, "/v1/audiences/") {
		id = e.audA
	}
	q := ""
	switch {
	case strings.HasSuffix(p, "/members"):
		q = "?id_type=uid"
	case strings.HasSuffix(p, "/recommendations"):
		q = "?uid=a-member&n=3"
	}
	return strings.NewReplacer("{adv}", e.advA, "{id}", id, "{key_id}", e.keyA2ID, "{pid}", "sku-1",
		"{profile}", "heap").Replace(p) + q
}

// TestAuthorizationMatrix calls every route of the route table with no key,
// a wrong key, the admin key, advertiser A's key and advertiser B's key on
// A's resources, over loopback with a real store.
func TestAuthorizationMatrix(t *testing.T) {
	lim := AuthLimit{Burst: 1000}
	specsEnv := newAdminEnv(t, lim)
	specs := authzSpecs(specsEnv)
	var missing []string
	for _, rt := range specsEnv.api.routes {
		if _, ok := specs[rt.pattern()]; !ok {
			missing = append(missing, rt.pattern())
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("routes without an authorization case: add them to authzSpecs in admin/authz_test.go "+
			"(how to call them successfully as advertiser A): %s", strings.Join(missing, ", "))
	}
	for _, rt := range specsEnv.api.routes {
		t.Run(rt.pattern(), func(t *testing.T) {
			// One store for the callers that must not change anything, then
			// A's key; a fresh store for the admin key.
			e := newAdminEnv(t, lim)
			sp := authzSpecs(e)[rt.pattern()]
			path := e.fill(rt)
			leaks := []string{e.cmpA, e.audA, e.advA + `"`}
			type caller struct {
				name, key string
				want      int
			}
			var callers []caller
			if rt.access == public {
				callers = []caller{{"no key", "", sp.ok}, {"bad key", "chk_wrong", sp.ok}, {"other advertiser", e.keyB, sp.ok}, {"own advertiser", e.keyA, sp.ok}}
			} else {
				other := 404
				switch {
				case rt.access == adminOnly:
					other = 403
				case rt.access == anyKey && sp.other != 0:
					other = sp.other
				}
				own := sp.ok
				if rt.access == adminOnly {
					own = 403
				}
				callers = []caller{{"no key", "", 401}, {"bad key", "chk_wrong", 401}, {"other advertiser", e.keyB, other}, {"own advertiser", e.keyA, own}}
			}
			for _, c := range callers {
				r := e.do(rt.method, path, c.key, sp.ctype, sp.body)
				if r.status != c.want {
					t.Fatalf("%s: %s %s: status %d, want %d: %s", c.name, rt.method, path, r.status, c.want, r.body)
				}
				if r.status >= 400 {
					apiErrOf(t, r)
				}
				if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
					t.Fatalf("%s: 401 without WWW-Authenticate", c.name)
				}
				if c.name == "other advertiser" && rt.access != public {
					for _, l := range leaks {
						if strings.Contains(string(r.body), l) {
							t.Fatalf("other advertiser's answer shows A's %s: %s", l, r.body)
						}
					}
				}
			}
			ea := newAdminEnv(t, lim)
			path = ea.fill(rt)
			spa := authzSpecs(ea)[rt.pattern()]
			if r := ea.do(rt.method, path, opsAdminToken, spa.ctype, spa.body); r.status != spa.ok {
				t.Fatalf("admin key: %s %s: status %d, want %d: %s", rt.method, path, r.status, spa.ok, r.body)
			}
		})
	}
}

// TestAdvertiserScoping checks what B's key sees of A beyond status codes:
// lists hold only B's resources, and B cannot place A's audiences in its
// campaigns or create resources for A.
func TestAdvertiserScoping(t *testing.T) {
	e := newAdminEnv(t, AuthLimit{})
	var advs struct{ Advertisers []struct{ ID string } }
	e.mustJSON(e.do("GET", "/v1/advertisers", e.keyB, "", ""), 200, &advs)
	if len(advs.Advertisers) != 1 || advs.Advertisers[0].ID != e.advB {
		t.Fatalf("B lists advertisers %+v, want only itself", advs.Advertisers)
	}
	var cl struct{ Campaigns []struct{ ID string } }
	e.mustJSON(e.do("GET", "/v1/campaigns?advertiser_id="+e.advA, e.keyB, "", ""), 200, &cl)
	if len(cl.Campaigns) != 0 {
		t.Fatalf("B lists A's campaigns: %+v", cl.Campaigns)
	}
	e.mustJSON(e.do("GET", "/v1/campaigns", e.keyA, "", ""), 200, &cl)
	if len(cl.Campaigns) != 1 || cl.Campaigns[0].ID != e.cmpA {
		t.Fatalf("A lists %+v", cl.Campaigns)
	}
	body := fmt.Sprintf(`{"name":"steal","budget":{"daily":10},"bid":{"base_cpm":1,"max_cpm":2},
		"targeting":{"audiences":[%q]},"creative":{"sizes":["300x250"]}}`, e.audA)
	r := e.do("POST", "/v1/campaigns", e.keyB, "application/json", body)
	if r.status != 400 || apiErrOf(t, r).Field != "targeting.audiences" {
		t.Fatalf("B targets A's audience: %d %s", r.status, r.body)
	}
	r = e.do("PATCH", "/v1/campaigns/"+e.cmpA, e.keyA, "application/json", fmt.Sprintf(`{"targeting":{"exclude_audiences":[%q]}}`, e.audB))
	if r.status != 400 || apiErrOf(t, r).Field != "targeting.exclude_audiences" {
		t.Fatalf("A excludes B's audience: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/advertisers/"+e.advA+"/keys/"+e.keyA2ID, e.keyB, "", ""); r.status != 404 {
		t.Fatalf("B revokes A's key: %d", r.status)
	}
	if r := e.do("DELETE", "/v1/advertisers/"+e.advB+"/keys/"+e.keyA2ID, e.keyB, "", ""); r.status != 404 {
		t.Fatalf("B revokes A's key through its own path: %d", r.status)
	}
	if r := e.do("GET", "/v1/campaigns", e.keyA, "", ""); r.status != http.StatusOK {
		t.Fatalf("A's key stopped working: %d", r.status)
	}
}
