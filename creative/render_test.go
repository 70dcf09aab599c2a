package creative

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testProducts() []*Product {
	return []*Product{
		{ID: "sku-1", Title: "Red Running Shoe", PriceMicros: 59_900_000, Currency: "USD", ImageURL: "http://cdn.example/1.jpg", LandingURL: "https://shop.example/p/1", InStock: true},
		{ID: "sku-2", Title: "Blue Trail Shoe", PriceMicros: 79_000_000, Currency: "USD", ImageURL: "https://cdn.example/2.jpg", LandingURL: "https://shop.example/p/2", InStock: true},
		{ID: "sku-3", Title: "Green Hat", PriceMicros: 19_000_000, Currency: "USD", ImageURL: "https://cdn.example/3.jpg", LandingURL: "https://shop.example/p/3", InStock: true},
		{ID: "sku-4", Title: "Wool Socks", PriceMicros: 5_000_000, Currency: "USD", LandingURL: "https://shop.example/p/4", InStock: true},
	}
}

// TestBannerGolden renders every IAB size the templates support and
// compares with testdata/golden (go test ./creative -run Golden -update).
func TestBannerGolden(t *testing.T) {
	s := NewClickSigner([]byte("golden-secret-0123456789"))
	for _, sz := range [][2]int64{{300, 250}, {728, 90}, {320, 50}, {300, 600}, {160, 600}, {320, 480}} {
		n := ProductsForSize(sz[0], sz[1])
		ps := testProducts()[:n]
		b := &Banner{W: sz[0], H: sz[1], Products: ps, Offer: "10% off today", Secure: true,
			BaseURL: "https://bid.example", Advertiser: "adv_1", Campaign: "cmp_1", ImpURL: "https://bid.example/notice/imp?t=T"}
		got := s.AppendBannerHTML(nil, b)
		crid := string(AppendCRID(nil, sz[0], sz[1], false, ps))
		name := filepath.Join("testdata", "golden", "banner_"+crid[1:strings.IndexByte(crid, ':')]+".html")
		if *update {
			if err := os.WriteFile(name, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("%v (run with -update to create)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from golden:\n got %s\nwant %s", name, got, want)
		}
		if strings.Contains(string(got), `src='http://`) {
			t.Errorf("%s: insecure asset in a secure banner", name)
		}
		if c := strings.Count(string(got), `class='chaser-item'`); c != n {
			t.Errorf("%s: %d products, want %d", name, c, n)
		}
	}
}

func TestBannerEscapesHostileValues(t *testing.T) {
	s := NewClickSigner([]byte("escape-secret-0123456789"))
	p := &Product{ID: `x"><script>alert(1)</script>`, Title: `<script>alert("t")</script>' onerror='x`,
		PriceMicros: 1, Currency: "USD", ImageURL: `https://cdn.example/a.jpg?"onload="alert(1)`, LandingURL: "https://shop.example/"}
	html := string(s.AppendBannerHTML(nil, &Banner{W: 300, H: 250, Products: []*Product{p},
		Offer: `<img src=x onerror=alert(1)>`, BaseURL: "https://bid.example", Advertiser: "a", Campaign: "c"}))
	for _, bad := range []string{"<script", `"onload="`, `'onload='`, "<img src=x", `' onerror='`, `" onerror="`} {
		if strings.Contains(html, bad) {
			t.Fatalf("unescaped %q in %s", bad, html)
		}
	}
}

func TestFeedRejectsDangerousURLs(t *testing.T) {
	c := newTestCatalog(t)
	feed := "id,title,price,landing_url,image_url\n" +
		"a,Good,1.00,https://shop.example/a,https://cdn.example/a.jpg\n" +
		"b,Script,1.00,javascript:alert(1),https://cdn.example/b.jpg\n" +
		"c,Data image,1.00,https://shop.example/c,data:text/html;base64,PHNjcmlwdD4=\n" +
		"d,Relative,1.00,/p/d,\n"
	rep, err := c.Replace("adv", strings.NewReader(feed), "csv")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Valid != 1 || rep.Invalid != 3 {
		t.Fatalf("report %+v", rep)
	}
	for _, e := range rep.Errors {
		if e.Field != "landing_url" && e.Field != "image_url" {
			t.Fatalf("error names field %q", e.Field)
		}
	}
}

func TestClickSignature(t *testing.T) {
	s := NewClickSigner([]byte("click-secret-0123456789"))
	u := string(s.AppendClickURL(nil, "", "adv", "cmp", "sku-1"))
	sig := u[strings.Index(u, "&s=")+3:]
	cases := []struct {
		adv, cmp, p, sig string
		ok               bool
	}{
		{"adv", "cmp", "sku-1", sig, true},
		{"adv", "cmp", "sku-2", sig, false},
		{"adv2", "cmp", "sku-1", sig, false},
		{"adv", "cmp", "sku-1", sig[:len(sig)-1] + "A", false},
		{"adv", "cmp", "sku-1", "", false},
	}
	for _, tc := range cases {
		if got := s.Verify(tc.adv, tc.cmp, tc.p, tc.sig); got != tc.ok {
			t.Errorf("Verify(%q,%q,%q) = %v, want %v", tc.adv, tc.cmp, tc.p, got, tc.ok)
		}
	}
	other := NewClickSigner([]byte("another-secret-0123456"))
	if other.Verify("adv", "cmp", "sku-1", sig) {
		t.Fatal("signature valid under another secret")
	}
}

// TestSigMemo: signatures from the memo are the MAC of their own ids, for
// more products than the memo has slots (so entries are replaced and slots
// shared), asked twice in different orders; the memo keeps copies of its
// ids, so a caller reusing its buffer cannot change an entry; ids too long
// for the memo are signed afresh.
func TestSigMemo(t *testing.T) {
	s := NewClickSigner([]byte("memo-secret-0123456789"))
	want := func(adv, cmp, p string) string {
		return string(s.appendMAC(nil, adv, cmp, p))
	}
	got := func(adv, cmp, p string) string {
		return string(s.appendSig(nil, adv, cmp, p))
	}
	n := 2*sigSlots + 7
	for _, order := range []int{1, -1} {
		for i := range n {
			if order < 0 {
				i = n - 1 - i
			}
			adv, cmp, p := "adv-"+strconv.Itoa(i%3), "cmp-"+strconv.Itoa(i%5), "sku-"+strconv.Itoa(i)
			if g, w := got(adv, cmp, p), want(adv, cmp, p); g != w {
				t.Fatalf("%s/%s/%s: memo gave %q, MAC is %q", adv, cmp, p, g, w)
			}
		}
	}
	buf := []byte("sku-reused")
	id := unsafe.String(&buf[0], len(buf))
	first := got("adv", "cmp", id)
	copy(buf, "sku-other!")
	s.sigs.Range(func(k [3]string, sig [sigLen]byte) bool {
		if string(sig[:]) != want(k[0], k[1], k[2]) {
			t.Fatalf("the memo holds %q for %s/%s/%s, not its MAC", sig, k[0], k[1], k[2])
		}
		return true
	})
	if g, w := got("adv", "cmp", "sku-other!"), want("adv", "cmp", "sku-other!"); g != w {
		t.Fatalf("after the caller's buffer changed: memo gave %q, MAC is %q", g, w)
	}
	if g := got("adv", "cmp", "sku-reused"); g != first {
		t.Fatalf("sku-reused: %q then %q", first, g)
	}
	long := strings.Repeat("x", maxMemoID+1)
	if g, w := got("adv", "cmp", long), want("adv", "cmp", long); g != w || len(g) != sigLen {
		t.Fatalf("long id: memo gave %q, MAC is %q", g, w)
	}
	u := string(s.AppendClickURL(nil, "https://b.example", "adv", "cmp", "sku-1"))
	if sig := u[strings.Index(u, "&s=")+3:]; !s.Verify("adv", "cmp", "sku-1", sig) {
		t.Fatalf("%s: Verify refuses the memo's signature", u)
	}
}

func TestNativeADM(t *testing.T) {
	s := NewClickSigner([]byte("native-secret-0123456789"))
	p := testProducts()[0]
	cases := []struct {
		name, req string
		ok        bool
		contains  []string
	}{
		{"1.2 title image price", `{"ver":"1.2","assets":[{"id":1,"required":1,"title":{"len":10}},{"id":2,"img":{"type":3}},{"id":3,"data":{"type":6}}]}`,
			true, []string{`"ver":"1.2"`, `"text":"Red Runni…"`, `"url":"https://cdn.example/1.jpg"`, `"value":"59.90 USD"`}},
		{"1.1 wrapped", `{"native":{"ver":"1.1","assets":[{"id":1,"required":1,"title":{"len":90}}]}}`, true, []string{`{"native":{`}},
		{"required video", `{"ver":"1.2","assets":[{"id":1,"required":1,"video":{"mimes":["video/mp4"]}}]}`, false, nil},
		{"malformed", `{"ver":`, false, nil},
		{"no assets", `{"ver":"1.2","assets":[]}`, false, nil},
	}
	for _, tc := range cases {
		adm, ok := s.NativeADM(&Native{Request: tc.req, Product: p, Secure: true, BaseURL: "https://bid.example", Advertiser: "a", Campaign: "c"})
		if ok != tc.ok {
			t.Fatalf("%s: ok=%v want %v (%s)", tc.name, ok, tc.ok, adm)
		}
		for _, c := range tc.contains {
			if !strings.Contains(adm, c) {
				t.Fatalf("%s: %s lacks %s", tc.name, adm, c)
			}
		}
	}
}

// BenchmarkClickURL: a product's click URL with its signature from the memo
// (a product shown again) and signed afresh (HMAC-SHA256).
func BenchmarkClickURL(b *testing.B) {
	s := NewClickSigner([]byte("bench-secret-0123456789"))
	buf := make([]byte, 0, 256)
	b.Run("memo", func(b *testing.B) {
		for b.Loop() {
			buf = s.AppendClickURL(buf[:0], "https://bid.example", "adv-7", "cmp-12", "sku-123456")
		}
	})
	b.Run("mac", func(b *testing.B) {
		for b.Loop() {
			buf = s.appendMAC(buf[:0], "adv-7", "cmp-12", "sku-123456")
		}
	})
}
