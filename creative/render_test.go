package creative

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
