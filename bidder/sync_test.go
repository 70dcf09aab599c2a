package bidder

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/store"
)

const pbsRedirect = "https://pbs.example/setuid?bidder=chaser&uid=$UID"

// syncFixture is the bidder fixture with sync hosts and one exchange, "pbs".
func syncFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "syn"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	x, err := audience.NewExchangeIDs(db, f.deps.Audiences.Pseudonymizer(), []string{"pbs", "adx"}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.deps.SyncHosts = []string{"pbs.example", "*.adnxs.example"}
	f.deps.Exchanges = x
	f.srv = New(f.deps)
	return f
}

func (f *fixture) sync(t *testing.T, q string, hdr map[string]string) *fasthttp.Response {
	t.Helper()
	return f.do("GET", "/sync?"+q, "", nil, hdr)
}

// addMember uploads a Chaser uid to the fixture's audience.
func (f *fixture) addMember(t *testing.T, uid string) {
	t.Helper()
	if _, err := f.deps.Audiences.Upload(context.Background(), f.audience, strings.NewReader(uid+"\n"), audience.UploadOptions{Type: audience.IDUID}); err != nil {
		t.Fatal(err)
	}
}

func bidBody(user string) []byte {
	return []byte(`{"id":"s-1","imp":[{"id":"1","banner":{"w":300,"h":250}}],"site":{"domain":"news.example","page":"https://news.example/a"},"device":{"geo":{"country":"KOR"}},"user":` + user + `}`)
}

func TestSyncEndToEnd(t *testing.T) {
	f := syncFixture(t)
	// A pixel hit gives the browser its uid cookie.
	resp := f.pixel(t, "adv="+f.campaign.AdvertiserID+"&ev=page_view", map[string]string{"X-Forwarded-Proto": "https"})
	m := cookieRe.FindStringSubmatch(setCookie(resp))
	if m == nil || m[3] != "None" {
		t.Fatalf("pixel cookie %q", setCookie(resp))
	}
	uid := m[1]
	// /sync sends it to the exchange, setting no new cookie.
	before := counter(`chaser_syncs_total{exchange="pbs",outcome="ok"}`)
	resp = f.sync(t, "exchange=pbs&redirect="+url.QueryEscape(pbsRedirect), map[string]string{"Cookie": CookieName + "=" + uid})
	if resp.StatusCode() != 302 {
		t.Fatalf("sync: %d %s", resp.StatusCode(), resp.Body())
	}
	if loc := string(resp.Header.Peek("Location")); loc != "https://pbs.example/setuid?bidder=chaser&uid="+uid {
		t.Fatalf("Location %q", loc)
	}
	if c := setCookie(resp); c != "" {
		t.Fatalf("sync with a cookie set %q", c)
	}
	if got := counter(`chaser_syncs_total{exchange="pbs",outcome="ok"}`); got != before+1 {
		t.Fatalf("ok syncs %d → %d", before, got)
	}
	// Not in the audience yet: no bid; uploaded: the buyeruid matches.
	if r := f.do("POST", "/openrtb2/bid", "application/json", bidBody(`{"buyeruid":"`+uid+`"}`), nil); r.StatusCode() != 204 {
		t.Fatalf("unknown uid: %d", r.StatusCode())
	}
	f.addMember(t, uid)
	if r := f.do("POST", "/openrtb2/bid", "application/json", bidBody(`{"buyeruid":"`+uid+`"}`), nil); r.StatusCode() != 200 {
		t.Fatalf("synced buyeruid: %d %s", r.StatusCode(), r.Body())
	}
	// The exchange's own id: /setuid, then user.id on /openrtb2/bid/pbs.
	resp = f.do("GET", "/setuid?exchange=pbs&euid=PBS-77", "", nil, map[string]string{"Cookie": CookieName + "=" + uid})
	if resp.StatusCode() != 200 || string(resp.Header.ContentType()) != "image/gif" || setCookie(resp) != "" {
		t.Fatalf("setuid: %d %s cookie %q", resp.StatusCode(), resp.Header.ContentType(), setCookie(resp))
	}
	resolved := counter(`chaser_bid_uid_resolved_total{via="exchange_id"}`)
	if r := f.do("POST", "/openrtb2/bid/pbs", "application/json", bidBody(`{"id":"PBS-77"}`), nil); r.StatusCode() != 200 {
		t.Fatalf("mapped user.id: %d %s", r.StatusCode(), r.Body())
	}
	if counter(`chaser_bid_uid_resolved_total{via="exchange_id"}`) != resolved+1 {
		t.Fatal("exchange_id resolution not counted")
	}
	// The same id from another exchange, or on the plain path, is not mapped.
	for _, p := range []string{"/openrtb2/bid", "/openrtb2/bid/adx", "/openrtb2/bid/nope"} {
		if r := f.do("POST", p, "application/json", bidBody(`{"id":"PBS-77"}`), nil); r.StatusCode() != 204 {
			t.Fatalf("%s: %d", p, r.StatusCode())
		}
	}
	// Erasing the person removes the mapping.
	p := f.deps.Audiences.Pseudonymizer().Of(audience.IDUID, uid)
	if err := f.deps.Exchanges.Erase(p); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.deps.Exchanges.Lookup([]byte("pbs"), []byte("PBS-77")); ok {
		t.Fatal("mapping survived erase")
	}
	// An unknown exchange stores nothing.
	before = counter(`chaser_syncs_total{exchange="other",outcome="unknown_exchange"}`)
	f.do("GET", "/setuid?exchange=evil&euid=X", "", nil, map[string]string{"Cookie": CookieName + "=" + uid})
	if counter(`chaser_syncs_total{exchange="other",outcome="unknown_exchange"}`) != before+1 {
		t.Fatal("unknown exchange not counted")
	}
}

func TestSyncConsent(t *testing.T) {
	f := syncFixture(t)
	f.deps.GDPRVendorID = testVendor
	f.srv = New(f.deps)
	tcfSome := encodeTCF(tcfSpec{vendors: []int{1, 7, testVendor - 1}, purposes: []int{1, 2, 3, 4}})
	tcfUs := encodeTCF(tcfSpec{vendors: []int{1, testVendor}, purposes: []int{1, 2, 3, 4}})
	red := "redirect=" + url.QueryEscape(pbsRedirect)
	for _, q := range []string{
		"gdpr=1",                         // GDPR, no consent string
		"gdpr=1&gdpr_consent=garbage",    // unreadable
		"gdpr=1&gdpr_consent=" + tcfSome, // no consent for Chaser's vendor
		"us_privacy=1YYN",
		"us_privacy=bogus",
		"gpp_sid=7", // section named, no string
	} {
		before := counter(`chaser_syncs_total{exchange="other",outcome="no_consent"}`)
		resp := f.sync(t, red+"&"+q, nil)
		if resp.StatusCode() != 302 || string(resp.Header.Peek("Location")) != "https://pbs.example/setuid?bidder=chaser&uid=" {
			t.Fatalf("%s: %d %q", q, resp.StatusCode(), resp.Header.Peek("Location"))
		}
		if c := setCookie(resp); c != "" {
			t.Fatalf("%s: cookie %q", q, c)
		}
		if counter(`chaser_syncs_total{exchange="other",outcome="no_consent"}`) != before+1 {
			t.Fatalf("%s: not counted", q)
		}
	}
	// With consent (or no signal) a fresh uid is set.
	for _, q := range []string{"gdpr=0&us_privacy=1YNN", "gdpr=1&gdpr_consent=" + tcfUs, "x=1"} {
		resp := f.sync(t, red+"&"+q, nil)
		m := cookieRe.FindStringSubmatch(setCookie(resp))
		if resp.StatusCode() != 302 || m == nil || string(resp.Header.Peek("Location")) != "https://pbs.example/setuid?bidder=chaser&uid="+m[1] {
			t.Fatalf("%s: %d %q %q", q, resp.StatusCode(), resp.Header.Peek("Location"), setCookie(resp))
		}
	}
	// /setuid without consent stores nothing.
	uid := "0123456789abcdef0123456789abcdef"
	f.do("GET", "/setuid?exchange=pbs&euid=E1&us_privacy=1YYN", "", nil, map[string]string{"Cookie": CookieName + "=" + uid})
	if _, ok := f.deps.Exchanges.Lookup([]byte("pbs"), []byte("E1")); ok {
		t.Fatal("setuid stored a mapping after an opt-out")
	}
}

func TestSyncBadInput(t *testing.T) {
	f := syncFixture(t)
	for _, tc := range []struct{ redirect, reason string }{
		{"", "missing"},
		{"https://evil.example/x?u=$UID", "host_not_allowed"},
		{"https://pbs.example.evil.example/x", "host_not_allowed"},
		{"https://adnxs.example/x", "host_not_allowed"}, // *.suffix is subdomains only
		{"javascript:alert(1)//pbs.example", "scheme"},
		{"JAVASCRIPT:alert(1)", "scheme"},
		{"//pbs.example/x", "scheme"},
		{"https://user@pbs.example/x", "form"},
		{"https://evil.example\\@pbs.example/", "bad_char"},
		{"https://pbs.example/" + strings.Repeat("a", 2100), "too_long"},
		{"ftp://pbs.example/x", "scheme"},
	} {
		before := counter(`chaser_sync_bad_redirects_total{reason="` + tc.reason + `"}`)
		q := "redirect=" + url.QueryEscape(tc.redirect)
		if tc.redirect == "" {
			q = "x=1"
		}
		resp := f.sync(t, q, nil)
		if resp.StatusCode() != 400 || !strings.Contains(string(resp.Body()), tc.reason) {
			t.Fatalf("%q: %d %s", tc.redirect, resp.StatusCode(), resp.Body())
		}
		if setCookie(resp) != "" || len(resp.Header.Peek("Location")) != 0 {
			t.Fatalf("%q: cookie or location leaked", tc.redirect)
		}
		if counter(`chaser_sync_bad_redirects_total{reason="`+tc.reason+`"}`) != before+1 {
			t.Fatalf("%q: reason %s not counted", tc.redirect, tc.reason)
		}
	}
	// Allowed: a subdomain of a wildcard, {UID} and ${UID} forms.
	for _, r := range []string{"https://ib.adnxs.example/s?u=${UID}", "http://pbs.example:8443/s?u={UID}"} {
		resp := f.sync(t, "redirect="+url.QueryEscape(r), map[string]string{"Cookie": CookieName + "=0123456789abcdef0123456789abcdef"})
		if loc := string(resp.Header.Peek("Location")); resp.StatusCode() != 302 || !strings.HasSuffix(loc, "u=0123456789abcdef0123456789abcdef") {
			t.Fatalf("%s: %d %q", r, resp.StatusCode(), loc)
		}
	}
	// A tampered cookie is replaced by a fresh uid, never echoed.
	for _, bad := range []string{"zz23456789abcdef0123456789abcdef", "0123", "0123456789ABCDEF0123456789ABCDEF", "<script>"} {
		before := counter(`chaser_sync_bad_cookies_total`)
		resp := f.sync(t, "redirect="+url.QueryEscape(pbsRedirect), map[string]string{"Cookie": CookieName + "=" + bad})
		m := cookieRe.FindStringSubmatch(setCookie(resp))
		loc := string(resp.Header.Peek("Location"))
		if resp.StatusCode() != 302 || m == nil || !strings.HasSuffix(loc, "uid="+m[1]) || strings.Contains(loc, bad) {
			t.Fatalf("cookie %q: %d %q %q", bad, resp.StatusCode(), loc, setCookie(resp))
		}
		if counter(`chaser_sync_bad_cookies_total`) != before+1 {
			t.Fatalf("cookie %q not counted", bad)
		}
	}
	// POST is refused.
	if r := f.do("POST", "/sync?redirect="+url.QueryEscape(pbsRedirect), "", nil, nil); r.StatusCode() != 405 {
		t.Fatalf("POST /sync: %d", r.StatusCode())
	}
	// /setuid with a bad id stores nothing.
	for _, q := range []string{"exchange=pbs", "exchange=pbs&euid=" + strings.Repeat("x", 200), "exchange=pbs&euid=a%0Ab"} {
		before := counter(`chaser_syncs_total{exchange="pbs",outcome="bad_id"}`)
		f.do("GET", "/setuid?"+q, "", nil, nil)
		if counter(`chaser_syncs_total{exchange="pbs",outcome="bad_id"}`) != before+1 {
			t.Fatalf("%s: not counted as bad_id", q)
		}
	}
}

func FuzzValidateRedirect(f *testing.F) {
	for _, s := range []string{pbsRedirect, "javascript:alert(1)", "https://ib.adnxs.example/x", "//pbs.example", "https://pbs.example@evil", "https://[::1]/", "http://pbs.example:99999/"} {
		f.Add(s)
	}
	hosts := []string{"pbs.example", "*.adnxs.example"}
	f.Fuzz(func(t *testing.T, raw string) {
		got, why := validateRedirect([]byte(raw), hosts)
		if why != "" {
			if got != "" {
				t.Fatalf("refused %q but returned %q", raw, got)
			}
			return
		}
		u, err := url.Parse(substituteUID(got, "0123456789abcdef0123456789abcdef"))
		if err != nil {
			t.Fatalf("accepted %q: substituted form does not parse: %v", raw, err)
		}
		if u.Scheme != "https" && u.Scheme != "http" || u.User != nil || !hostAllowed(strings.ToLower(u.Hostname()), hosts) {
			t.Fatalf("accepted %q: scheme %q host %q", raw, u.Scheme, u.Hostname())
		}
		if strings.ContainsAny(got, "\\\r\n\t ") || len(got) > MaxRedirectLen {
			t.Fatalf("accepted %q", raw)
		}
	})
}
