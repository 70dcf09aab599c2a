package bidder

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/chaser-dsp/chaser/audience"
)

const emailHash = "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"

var cookieRe = regexp.MustCompile(`^chaser_uid=([0-9a-f]{32}); max-age=31536000; path=/; HttpOnly(; secure)?; SameSite=(Lax|None)$`)

// pixel requests /px?q with optional request headers and checks that the
// answer is the no-cache GIF.
func (f *fixture) pixel(t *testing.T, q string, hdr map[string]string) *fasthttp.Response {
	t.Helper()
	resp := f.do("GET", "/px?"+q, "", nil, hdr)
	if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), gif1x1) || string(resp.Header.ContentType()) != "image/gif" {
		t.Fatalf("pixel %s: status %d, type %s, %d bytes", q, resp.StatusCode(), resp.Header.ContentType(), len(resp.Body()))
	}
	if cc := string(resp.Header.Peek("Cache-Control")); !strings.Contains(cc, "no-store") {
		t.Fatalf("pixel: Cache-Control %q", cc)
	}
	return resp
}

func setCookie(resp *fasthttp.Response) string {
	var out string
	for _, v := range resp.Header.PeekAll("Set-Cookie") {
		out = string(v)
	}
	return out
}

func counter(name string) uint64 { return metrics.GetOrCreateCounter(name).Get() }

func (f *fixture) profile(t *testing.T, kind audience.IDType, id string) *audience.Profile {
	t.Helper()
	p, err := f.deps.Audiences.Profile(f.campaign.AdvertiserID, f.deps.Audiences.Pseudonymizer().Of(kind, id))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPixelCookie(t *testing.T) {
	f := newFixture(t)
	adv := f.campaign.AdvertiserID
	// First visit: no cookie, no uid: Chaser sets its cookie and records the
	// event under it.
	resp := f.pixel(t, "adv="+adv+"&ev=product_view&pid=sku-1&cb=123", nil)
	m := cookieRe.FindStringSubmatch(setCookie(resp))
	if m == nil || m[3] != "Lax" || m[2] != "" {
		t.Fatalf("Set-Cookie %q", setCookie(resp))
	}
	uid := m[1]
	if p := f.profile(t, audience.IDUID, uid); len(p.Events) != 1 || p.Events[0].Products[0] != "sku-1" {
		t.Fatalf("profile %+v", p)
	}
	// Next visit sends the cookie: same user, no new cookie.
	resp = f.pixel(t, "adv="+adv+"&ev=add_to_cart&pid=sku-1,sku-2&pid=sku-3&val=12.50&cur=usd", map[string]string{"Cookie": CookieName + "=" + uid})
	if sc := setCookie(resp); sc != "" {
		t.Fatalf("cookie set again: %q", sc)
	}
	p := f.profile(t, audience.IDUID, uid)
	if len(p.Events) != 2 || strings.Join(p.Events[1].Products, ",") != "sku-1,sku-2,sku-3" || p.Events[1].ValueMicros != 12_500_000 {
		t.Fatalf("profile %+v", p)
	}
	// Over https (behind a proxy): SameSite=None; Secure.
	for _, hdr := range []map[string]string{{"X-Forwarded-Proto": "https"}, {"X-Forwarded-Proto": "HTTPS, http"}} {
		m := cookieRe.FindStringSubmatch(setCookie(f.pixel(t, "adv="+adv+"&ev=page_view", hdr)))
		if m == nil || m[3] != "None" || m[2] != "; secure" {
			t.Fatalf("https Set-Cookie %q", setCookie(f.pixel(t, "adv="+adv+"&ev=page_view", hdr)))
		}
	}
	// A uid parameter and no cookie: the uid is the user, no cookie is set.
	resp = f.pixel(t, "adv="+adv+"&ev=page_view&uid=shop-user-7", nil)
	if sc := setCookie(resp); sc != "" {
		t.Fatalf("cookie set despite uid: %q", sc)
	}
	if p := f.profile(t, audience.IDUID, "shop-user-7"); len(p.Events) != 1 {
		t.Fatalf("uid profile %+v", p)
	}
	// Cookie and a different uid and a hashed e-mail: the cookie is the
	// user, the others are linked to it.
	f.pixel(t, "adv="+adv+"&ev=login&uid=shop-user-7&em="+emailHash, map[string]string{"Cookie": CookieName + "=" + uid})
	pz := f.deps.Audiences.Pseudonymizer()
	links, err := f.deps.Audiences.Links(pz.Of(audience.IDUID, uid), 10)
	if err != nil || len(links) != 2 {
		t.Fatalf("links of the cookie: %v %v", links, err)
	}
	if p := f.profile(t, audience.IDUID, uid); len(p.Events) != 3 {
		t.Fatalf("cookie profile %+v", p)
	}
	// A malformed cookie is replaced.
	before := counter(`chaser_pixel_bad_params_total{param="cookie"}`)
	resp = f.pixel(t, "adv="+adv+"&ev=page_view", map[string]string{"Cookie": CookieName + "=../../etc/passwd"})
	if cookieRe.FindStringSubmatch(setCookie(resp)) == nil || counter(`chaser_pixel_bad_params_total{param="cookie"}`) != before+1 {
		t.Fatalf("bad cookie not replaced: %q", setCookie(resp))
	}
}

func TestPixelBadInput(t *testing.T) {
	f := newFixture(t)
	adv := f.campaign.AdvertiserID
	const cookie = "0123456789abcdef0123456789abcdef"
	hdr := map[string]string{"Cookie": CookieName + "=" + cookie}
	long := strings.Repeat("x", 5000)
	var manyPIDs string
	for i := 0; i < 30; i++ {
		manyPIDs += fmt.Sprintf("p%d,", i)
	}
	dropped := func(reason string) string {
		return `chaser_pixel_events_total{outcome="dropped",reason="` + reason + `"}`
	}
	badParam := func(p string) string { return `chaser_pixel_bad_params_total{param="` + p + `"}` }
	for _, tc := range []struct {
		name    string
		query   string
		counter string
		stored  bool // the event is still stored (only a parameter was dropped)
	}{
		{"no advertiser", "ev=page_view", dropped("no_advertiser"), false},
		{"unknown advertiser", "adv=adv_nobody&ev=page_view", dropped("unknown_advertiser"), false},
		{"oversized advertiser", "adv=" + long + "&ev=page_view", badParam("adv"), false},
		{"no event", "adv=" + adv, dropped("no_event"), false},
		{"garbage event", "adv=" + adv + "&ev=%3Cscript%3E", dropped("bad_event"), false},
		{"repeated advertiser", "adv=" + adv + "&adv=adv_other&ev=page_view", badParam("adv"), true},
		{"plain e-mail", "adv=" + adv + "&ev=login&em=someone%40example.com", badParam("em"), true},
		{"bad maid", "adv=" + adv + "&ev=page_view&maid=not-a-uuid", badParam("maid"), true},
		{"bad uid", "adv=" + adv + "&ev=page_view&uid=has%20space", badParam("uid"), true},
		{"oversized uid", "adv=" + adv + "&ev=page_view&uid=" + long, badParam("uid"), true},
		{"bad pid", "adv=" + adv + "&ev=product_view&pid=ok,%00bad", badParam("pid"), true},
		{"too many pids", "adv=" + adv + "&ev=product_view&pid=" + manyPIDs, badParam("pid"), true},
		{"negative value", "adv=" + adv + "&ev=purchase&val=-5", badParam("val"), true},
		{"NaN value", "adv=" + adv + "&ev=purchase&val=NaN", badParam("val"), true},
		{"garbage value", "adv=" + adv + "&ev=purchase&val=12,50", badParam("val"), true},
		{"bad currency", "adv=" + adv + "&ev=purchase&cur=dollars", badParam("cur"), true},
		{"oversized event id", "adv=" + adv + "&ev=purchase&evid=" + long, badParam("evid"), true},
		{"percent garbage", "adv=" + adv + "&ev=page_view&%zz=%%%", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before uint64
			if tc.counter != "" {
				before = counter(tc.counter)
			}
			n := len(f.profile(t, audience.IDUID, cookie).Events)
			f.pixel(t, tc.query, hdr)
			if tc.counter != "" && counter(tc.counter) != before+1 {
				t.Errorf("%s: %d → %d", tc.counter, before, counter(tc.counter))
			}
			got := len(f.profile(t, audience.IDUID, cookie).Events)
			if stored := got == n+1; stored != tc.stored {
				t.Errorf("stored = %v, want %v", stored, tc.stored)
			}
		})
	}
	// Nothing was stored for the unknown advertiser.
	p, _ := f.deps.Audiences.Profile("adv_nobody", f.deps.Audiences.Pseudonymizer().Of(audience.IDUID, cookie))
	if len(p.Events) != 0 {
		t.Errorf("unknown advertiser's profile %+v", p)
	}
	// The plain e-mail left no link (it is never hashed and kept).
	if l, _ := f.deps.Audiences.Links(f.deps.Audiences.Pseudonymizer().Of(audience.IDUID, cookie), 10); len(l) != 0 {
		t.Errorf("links %v", l)
	}
	// Values dropped, events kept: no purchase value counted.
	if p := f.profile(t, audience.IDUID, cookie); p.MonetaryMicros != 0 || p.Purchases != 5 {
		t.Errorf("RFM after bad values %+v", p)
	}
	// A POST is still answered with the GIF, and counted.
	before := counter(dropped("method"))
	resp := f.do("POST", "/px?adv="+adv+"&ev=page_view", "text/plain", []byte("x"), hdr)
	if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), gif1x1) || counter(dropped("method")) != before+1 {
		t.Errorf("POST pixel: %d", resp.StatusCode())
	}
	// An event id makes a repeat a no-op.
	before = counter(`chaser_pixel_events_total{outcome="duplicate"}`)
	f.pixel(t, "adv="+adv+"&ev=purchase&evid=order-9&val=10", hdr)
	f.pixel(t, "adv="+adv+"&ev=purchase&evid=order-9&val=10", hdr)
	if counter(`chaser_pixel_events_total{outcome="duplicate"}`) != before+1 {
		t.Error("repeated order not counted as a duplicate")
	}
	if p := f.profile(t, audience.IDUID, cookie); p.MonetaryMicros != 10e6 {
		t.Errorf("repeated order counted twice: %+v", p.MonetaryMicros)
	}
}

// TestSuppressionByRuleAudience: a campaign's excluded rule audience of
// recent purchasers keeps a list member out once they buy.
func TestSuppressionByRuleAudience(t *testing.T) {
	f := newFixture(t)
	am := f.deps.Audiences
	buyers, err := am.Create(audience.Audience{AdvertiserID: f.campaign.AdvertiserID, Name: "buyers", Type: audience.TypeRule,
		Rule: []byte(`{"event":"purchase","within_days":30}`)})
	if err != nil {
		t.Fatal(err)
	}
	am.WaitRules()
	c := f.campaign
	c.Targeting.ExcludeAudiences = []string{buyers.ID}
	if _, err := f.deps.Campaigns.Update(c); err != nil {
		t.Fatal(err)
	}
	req := []byte(`{"id":"s1","imp":[{"id":"1","banner":{"w":300,"h":250}}],"device":{"geo":{"country":"KOR"}},"user":{"buyeruid":"member-cookie"}}`)
	if resp := f.do("POST", "/openrtb2/bid", "application/json", req, nil); resp.StatusCode() != 200 {
		t.Fatalf("member before purchase: %d", resp.StatusCode())
	}
	f.pixel(t, "adv="+c.AdvertiserID+"&ev=purchase&uid=member-cookie&pid=sku-1&val=59.9", nil)
	if !am.Snapshot().Contains(buyers.ID, am.Pseudonymizer().Of(audience.IDUID, "member-cookie")) {
		t.Fatal("purchaser not in the buyers audience")
	}
	if resp := f.do("POST", "/openrtb2/bid", "application/json", req, nil); resp.StatusCode() != 204 {
		t.Fatalf("suppressed purchaser got status %d", resp.StatusCode())
	}
}

func FuzzPixelQuery(f *testing.F) {
	fx := newFixture(f)
	adv := fx.campaign.AdvertiserID
	for _, q := range []string{
		"adv=" + adv + "&ev=product_view&pid=sku-1&val=1.5&cur=USD",
		"adv=" + adv + "&ev=login&uid=u-1&em=" + emailHash + "&maid=6d92078a-8246-4ba4-ae5b-76104861e7dc",
		"adv=" + adv + "&ev=purchase&pid=a,b,,c&pid=d&evid=o-1&val=1e308",
		"adv=&ev=&pid=%00&val=-0&cur=%FF%FF%FF", "%", "&&&==", "adv=" + adv + "&ev=x&uid=" + url.QueryEscape("é"),
	} {
		f.Add(q, "")
	}
	f.Add("adv="+adv+"&ev=page_view", "0123456789abcdef0123456789abcdef")
	f.Fuzz(func(t *testing.T, q, cookie string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("GET")
		ctx.Request.SetRequestURI("/px")
		ctx.Request.URI().SetQueryString(q)
		if cookie != "" {
			ctx.Request.Header.SetCookie(CookieName, cookie)
		}
		fx.srv.Handle(&ctx)
		if ctx.Response.StatusCode() != 200 || !bytes.Equal(ctx.Response.Body(), gif1x1) {
			t.Fatalf("status %d", ctx.Response.StatusCode())
		}
		in, _ := parsePixelQuery(ctx.QueryArgs())
		if in.EmailSHA256 != "" && !isHex64([]byte(in.EmailSHA256)) {
			t.Fatalf("kept a non-hash e-mail %q", in.EmailSHA256)
		}
		if len(in.Products) > audience.MaxEventProducts {
			t.Fatalf("%d products", len(in.Products))
		}
	})
}

// BenchmarkPixel50Rules serves pixel events in process (query parsing,
// profile read-modify-write in Pebble, 50 rules re-evaluated) for 100 k
// users.
func BenchmarkPixel50Rules(b *testing.B) {
	fx := newFixture(b)
	adv := fx.campaign.AdvertiserID
	am := fx.deps.Audiences
	for i := 0; i < 50; i++ {
		d := 3 + i%12
		var rule string
		switch i % 4 {
		case 0:
			rule = fmt.Sprintf(`{"all":[{"event":"add_to_cart","within_days":%d},{"not":{"event":"purchase","within_days":%d}}]}`, d, d)
		case 1:
			rule = fmt.Sprintf(`{"event":"product_view","product":"sku-%d","min_count":2,"within_days":%d}`, i%3+1, d)
		case 2:
			rule = fmt.Sprintf(`{"rfm":{"recency_days_max":%d,"frequency_min":%d}}`, 10*d, 1+i%3)
		case 3:
			rule = fmt.Sprintf(`{"any":[{"event":"page_view","min_count":%d},{"not":{"event":"product_view","within_days":%d}}]}`, 2+i%3, d)
		}
		if _, err := am.Create(audience.Audience{AdvertiserID: adv, Name: "r", Type: audience.TypeRule, Rule: []byte(rule)}); err != nil {
			b.Fatal(err)
		}
	}
	am.WaitRules()
	events := []string{"page_view", "product_view", "product_view", "add_to_cart", "purchase"}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 3))
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.Header.SetMethod("GET")
			ctx.Request.SetRequestURI(fmt.Sprintf("/px?adv=%s&ev=%s&uid=u-%d&pid=sku-%d&val=19.90&cur=USD", adv,
				events[r.IntN(len(events))], r.IntN(100_000), 1+r.IntN(3)))
			fx.srv.Handle(&ctx)
			if ctx.Response.StatusCode() != 200 {
				b.Fatal(ctx.Response.StatusCode())
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
}

// cpuTime is the process's user+system CPU time: on a shared, loaded machine
// it measures the work done better than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
