package bidder

import (
	"bytes"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/chaser-dsp/chaser/audience"
)

var testSyncHosts = []string{"pbs.example", "*.adx.example"}

func TestParseSyncPixels(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		want  []SyncPixel
		error string // substring of the error; "" for none
	}{
		{spec: "", want: nil},
		{spec: " , ,", want: nil},
		{spec: "pbs=https://pbs.example/setuid?bidder=chaser&uid=$UID",
			want: []SyncPixel{{"pbs", "https://pbs.example/setuid?bidder=chaser&uid=$UID"}}},
		{spec: " pbs=https://pbs.example/s?u={UID} , adx=https://sync.adx.example/u?dsp=chaser&uid=${UID}",
			want: []SyncPixel{{"pbs", "https://pbs.example/s?u={UID}"}, {"adx", "https://sync.adx.example/u?dsp=chaser&uid=${UID}"}}},
		{spec: "adx=https://sync.adx.example/u?l=a%2Cb&uid=${UID}", want: []SyncPixel{{"adx", "https://sync.adx.example/u?l=a%2Cb&uid=${UID}"}}},
		{spec: "evil=https://evil.example/s?u=$UID", error: `host "evil.example" is not on the sync host allow-list`},
		{spec: "adx=https://adx.example/s?u=$UID", error: "not on the sync host allow-list"}, // *.suffix: subdomains only
		{spec: "pbs=https://pbs.example/s", error: "no ${UID}"},
		{spec: "pbs", error: "want name=URL"},
		{spec: "=https://pbs.example/s?u=$UID", error: "sync pixel name"},
		{spec: "PBS=https://pbs.example/s?u=$UID", error: "sync pixel name"},
		{spec: "pbs=https://pbs.example/a?u=$UID,pbs=https://pbs.example/b?u=$UID", error: "listed twice"},
		{spec: "pbs=javascript:alert(1)", error: "http:// or https://"},
		{spec: "pbs=", error: "empty URL"},
		{spec: "pbs=https://user@pbs.example/s?u=$UID", error: "bad URL (form)"},
		{spec: "pbs=https://pbs.example/s u=$UID", error: "spaces"},
		{spec: "pbs=https://pbs.example/" + strings.Repeat("a", 3000) + "?u=$UID", error: "longer than"},
		{spec: "pbs=https://pbs.example/a?u=$UID,b", error: "want name=URL"}, // a raw comma in a URL
		{spec: strings.Repeat("x=https://pbs.example/?u=$UID,", 1), want: []SyncPixel{{"x", "https://pbs.example/?u=$UID"}}},
	} {
		got, err := ParseSyncPixels(tc.spec, testSyncHosts)
		switch {
		case tc.error == "" && err != nil:
			t.Errorf("%.80q: %v", tc.spec, err)
		case tc.error != "" && (err == nil || !strings.Contains(err.Error(), tc.error)):
			t.Errorf("%.80q: error %v, want %q", tc.spec, err, tc.error)
		case tc.error == "" && !equalPixels(got, tc.want):
			t.Errorf("%.80q: %+v, want %+v", tc.spec, got, tc.want)
		}
	}
	var many []string
	for i := 0; i <= MaxSyncPixels; i++ {
		many = append(many, "e"+string(rune('a'+i))+"=https://pbs.example/?u=$UID")
	}
	if _, err := ParseSyncPixels(strings.Join(many[:MaxSyncPixels], ","), testSyncHosts); err != nil {
		t.Fatalf("%d pixels: %v", MaxSyncPixels, err)
	}
	if _, err := ParseSyncPixels(strings.Join(many, ","), testSyncHosts); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("%d pixels: %v", MaxSyncPixels+1, err)
	}
	if _, err := ParseSyncPixels("pbs=https://pbs.example/?u=$UID", nil); err == nil {
		t.Fatal("accepted with an empty allow-list")
	}
}

func equalPixels(a, b []SyncPixel) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func FuzzParseSyncPixels(f *testing.F) {
	for _, s := range []string{"", "pbs=https://pbs.example/setuid?bidder=chaser&uid=$UID",
		"a=https://x.adx.example/?u={UID},b=http://pbs.example:81/${UID}", "pbs=https://pbs.example/s",
		"pbs=javascript:alert(1)//pbs.example/$UID", "a=b=c", ",,,=", "pbs=https://pbs.example\\@evil/$UID"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		got, err := ParseSyncPixels(spec, testSyncHosts)
		if err != nil {
			if got != nil {
				t.Fatalf("error %v with a list", err)
			}
			return
		}
		if len(got) > MaxSyncPixels {
			t.Fatalf("%d pixels", len(got))
		}
		seen := map[string]bool{}
		for _, p := range got {
			if !audience.ValidExchangeName(p.Name) || seen[p.Name] {
				t.Fatalf("name %q", p.Name)
			}
			seen[p.Name] = true
			if v, why := validateRedirect([]byte(p.URL), testSyncHosts); why != "" || v != p.URL {
				t.Fatalf("%q: %s", p.URL, why)
			}
			if sub := substituteUID(p.URL, "0123456789abcdef0123456789abcdef"); !strings.Contains(sub, "0123456789abcdef0123456789abcdef") {
				t.Fatalf("%q: no uid after substitution: %q", p.URL, sub)
			}
		}
	})
}

var chainPixels = []SyncPixel{
	{"pbs", "https://pbs.example/setuid?bidder=chaser&uid=$UID"},
	{"adx", "https://sync.adx.example/u?dsp=chaser&uid=${UID}"},
}

func TestSyncCookieCodec(t *testing.T) {
	now := int64(1_700_000_000)
	for _, tc := range []struct {
		in   string
		want syncTimes
		bad  bool
	}{
		{in: "", want: syncTimes{}},
		{in: "pbs:1699999000", want: syncTimes{1_699_999_000}},
		{in: "adx:5.pbs:7", want: syncTimes{7, 5}},
		{in: "gone:5.adx:6", want: syncTimes{0, 6}}, // an exchange no longer listed is dropped
		{in: "pbs:1700003600", want: syncTimes{1_700_003_600}},
		{in: "pbs:1700003601", bad: true}, // more than an hour ahead
		{in: "pbs:", bad: true},
		{in: ":5", bad: true},
		{in: "pbs", bad: true},
		{in: "pbs:5..adx:6", bad: true},
		{in: "pbs:-5", bad: true},
		{in: "pbs:99999999999999999999", bad: true},
		{in: "pbs:1e9", bad: true},
		{in: strings.Repeat("pbs:1.", 200), bad: true},
	} {
		got, err := parseSyncCookie([]byte(tc.in), chainPixels, now)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("%.40q: %v %v", tc.in, got, err)
		}
	}
	// Entries older than the interval are left out of the cookie written.
	tm := syncTimes{now - 100, now - 5000}
	if got := string(appendSyncCookie(nil, &tm, chainPixels, now, 3600)); got != "pbs:1699999900" {
		t.Fatalf("appendSyncCookie: %q", got)
	}
	tm[1] = now
	if got := string(appendSyncCookie(nil, &tm, chainPixels, now, 3600)); got != "pbs:1699999900.adx:1700000000" {
		t.Fatalf("appendSyncCookie: %q", got)
	}
}

func FuzzSyncCookie(f *testing.F) {
	for _, s := range []string{"", "pbs:1", "adx:5.pbs:7", "pbs:5..", "::..", "pbs:1700000000.adx:1700000000.x:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		now := int64(1_700_000_000)
		got, err := parseSyncCookie([]byte(v), chainPixels, now)
		if err != nil {
			if got != (syncTimes{}) {
				t.Fatalf("%q: error with times %v", v, got)
			}
			return
		}
		// What is written back reads back the same (entries within the interval).
		enc := appendSyncCookie(nil, &got, chainPixels, now, 1<<40)
		again, err := parseSyncCookie(enc, chainPixels, now)
		if err != nil || again != got {
			t.Fatalf("%q → %q → %v %v, want %v", v, enc, again, err, got)
		}
	})
}

// chainClock is a settable clock for Deps.Now.
type chainClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *chainClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *chainClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// chainFixture is the sync fixture with chainPixels, a one-hour interval
// and a settable clock.
func chainFixture(t *testing.T) (*fixture, *chainClock) {
	t.Helper()
	f := syncFixture(t)
	clock := &chainClock{t: time.Unix(1_700_000_000, 0)}
	f.deps.SyncPixels = chainPixels
	f.deps.SyncInterval = time.Hour
	f.deps.Now = clock.Now
	f.deps.GDPRVendorID = testVendor
	f.srv = New(f.deps)
	return f, clock
}

// cookieNamed returns the Set-Cookie header of the named cookie, or "".
func cookieNamed(resp *fasthttp.Response, name string) string {
	for k, v := range resp.Header.Cookies() {
		if string(k) == name {
			return string(v)
		}
	}
	return ""
}

// cookieCount counts the response's Set-Cookie headers.
func cookieCount(resp *fasthttp.Response) int {
	n := 0
	for range resp.Header.Cookies() {
		n++
	}
	return n
}

var syncCookieRe = regexp.MustCompile(`^chaser_sync=([a-z0-9_:.-]+); max-age=3600; path=/; HttpOnly(; secure)?; SameSite=(Lax|None)$`)

// chainStep requests path with the browser's cookies and folds its
// Set-Cookie headers back into them.
func (f *fixture) chainStep(t *testing.T, path string, jar map[string]string, hdr map[string]string) *fasthttp.Response {
	t.Helper()
	h := map[string]string{}
	for k, v := range hdr {
		h[k] = v
	}
	var cs []string
	for k, v := range jar {
		cs = append(cs, k+"="+v)
	}
	if len(cs) > 0 {
		h["Cookie"] = strings.Join(cs, "; ")
	}
	resp := f.do("GET", path, "", nil, h)
	for _, n := range []string{CookieName, SyncCookieName} {
		if c := cookieNamed(resp, n); c != "" {
			v, _, _ := strings.Cut(strings.TrimPrefix(c, n+"="), ";")
			jar[n] = v
		}
	}
	return resp
}

func isGIF(resp *fasthttp.Response) bool {
	return resp.StatusCode() == 200 && bytes.Equal(resp.Body(), gif1x1) && string(resp.Header.ContentType()) == "image/gif"
}

func TestPixelChainsSyncs(t *testing.T) {
	f, clock := chainFixture(t)
	adv := f.campaign.AdvertiserID
	jar := map[string]string{}
	px := "/px?adv=" + adv + "&ev=page_view&sync=1"
	https := map[string]string{"X-Forwarded-Proto": "https"}

	// First hit: a uid cookie, the event, and a 302 to the first exchange.
	stored := counter(`chaser_pixel_events_total{outcome="stored"}`)
	chained := counter(`chaser_syncs_total{exchange="pbs",outcome="chained"}`)
	resp := f.chainStep(t, px, jar, https)
	uid := jar[CookieName]
	if resp.StatusCode() != 302 || uid == "" {
		t.Fatalf("first hit: %d, uid %q", resp.StatusCode(), uid)
	}
	if loc := string(resp.Header.Peek("Location")); loc != "https://pbs.example/setuid?bidder=chaser&uid="+uid {
		t.Fatalf("Location %q", loc)
	}
	if m := syncCookieRe.FindStringSubmatch(cookieNamed(resp, SyncCookieName)); m == nil || m[1] != "pbs:1700000000" || m[2] != "; secure" || m[3] != "None" {
		t.Fatalf("sync cookie %q", cookieNamed(resp, SyncCookieName))
	}
	if !strings.Contains(string(resp.Header.Peek("Cache-Control")), "no-store") {
		t.Fatal("a chained redirect may be cached")
	}
	if counter(`chaser_pixel_events_total{outcome="stored"}`) != stored+1 || counter(`chaser_syncs_total{exchange="pbs",outcome="chained"}`) != chained+1 {
		t.Fatal("event or chained sync not counted")
	}
	if p := f.profile(t, audience.IDUID, uid); p.Counts["page_view"] != 1 {
		t.Fatalf("profile %+v", p)
	}

	// The exchange calls back /setuid with sync=1: the mapping is stored and
	// the chain goes on to the next exchange.
	clock.Add(time.Second)
	resp = f.chainStep(t, "/setuid?exchange=pbs&euid=PBS-1&sync=1", jar, nil)
	if resp.StatusCode() != 302 || string(resp.Header.Peek("Location")) != "https://sync.adx.example/u?dsp=chaser&uid="+uid {
		t.Fatalf("setuid chain: %d %q", resp.StatusCode(), resp.Header.Peek("Location"))
	}
	if jar[SyncCookieName] != "pbs:1700000000.adx:1700000001" || cookieNamed(resp, CookieName) != "" {
		t.Fatalf("sync cookie %q, uid cookie %q", jar[SyncCookieName], cookieNamed(resp, CookieName))
	}
	if p, ok := f.deps.Exchanges.Lookup([]byte("pbs"), []byte("PBS-1")); !ok || p != f.deps.Audiences.Pseudonymizer().Of(audience.IDUID, uid) {
		t.Fatal("chained /setuid did not store the mapping")
	}
	// The last exchange's call back ends the chain with the GIF.
	recent := counter(`chaser_sync_chains_total{outcome="all_recent"}`)
	if resp = f.chainStep(t, "/setuid?exchange=adx&euid=ADX-1&sync=1", jar, nil); !isGIF(resp) {
		t.Fatalf("end of chain: %d", resp.StatusCode())
	}
	if counter(`chaser_sync_chains_total{outcome="all_recent"}`) != recent+1 {
		t.Fatal("end of chain not counted")
	}

	// Within the interval: no re-sync, the pixel answers the GIF and still
	// records the event.
	clock.Add(59 * time.Minute)
	for i := 0; i < 3; i++ {
		if resp = f.chainStep(t, px, jar, nil); !isGIF(resp) || cookieNamed(resp, SyncCookieName) != "" {
			t.Fatalf("re-synced within the interval: %d %q", resp.StatusCode(), resp.Header.Peek("Location"))
		}
	}
	if p := f.profile(t, audience.IDUID, uid); p.Counts["page_view"] != 4 {
		t.Fatalf("%d page views", p.Counts["page_view"])
	}
	// pbs's entry is an hour old: pbs is due again, adx (a second younger) is not.
	clock.Add(59 * time.Second)
	resp = f.chainStep(t, px, jar, nil)
	if resp.StatusCode() != 302 || !strings.HasPrefix(string(resp.Header.Peek("Location")), "https://pbs.example/") {
		t.Fatalf("after the interval: %d %q", resp.StatusCode(), resp.Header.Peek("Location"))
	}
	if jar[SyncCookieName] != "pbs:1700003600.adx:1700000001" {
		t.Fatalf("sync cookie %q", jar[SyncCookieName])
	}
	clock.Add(time.Second)
	if resp = f.chainStep(t, px, jar, nil); resp.StatusCode() != 302 || !strings.HasPrefix(string(resp.Header.Peek("Location")), "https://sync.adx.example/") {
		t.Fatalf("adx after the interval: %d %q", resp.StatusCode(), resp.Header.Peek("Location"))
	}
	if jar[SyncCookieName] != "pbs:1700003600.adx:1700003601" {
		t.Fatalf("sync cookie %q", jar[SyncCookieName])
	}

	// A plain /px, and HEAD, still answer the GIF and chain nothing.
	for _, method := range []string{"GET", "HEAD"} {
		r := f.do(method, "/px?adv="+adv+"&ev=page_view", "", nil, nil)
		if method == "HEAD" {
			r = f.do(method, px, "", nil, nil)
		}
		if r.StatusCode() != 200 || string(r.Header.ContentType()) != "image/gif" || len(r.Header.Peek("Location")) != 0 {
			t.Fatalf("%s: %d %q", method, r.StatusCode(), r.Header.Peek("Location"))
		}
	}
}

func TestPixelChainConsent(t *testing.T) {
	f, _ := chainFixture(t)
	adv := f.campaign.AdvertiserID
	tcfSome := encodeTCF(tcfSpec{vendors: []int{1, 7, testVendor - 1}, purposes: []int{1, 2, 3, 4}})
	tcfUs := encodeTCF(tcfSpec{vendors: []int{1, testVendor}, purposes: []int{1, 2, 3, 4}})
	uid := "0123456789abcdef0123456789abcdef"
	for _, q := range []string{"gdpr=1", "gdpr=1&gdpr_consent=garbage", "gdpr=1&gdpr_consent=" + tcfSome,
		"us_privacy=1YYN", "us_privacy=bogus", "gpp_sid=7"} {
		for _, cookie := range []string{"", uid} {
			hdr := map[string]string{}
			if cookie != "" {
				hdr["Cookie"] = CookieName + "=" + cookie
			}
			refused := counter(`chaser_sync_chains_total{outcome="no_consent"}`)
			resp := f.do("GET", "/px?adv="+adv+"&ev=page_view&sync=1&"+q, "", nil, hdr)
			if !isGIF(resp) || len(resp.Header.Peek("Location")) != 0 || cookieCount(resp) != 0 {
				t.Fatalf("%s (cookie %q): %d %q, cookies %q", q, cookie, resp.StatusCode(), resp.Header.Peek("Location"), cookieNamed(resp, CookieName))
			}
			if counter(`chaser_sync_chains_total{outcome="no_consent"}`) != refused+1 {
				t.Fatalf("%s: refusal not counted", q)
			}
			// Nor does the exchange's call back chain on.
			resp = f.do("GET", "/setuid?exchange=pbs&euid=E&sync=1&"+q, "", nil, map[string]string{"Cookie": CookieName + "=" + uid + "; " + SyncCookieName + "=pbs:1700000000"})
			if !isGIF(resp) || cookieCount(resp) != 0 {
				t.Fatalf("setuid %s: %d %q", q, resp.StatusCode(), resp.Header.Peek("Location"))
			}
		}
		// Without a cookie or any id, the event has no user it may keep.
		dropped := counter(`chaser_pixel_events_total{outcome="dropped",reason="no_consent"}`)
		f.do("GET", "/px?adv="+adv+"&ev=page_view&"+q, "", nil, nil)
		if counter(`chaser_pixel_events_total{outcome="dropped",reason="no_consent"}`) != dropped+1 {
			t.Fatalf("%s: event without consent or id not dropped", q)
		}
	}
	// With consent (or no signal), the chain starts.
	for _, q := range []string{"gdpr=0&us_privacy=1YNN", "gdpr=1&gdpr_consent=" + tcfUs, "x=1"} {
		resp := f.do("GET", "/px?adv="+adv+"&ev=page_view&sync=1&"+q, "", nil, nil)
		m := cookieRe.FindStringSubmatch(cookieNamed(resp, CookieName))
		if resp.StatusCode() != 302 || m == nil || string(resp.Header.Peek("Location")) != "https://pbs.example/setuid?bidder=chaser&uid="+m[1] {
			t.Fatalf("%s: %d %q %q", q, resp.StatusCode(), resp.Header.Peek("Location"), cookieNamed(resp, CookieName))
		}
	}
}

func TestPixelChainBadInput(t *testing.T) {
	f, _ := chainFixture(t)
	adv := f.campaign.AdvertiserID
	uid := "0123456789abcdef0123456789abcdef"
	px := "/px?adv=" + adv + "&ev=page_view&sync=1"
	// A malformed sync cookie counts as empty (counted) and is replaced.
	for _, bad := range []string{"pbs", "pbs:9999999999", "pbs:1..adx:2", "<script>", strings.Repeat("a", 2000)} {
		before := counter(`chaser_sync_bad_chain_cookies_total`)
		resp := f.do("GET", px, "", nil, map[string]string{"Cookie": CookieName + "=" + uid + "; " + SyncCookieName + "=" + bad})
		if resp.StatusCode() != 302 || syncCookieRe.FindStringSubmatch(cookieNamed(resp, SyncCookieName)) == nil {
			t.Fatalf("%.20q: %d %q", bad, resp.StatusCode(), cookieNamed(resp, SyncCookieName))
		}
		if counter(`chaser_sync_bad_chain_cookies_total`) != before+1 {
			t.Fatalf("%.20q: not counted", bad)
		}
	}
	// /setuid&sync=1 does not chain when the cookie does not record the
	// calling exchange (a browser that drops cookies must not loop), when
	// the exchange is not on the list, or without a uid cookie.
	for _, tc := range []struct{ q, cookie, outcome string }{
		{"exchange=adx&euid=A", CookieName + "=" + uid + "; " + SyncCookieName + "=pbs:1700000000", "not_synced"},
		{"exchange=pbs&euid=A", CookieName + "=" + uid, "not_synced"},
		{"exchange=evil&euid=A", CookieName + "=" + uid + "; " + SyncCookieName + "=pbs:1700000000", "not_synced"},
		{"exchange=pbs&euid=A", SyncCookieName + "=pbs:1700000000", "no_uid"},
		{"exchange=pbs&euid=A", CookieName + "=" + uid + "; " + SyncCookieName + "=pbs:1699996400", "not_synced"}, // an hour old
	} {
		before := counter(`chaser_sync_chains_total{outcome="` + tc.outcome + `"}`)
		resp := f.do("GET", "/setuid?sync=1&"+tc.q, "", nil, map[string]string{"Cookie": tc.cookie})
		if !isGIF(resp) || cookieNamed(resp, SyncCookieName) != "" {
			t.Fatalf("%s %s: %d %q", tc.q, tc.cookie, resp.StatusCode(), resp.Header.Peek("Location"))
		}
		if counter(`chaser_sync_chains_total{outcome="`+tc.outcome+`"}`) != before+1 {
			t.Fatalf("%s %s: %s not counted", tc.q, tc.cookie, tc.outcome)
		}
	}
	// sync=1 without sync pixels, or sync=0/2: the plain pixel.
	g := syncFixture(t)
	for _, srv := range []*fixture{g, f} {
		for _, q := range []string{"sync=1", "sync=0", "sync=yes", "sync=1&sync=1"} {
			if srv == f && strings.HasPrefix(q, "sync=1") {
				continue
			}
			resp := srv.do("GET", "/px?adv="+adv+"&ev=page_view&"+q, "", nil, map[string]string{"Cookie": CookieName + "=" + uid})
			if !isGIF(resp) {
				t.Fatalf("%s: %d", q, resp.StatusCode())
			}
		}
	}
	// An advertiser uid and no cookie: with sync=1 Chaser's cookie is set
	// and sent, and the advertiser's id linked to it.
	resp := f.do("GET", px+"&uid=shop-user-9", "", nil, nil)
	m := cookieRe.FindStringSubmatch(cookieNamed(resp, CookieName))
	if resp.StatusCode() != 302 || m == nil || !strings.HasSuffix(string(resp.Header.Peek("Location")), "uid="+m[1]) {
		t.Fatalf("uid param: %d %q", resp.StatusCode(), resp.Header.Peek("Location"))
	}
	if _, err := url.Parse(string(resp.Header.Peek("Location"))); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPixelChain is a /px?sync=1 hit from a browser with both cookies:
// "redirect" chains to the second exchange, "all_recent" answers the GIF.
func BenchmarkPixelChain(b *testing.B) {
	for _, bc := range []struct{ name, synced string }{
		{"redirect", "pbs:1700000000"},
		{"all_recent", "pbs:1700000000.adx:1700000000"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b)
			f.deps.SyncPixels, f.deps.SyncInterval = chainPixels, time.Hour
			f.deps.Now = func() time.Time { return time.Unix(1_700_000_100, 0) }
			f.srv = New(f.deps)
			uri := "/px?adv=" + f.campaign.AdvertiserID + "&ev=page_view&sync=1"
			cookie := CookieName + "=0123456789abcdef0123456789abcdef; " + SyncCookieName + "=" + bc.synced
			want := 302
			if bc.name == "all_recent" {
				want = 200
			}
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.Header.SetMethod("GET")
				ctx.Request.SetRequestURI(uri)
				ctx.Request.Header.Set("Cookie", cookie)
				f.srv.Handle(&ctx)
				if ctx.Response.StatusCode() != want {
					b.Fatal(ctx.Response.StatusCode())
				}
			}
		})
	}
}
