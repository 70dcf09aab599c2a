package loadtest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prebid/go-gdpr/consentconstants"
	"github.com/prebid/go-gdpr/vendorconsent"
	nativereq "github.com/prebid/openrtb/v20/native1/request"
	"github.com/prebid/openrtb/v20/openrtb2"
)

var allowedSizes = map[[2]int64]bool{
	{300, 250}: true, {728, 90}: true, {320, 50}: true, {300, 600}: true, {160, 600}: true, {320, 480}: true,
}

var iso3166Alpha3 = map[string]bool{"KOR": true, "USA": true, "JPN": true, "DEU": true, "FRA": true, "NLD": true, "ESP": true, "ITA": true, "GBR": true, "AUS": true}

// decodeBody gunzips (with the standard library, not the code under test)
// when needed and decodes a BidRequest strictly.
func decodeBody(t *testing.T, body []byte, gzipped bool) (*openrtb2.BidRequest, []byte) {
	t.Helper()
	plain := body
	if gzipped {
		br := bytes.NewReader(body)
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatal(err)
		}
		zr.Multistream(false) // one member, as most decoders expect
		if plain, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		if br.Len() != 0 {
			t.Fatalf("%d bytes after the gzip member", br.Len())
		}
	}
	var req openrtb2.BidRequest
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		t.Fatalf("decode: %v\n%s", err, plain)
	}
	return &req, plain
}

func TestPoolRequestsAreValidOpenRTB(t *testing.T) {
	tr := DefaultConfig().Traffic
	tr.PoolSize = 3000
	pool, err := NewPool(tr, 120*time.Millisecond, SecondPrice)
	if err != nil {
		t.Fatal(err)
	}
	if pool.Len() != tr.PoolSize {
		t.Fatalf("pool has %d requests, want %d", pool.Len(), tr.PoolSize)
	}
	var (
		sites, apps, gzipped, known, gdpr, gdprConsent, coppa, optOut, native, imps, floors int
		inSize, distinct                                                                    int
		seen                                                                                = map[string]bool{}
	)
	for i := range pool.Len() {
		id := fmt.Sprintf("abcdef01-%015d", i)
		body, gz := pool.Wire(i, id)
		req, plain := decodeBody(t, body, gz)
		if !bytes.Equal(plain[len(`{"id":"`+id+`"`):], pool.JSON(i)[len(`{"id":"`+placeholderID+`"`):]) {
			t.Fatalf("request %d: wire body differs from JSON beyond the id", i)
		}
		if !seen[string(pool.JSON(i))] {
			distinct++
			seen[string(pool.JSON(i))] = true
		}
		if gz {
			gzipped++
		}
		if n := len(plain); n >= 1024 && n <= 3072 {
			inSize++
		} else if n > 4096 || n < 700 {
			t.Errorf("request %d is %d bytes", i, n)
		}
		where := fmt.Sprintf("request %d", i)

		if req.ID != id {
			t.Fatalf("%s: id %q, want %q", where, req.ID, id)
		}
		if req.TMax != 120 || req.AT != 2 || len(req.Cur) != 1 || req.Cur[0] != "USD" {
			t.Errorf("%s: tmax %d at %d cur %v", where, req.TMax, req.AT, req.Cur)
		}
		if (req.Site == nil) == (req.App == nil) {
			t.Fatalf("%s: want exactly one of site and app", where)
		}
		if req.Device == nil || req.Device.UA == "" || req.Device.IP == "" || req.Device.DeviceType == 0 || req.Device.OS == "" {
			t.Fatalf("%s: device %+v", where, req.Device)
		}
		if g := req.Device.Geo; g == nil || !iso3166Alpha3[g.Country] {
			t.Errorf("%s: geo %+v", where, g)
		}
		if req.User == nil || req.Regs == nil || req.Source == nil || req.Source.SChain == nil {
			t.Fatalf("%s: user, regs and source.schain wanted", where)
		}
		if len(req.BCat) == 0 {
			t.Errorf("%s: no bcat", where)
		}
		if req.Site != nil {
			sites++
			if !strings.HasPrefix(req.Site.Page, "https://"+req.Site.Domain+"/") || req.Site.Publisher == nil {
				t.Errorf("%s: site %+v", where, req.Site)
			}
		} else {
			apps++
			if req.App.Bundle == "" || req.Device.IFA == "" {
				t.Errorf("%s: app %q ifa %q", where, req.App.Bundle, req.Device.IFA)
			}
		}
		if uid := req.User.BuyerUID; strings.HasPrefix(uid, tr.KnownPrefix) {
			known++
			n, err := strconv.Atoi(strings.TrimPrefix(uid, tr.KnownPrefix))
			if err != nil || n < 1 || n > tr.KnownCount {
				t.Errorf("%s: known user %q out of range", where, uid)
			}
		}
		if pool.Known(i) != strings.HasPrefix(req.User.BuyerUID, tr.KnownPrefix) {
			t.Errorf("%s: Known() disagrees with buyeruid %q", where, req.User.BuyerUID)
		}

		// Privacy signals.
		if req.Regs.GDPR != nil && *req.Regs.GDPR == 1 {
			gdpr++
			switch req.Device.Geo.Country {
			case "DEU", "FRA", "NLD", "ESP", "ITA":
			default:
				t.Errorf("%s: GDPR request from %s", where, req.Device.Geo.Country)
			}
			vc, err := vendorconsent.ParseString(req.User.Consent)
			if err != nil {
				t.Fatalf("%s: TCF string %q: %v", where, req.User.Consent, err)
			}
			if vc.Version() != 2 {
				t.Errorf("%s: TCF version %d", where, vc.Version())
			}
			if vc.VendorConsent(999) {
				gdprConsent++
				if !vc.PurposeAllowed(consentconstants.Purpose(1)) || !vc.VendorConsent(1) || !vc.VendorConsent(tcfMaxVendor) {
					t.Errorf("%s: partial consent in %q", where, req.User.Consent)
				}
			} else if vc.PurposeAllowed(consentconstants.Purpose(1)) || vc.VendorConsent(1) {
				t.Errorf("%s: partial refusal in %q", where, req.User.Consent)
			}
		} else if req.User.Consent != "" {
			t.Errorf("%s: consent string without gdpr=1", where)
		}
		if req.Regs.COPPA == 1 {
			coppa++
		}
		switch req.Regs.USPrivacy {
		case "1YYN":
			optOut++
			fallthrough
		case "1YNN":
			if req.Device.Geo.Country != "USA" {
				t.Errorf("%s: us_privacy outside the USA", where)
			}
		case "":
		default:
			t.Errorf("%s: us_privacy %q", where, req.Regs.USPrivacy)
		}

		// Imps.
		if len(req.Imp) < 1 || len(req.Imp) > 3 || len(pool.Imps(i)) != len(req.Imp) {
			t.Fatalf("%s: %d imps", where, len(req.Imp))
		}
		ids := map[string]bool{}
		for k, imp := range req.Imp {
			imps++
			spec := pool.Imps(i)[k]
			if imp.ID == "" || ids[imp.ID] || spec.ID != imp.ID {
				t.Errorf("%s: imp id %q repeated, empty or not remembered", where, imp.ID)
			}
			ids[imp.ID] = true
			if imp.BidFloor != spec.Floor {
				t.Errorf("%s: floor %v remembered as %v", where, imp.BidFloor, spec.Floor)
			}
			if imp.BidFloor != 0 {
				floors++
				if imp.BidFloorCur != "USD" || imp.BidFloor < 0.01 || imp.BidFloor > 50 || math.Abs(math.Round(imp.BidFloor*100)-imp.BidFloor*100) > 1e-6 {
					t.Errorf("%s: floor %v %s", where, imp.BidFloor, imp.BidFloorCur)
				}
			}
			switch {
			case imp.Banner != nil && imp.Native == nil:
				b := imp.Banner
				if b.W == nil || b.H == nil || !allowedSizes[[2]int64{*b.W, *b.H}] || len(b.Format) == 0 {
					t.Errorf("%s: banner %+v", where, b)
				}
				for _, f := range b.Format {
					if !allowedSizes[[2]int64{f.W, f.H}] {
						t.Errorf("%s: banner format %dx%d", where, f.W, f.H)
					}
				}
				if !spec.Banner || spec.Native {
					t.Errorf("%s: imp kind not remembered", where)
				}
			case imp.Native != nil && imp.Banner == nil:
				native++
				var nr nativereq.Request
				if err := json.Unmarshal([]byte(imp.Native.Request), &nr); err != nil || len(nr.Assets) == 0 {
					t.Errorf("%s: native request %q: %v", where, imp.Native.Request, err)
				}
				if !spec.Native || spec.Banner {
					t.Errorf("%s: imp kind not remembered", where)
				}
			default:
				t.Errorf("%s: imp %s is neither banner nor native", where, imp.ID)
			}
		}
	}

	n := float64(pool.Len())
	share := func(name string, got int, of float64, want float64) {
		t.Helper()
		if s := float64(got) / of; math.Abs(s-want) > 0.04 {
			t.Errorf("%s share %.3f, want about %.3f", name, s, want)
		}
	}
	share("site", sites, n, tr.SiteShare)
	share("gzip", gzipped, n, tr.GzipShare)
	share("known user", known, n, 1-tr.UnknownShare)
	share("gdpr", gdpr, n, tr.GDPRShare)
	share("gdpr consent", gdprConsent, float64(gdpr), tr.GDPRConsentShare)
	share("coppa", coppa, n, tr.COPPAShare)
	share("us privacy opt-out", optOut, n, tr.USPrivacyOptOutShare)
	share("native imp", native, float64(imps), tr.NativeShare)
	share("floor", floors, float64(imps), tr.FloorShare)
	if float64(inSize) < 0.9*n {
		t.Errorf("only %d of %d requests are 1–3 KB", inSize, pool.Len())
	}
	if float64(distinct) < 0.99*n {
		t.Errorf("only %d of %d requests are distinct", distinct, pool.Len())
	}
	if apps == 0 {
		t.Error("no app requests")
	}
}

func TestPoolIsReproducible(t *testing.T) {
	tr := DefaultConfig().Traffic
	tr.PoolSize = 50
	a, err := NewPool(tr, 100*time.Millisecond, FirstPrice)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewPool(tr, 100*time.Millisecond, FirstPrice)
	if err != nil {
		t.Fatal(err)
	}
	tr.Seed++
	c, err := NewPool(tr, 100*time.Millisecond, FirstPrice)
	if err != nil {
		t.Fatal(err)
	}
	same := 0
	for i := range a.Len() {
		if !bytes.Equal(a.JSON(i), b.JSON(i)) {
			t.Fatalf("request %d differs between pools with the same seed", i)
		}
		if bytes.Equal(a.JSON(i), c.JSON(i)) {
			same++
		}
	}
	if same == a.Len() {
		t.Error("a different seed made the same pool")
	}
}

func TestKnownIFAs(t *testing.T) {
	tr := DefaultConfig().Traffic
	tr.PoolSize = 400
	tr.SiteShare = 0
	tr.KnownIFAs = []string{"6d92078a-8246-4ba4-ae5b-76104861e7dc", "1e5c9a9c-3b1f-4e7e-9d1b-2f7f2b1c9a10"}
	pool, err := NewPool(tr, 100*time.Millisecond, FirstPrice)
	if err != nil {
		t.Fatal(err)
	}
	known := 0
	for i := range pool.Len() {
		body, gz := pool.Wire(i, "00000001-000000000000001")
		req, _ := decodeBody(t, body, gz)
		isKnownIFA := req.Device.IFA == tr.KnownIFAs[0] || req.Device.IFA == tr.KnownIFAs[1]
		if isKnownIFA != pool.Known(i) {
			t.Fatalf("request %d: ifa %q, known %v", i, req.Device.IFA, pool.Known(i))
		}
		if isKnownIFA {
			known++
		}
	}
	if known == 0 {
		t.Error("no known app user")
	}
}

func TestTCFStringRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for _, consent := range []bool{true, false} {
		s := tcfString(consent, at, 7)
		vc, err := vendorconsent.ParseString(s)
		if err != nil {
			t.Fatalf("consent %v: %q: %v", consent, s, err)
		}
		if !vc.Created().Equal(at) || vc.CmpID() != 7 || vc.ConsentLanguage() != "EN" || vc.VendorListVersion() != 150 {
			t.Errorf("consent %v: metadata created %v cmp %d lang %s list %d", consent, vc.Created(), vc.CmpID(), vc.ConsentLanguage(), vc.VendorListVersion())
		}
		for _, vendor := range []uint16{1, 42, 755, tcfMaxVendor} {
			if vc.VendorConsent(vendor) != consent {
				t.Errorf("consent %v: vendor %d consent %v", consent, vendor, !consent)
			}
		}
		for p := 1; p <= 10; p++ {
			if vc.PurposeAllowed(consentconstants.Purpose(p)) != consent {
				t.Errorf("consent %v: purpose %d", consent, p)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (func() *Config { c := DefaultConfig(); return &c }()).Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"bad scheme", func(c *Config) { c.Target = "ftp://x" }, "scheme"},
		{"no host", func(c *Config) { c.Target = "http://" }, "no host"},
		{"open without qps", func(c *Config) { c.QPS = 0 }, "qps"},
		{"bad mode", func(c *Config) { c.Mode = "fast" }, "mode"},
		{"bad auction", func(c *Config) { c.Auction = "third" }, "auction"},
		{"no connections", func(c *Config) { c.Connections = 0 }, "connections"},
		{"share above 1", func(c *Config) { c.Traffic.GzipShare = 1.5 }, "gzip share"},
		{"drain shorter than late", func(c *Config) { c.Notices.DrainTimeout = time.Second }, "drain"},
		{"negative budget", func(c *Config) { c.Budgets = map[string]float64{"c": -1} }, "budget"},
		{"tiny tmax", func(c *Config) { c.TMax = time.Microsecond }, "tmax"},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one about %q", tc.name, err, tc.want)
		}
	}
}

func TestParseBudget(t *testing.T) {
	cid, amount, err := ParseBudget("cmp_1=12.5")
	if err != nil || cid != "cmp_1" || amount != 12.5 {
		t.Errorf("got %q %v %v", cid, amount, err)
	}
	for _, bad := range []string{"cmp_1", "=3", "cmp_1=x", "cmp_1=-1"} {
		if _, _, err := ParseBudget(bad); err == nil {
			t.Errorf("ParseBudget(%q) accepted", bad)
		}
	}
}

func TestReadIDs(t *testing.T) {
	ids, err := ReadIDs(strings.NewReader("# known devices\n 6D92078A-8246-4BA4-AE5B-76104861E7DC \n\nabc\n"))
	if err != nil || len(ids) != 2 || ids[0] != "6d92078a-8246-4ba4-ae5b-76104861e7dc" || ids[1] != "abc" {
		t.Errorf("got %q, %v", ids, err)
	}
}
