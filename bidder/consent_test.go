package bidder

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	gpp "github.com/prebid/go-gpp"
	gppc "github.com/prebid/go-gpp/constants"
	"github.com/prebid/go-gpp/sections"
	"github.com/prebid/go-gpp/sections/uspca"
	"github.com/prebid/go-gpp/sections/uspnat"
	"github.com/prebid/openrtb/v20/openrtb2"

	"github.com/chaser-dsp/chaser/memo"
)

const testVendor = 1234

// tcfBits writes a big-endian bit string, as the TCF v2 spec lays it out.
type tcfBits struct{ b []bool }

func (w *tcfBits) int(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		w.b = append(w.b, v>>uint(i)&1 == 1)
	}
}

func (w *tcfBits) bool(v bool) { w.b = append(w.b, v) }

func (w *tcfBits) bytes() []byte {
	out := make([]byte, (len(w.b)+7)/8)
	for i, v := range w.b {
		if v {
			out[i/8] |= 0x80 >> uint(i%8)
		}
	}
	return out
}

// tcfSpec describes a TCF v2 core string to encode.
type tcfSpec struct {
	vendors  []int // vendors with consent
	purposes []int // purposes with consent
	rangeEnc bool  // vendor consents as a range section instead of a bit field
	restrict []int // purposes the publisher disallows (restriction type 0) for testVendor
}

// encodeTCF builds a TCF v2 core string bit by bit, per the IAB "TC string"
// format: the fields in order with their widths, then the vendor consent
// section, the legitimate interest section and publisher restrictions.
func encodeTCF(s tcfSpec) string {
	var w tcfBits
	ds := uint64(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Unix() * 10)
	w.int(2, 6)           // Version
	w.int(ds, 36)         // Created (deciseconds)
	w.int(ds, 36)         // LastUpdated
	w.int(7, 12)          // CmpId
	w.int(1, 12)          // CmpVersion
	w.int(1, 6)           // ConsentScreen
	w.int(4, 6)           // ConsentLanguage "EN": E
	w.int(13, 6)          //                     N
	w.int(150, 12)        // VendorListVersion
	w.int(4, 6)           // TcfPolicyVersion
	w.bool(true)          // IsServiceSpecific
	w.bool(false)         // UseNonStandardTexts
	w.int(0, 12)          // SpecialFeatureOptIns
	var purposes [24]bool // PurposesConsent
	for _, p := range s.purposes {
		purposes[p-1] = true
	}
	for _, v := range purposes {
		w.bool(v)
	}
	w.int(0, 24)  // PurposesLITransparency
	w.bool(false) // PurposeOneTreatment
	w.int(4, 6)   // PublisherCC "EN"
	w.int(13, 6)
	maxV := 0
	for _, v := range s.vendors {
		maxV = max(maxV, v)
	}
	w.int(uint64(maxV), 16) // MaxVendorId
	w.bool(s.rangeEnc)      // IsRangeEncoding
	if s.rangeEnc {
		w.int(uint64(len(s.vendors)), 12) // NumEntries
		for _, v := range s.vendors {
			w.bool(false) // single id
			w.int(uint64(v), 16)
		}
	} else {
		field := make([]bool, maxV)
		for _, v := range s.vendors {
			field[v-1] = true
		}
		for _, v := range field {
			w.bool(v)
		}
	}
	w.int(0, 16)  // legitimate interest: MaxVendorId
	w.bool(false) // IsRangeEncoding (empty bit field)
	w.int(uint64(len(s.restrict)), 12)
	for _, p := range s.restrict {
		w.int(uint64(p), 6) // PurposeId
		w.int(0, 2)         // RestrictionType 0: not allowed
		w.int(1, 12)        // NumEntries
		w.bool(false)
		w.int(testVendor, 16)
	}
	return base64.RawURLEncoding.EncodeToString(w.bytes())
}

// rawSection is a GPP section given by its encoded value.
type rawSection struct {
	id    gppc.SectionID
	value string
}

func (r rawSection) GetID() gppc.SectionID { return r.id }
func (r rawSection) GetValue() string      { return r.value }
func (r rawSection) Encode(bool) []byte    { return []byte(r.value) }

func gppNational(sale, sharing, targeted byte, gpc bool) gpp.Section {
	return uspnat.USPNAT{SectionID: gppc.SectionUSPNAT, CoreSegment: uspnat.USPNATCoreSegment{
		Version: 1, SharingNotice: 1, SaleOptOutNotice: 1, SharingOptOutNotice: 1, TargetedAdvertisingOptOutNotice: 1,
		SaleOptOut: sale, SharingOptOut: sharing, TargetedAdvertisingOptOut: targeted,
		SensitiveDataProcessing: make([]byte, 12), KnownChildSensitiveDataConsents: make([]byte, 2),
		MspaCoveredTransaction: 2, MspaOptOutOptionMode: 0, MspaServiceProviderMode: 0,
	}, GPCSegment: sections.CommonUSGPCSegment{SubsectionType: 1, Gpc: gpc}}
}

func gppCalifornia(sale, sharing byte) gpp.Section {
	return uspca.USPCA{SectionID: gppc.SectionUSPCA, CoreSegment: uspca.USPCACoreSegment{
		Version: 1, SaleOptOutNotice: 1, SharingOptOutNotice: 1, SaleOptOut: sale, SharingOptOut: sharing,
		SensitiveDataProcessing: make([]byte, 9), KnownChildSensitiveDataConsents: make([]byte, 2),
		MspaCoveredTransaction: 2,
	}, GPCSegment: sections.CommonUSGPCSegment{SubsectionType: 1}}
}

func encodeGPP(t testing.TB, secs ...gpp.Section) string {
	t.Helper()
	s, err := gpp.Encode(secs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withPrivacy returns the site_banner fixture (a known user, a campaign that
// bids on it) with regs and user privacy fields merged in.
func withPrivacy(t testing.TB, regs, user map[string]any) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "requests", "site_banner.json"))
	if err != nil {
		t.Fatal(err)
	}
	var req map[string]any
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	r := req["regs"].(map[string]any)
	for k, v := range regs {
		r[k] = v
	}
	u := req["user"].(map[string]any)
	for k, v := range user {
		u[k] = v
	}
	out, _ := json.Marshal(req)
	return out
}

func TestConsent(t *testing.T) {
	f := newFixture(t)
	f.srv.d.GDPRVendorID = testVendor
	yes := encodeTCF(tcfSpec{vendors: []int{1, 7, testVendor, 1500}, purposes: []int{1, 2, 3, 4, 7}})
	yesRange := encodeTCF(tcfSpec{vendors: []int{3, testVendor, 2000}, purposes: []int{1, 3, 4}, rangeEnc: true})
	otherVendor := encodeTCF(tcfSpec{vendors: []int{1, 7, testVendor - 1, testVendor + 1}, purposes: []int{1, 2, 3, 4}})
	otherVendorRange := encodeTCF(tcfSpec{vendors: []int{1, 2000}, purposes: []int{1, 3, 4}, rangeEnc: true})
	noP4 := encodeTCF(tcfSpec{vendors: []int{testVendor}, purposes: []int{1, 2, 3}})
	noP1 := encodeTCF(tcfSpec{vendors: []int{testVendor}, purposes: []int{2, 3, 4}})
	restricted := encodeTCF(tcfSpec{vendors: []int{testVendor}, purposes: []int{1, 3, 4}, restrict: []int{3}})
	restrictedOther := encodeTCF(tcfSpec{vendors: []int{testVendor}, purposes: []int{1, 3, 4}, restrict: []int{10}})
	const tcfV1 = "BONciguONcjGKADACHENAOLS1rAHDAFAAEAASABQAMwAeACEAFw"

	gppNatOptOut := encodeGPP(t, gppNational(1, 2, 2, false))
	gppNatOK := encodeGPP(t, gppNational(2, 2, 2, false))
	gppNatTargeted := encodeGPP(t, gppNational(2, 2, 1, false))
	gppNatGPC := encodeGPP(t, gppNational(2, 2, 2, true))
	gppCASharing := encodeGPP(t, gppCalifornia(2, 1))
	gppNatOKCAOut := encodeGPP(t, gppNational(2, 2, 2, false), gppCalifornia(1, 2))
	gppTCFYes := encodeGPP(t, rawSection{gppc.SectionTCFEU2, yes})
	gppTCFNo := encodeGPP(t, rawSection{gppc.SectionTCFEU2, otherVendor})
	gppUSPOut := encodeGPP(t, rawSection{gppc.SectionUSPV1, "1YYN"})

	cases := []struct {
		name   string
		regs   map[string]any
		user   map[string]any
		status int
		reason string
	}{
		{"no signals", nil, nil, 200, ""},
		{"coppa", map[string]any{"coppa": 1}, nil, 204, reasonCOPPA},
		{"gdpr consent for our vendor and purposes", map[string]any{"gdpr": 1}, map[string]any{"consent": yes}, 200, ""},
		{"gdpr consent, range encoded", map[string]any{"gdpr": 1}, map[string]any{"consent": yesRange}, 200, ""},
		{"gdpr consent with disclosed-vendors segment", map[string]any{"gdpr": 1}, map[string]any{"consent": yes + ".IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw"}, 200, ""},
		{"gdpr consent lacks our vendor", map[string]any{"gdpr": 1}, map[string]any{"consent": otherVendor}, 204, reasonGDPRDenied},
		{"gdpr range consent lacks our vendor", map[string]any{"gdpr": 1}, map[string]any{"consent": otherVendorRange}, 204, reasonGDPRDenied},
		{"gdpr consent lacks purpose 4", map[string]any{"gdpr": 1}, map[string]any{"consent": noP4}, 204, reasonGDPRDenied},
		{"gdpr consent lacks purpose 1", map[string]any{"gdpr": 1}, map[string]any{"consent": noP1}, 204, reasonGDPRDenied},
		{"gdpr publisher restricts purpose 3 for us", map[string]any{"gdpr": 1}, map[string]any{"consent": restricted}, 204, reasonGDPRDenied},
		{"gdpr publisher restricts an unused purpose", map[string]any{"gdpr": 1}, map[string]any{"consent": restrictedOther}, 200, ""},
		{"gdpr without consent string", map[string]any{"gdpr": 1}, nil, 204, reasonGDPRNoConsent},
		{"gdpr with garbage consent", map[string]any{"gdpr": 1}, map[string]any{"consent": "C!!not-base64"}, 204, reasonGDPRInvalid},
		{"gdpr with truncated consent", map[string]any{"gdpr": 1}, map[string]any{"consent": yes[:20]}, 204, reasonGDPRInvalid},
		{"gdpr with TCF v1 consent", map[string]any{"gdpr": 1}, map[string]any{"consent": tcfV1}, 204, reasonGDPRInvalid},
		{"gdpr=0 needs no consent", map[string]any{"gdpr": 0}, nil, 200, ""},
		{"2.5 ext: gdpr with consent", map[string]any{"ext": map[string]any{"gdpr": 1}}, map[string]any{"ext": map[string]any{"consent": yes}}, 200, ""},
		{"2.5 ext: gdpr, consent lacks vendor", map[string]any{"ext": map[string]any{"gdpr": 1}}, map[string]any{"ext": map[string]any{"consent": otherVendor}}, 204, reasonGDPRDenied},
		{"2.5 ext: gdpr without consent", map[string]any{"ext": map[string]any{"gdpr": 1}}, nil, 204, reasonGDPRNoConsent},
		{"2.5 ext: gdpr as a string", map[string]any{"ext": map[string]any{"gdpr": "1"}}, nil, 204, reasonGDPRNoConsent},
		{"us privacy 1YNN", map[string]any{"us_privacy": "1YNN"}, nil, 200, ""},
		{"us privacy 1---", map[string]any{"us_privacy": "1---"}, nil, 200, ""},
		{"us privacy 1YYN opt-out", map[string]any{"us_privacy": "1YYN"}, nil, 204, reasonUSPOptOut},
		{"us privacy 1NYY opt-out", map[string]any{"us_privacy": "1NYY"}, nil, 204, reasonUSPOptOut},
		{"2.5 ext: us privacy 1YYN", map[string]any{"ext": map[string]any{"us_privacy": "1YYN"}}, nil, 204, reasonUSPOptOut},
		{"us privacy malformed", map[string]any{"us_privacy": "yes please"}, nil, 204, reasonUSPInvalid},
		{"gpp national: sale opt-out", map[string]any{"gpp": gppNatOptOut, "gpp_sid": []int{7}}, nil, 204, reasonGPPOptOut},
		{"gpp national: targeted advertising opt-out", map[string]any{"gpp": gppNatTargeted, "gpp_sid": []int{7}}, nil, 204, reasonGPPOptOut},
		{"gpp national: global privacy control", map[string]any{"gpp": gppNatGPC, "gpp_sid": []int{7}}, nil, 204, reasonGPPOptOut},
		{"gpp national: did not opt out", map[string]any{"gpp": gppNatOK, "gpp_sid": []int{7}}, nil, 200, ""},
		{"gpp california: sharing opt-out", map[string]any{"gpp": gppCASharing, "gpp_sid": []int{8}}, nil, 204, reasonGPPOptOut},
		{"gpp: opt-out only in a section that does not apply", map[string]any{"gpp": gppNatOKCAOut, "gpp_sid": []int{7}}, nil, 200, ""},
		{"gpp: opt-out in an applicable state section", map[string]any{"gpp": gppNatOKCAOut, "gpp_sid": []int{7, 8}}, nil, 204, reasonGPPOptOut},
		{"gpp without gpp_sid: every section read", map[string]any{"gpp": gppNatOKCAOut}, nil, 204, reasonGPPOptOut},
		{"gpp sid names only sections we do not read", map[string]any{"gpp": gppNatOptOut, "gpp_sid": []int{5}}, nil, 200, ""},
		{"gpp embedded US privacy opt-out", map[string]any{"gpp": gppUSPOut, "gpp_sid": []int{6}}, nil, 204, reasonGPPOptOut},
		{"gpp TCF EU section with consent", map[string]any{"gpp": gppTCFYes, "gpp_sid": []int{2}}, nil, 200, ""},
		{"gpp TCF EU section without our vendor", map[string]any{"gpp": gppTCFNo, "gpp_sid": []int{2}}, nil, 204, reasonGDPRDenied},
		{"gpp malformed section", map[string]any{"gpp": strings.Split(gppNatOK, "~")[0] + "~!!!", "gpp_sid": []int{7}}, nil, 204, reasonGPPInvalid},
		{"gpp malformed header", map[string]any{"gpp": "D!!~" + strings.Split(gppNatOK, "~")[1], "gpp_sid": []int{7}}, nil, 204, reasonGPPInvalid},
		{"gpp sid names a section the string lacks", map[string]any{"gpp": gppCASharing, "gpp_sid": []int{7}}, nil, 204, reasonGPPInvalid},
		{"gpp sid without string", map[string]any{"gpp_sid": []int{7}}, nil, 204, reasonGPPInvalid},
		{"2.5 ext: gpp opt-out", map[string]any{"ext": map[string]any{"gpp": gppNatOptOut, "gpp_sid": []int{7}}}, nil, 204, reasonGPPOptOut},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := withPrivacy(t, tc.regs, tc.user)
			var before uint64
			if tc.reason != "" {
				before = noBid(tc.reason).Get()
			}
			resp := f.do("POST", "/openrtb2/bid", "application/json", body, nil)
			if resp.StatusCode() != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode(), tc.status, body)
			}
			if tc.reason != "" {
				if got := noBid(tc.reason).Get() - before; got != 1 {
					t.Fatalf("no-bid reason %q counted %d times, want 1", tc.reason, got)
				}
			}
		})
	}
}

// TestConsentUnregisteredVendor: with no vendor id configured (the default)
// no request under GDPR gets a bid, whatever its consent string says.
func TestConsentUnregisteredVendor(t *testing.T) {
	f := newFixture(t)
	yes := encodeTCF(tcfSpec{vendors: []int{testVendor}, purposes: []int{1, 3, 4}})
	resp := f.do("POST", "/openrtb2/bid", "application/json",
		withPrivacy(t, map[string]any{"gdpr": 1}, map[string]any{"consent": yes}), nil)
	if resp.StatusCode() != 204 {
		t.Fatalf("status %d, want 204", resp.StatusCode())
	}
	resp = f.do("POST", "/openrtb2/bid", "application/json", withPrivacy(t, map[string]any{"gdpr": 0}, nil), nil)
	if resp.StatusCode() != 200 {
		t.Fatalf("gdpr=0: status %d, want 200", resp.StatusCode())
	}
}

// TestConsentNoAllocs: a request without privacy signals (most traffic
// outside the EU and US states) costs no allocation.
func TestConsentNoAllocs(t *testing.T) {
	f := newFixture(t)
	f.srv.d.GDPRVendorID = testVendor
	var req openrtb2.BidRequest
	if err := json.Unmarshal(withPrivacy(t, map[string]any{"gdpr": 0, "us_privacy": "1YNN"}, nil), &req); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = f.srv.privacyReason(&req) }); n != 0 {
		t.Fatalf("%v allocations per request without consent strings, want 0", n)
	}
}

func BenchmarkConsent(b *testing.B) {
	f := newFixture(b)
	f.srv.d.GDPRVendorID = testVendor
	yes := encodeTCF(tcfSpec{vendors: []int{1, 7, testVendor, 1500}, purposes: []int{1, 2, 3, 4, 7}})
	for _, bc := range []struct {
		name       string
		regs, user map[string]any
	}{
		{"none", nil, nil},
		{"us_privacy", map[string]any{"us_privacy": "1YNN"}, nil},
		{"tcf", map[string]any{"gdpr": 1}, map[string]any{"consent": yes}},
		{"tcf_ext", map[string]any{"ext": map[string]any{"gdpr": 1}}, map[string]any{"ext": map[string]any{"consent": yes}}},
		{"gpp_national", map[string]any{"gpp": encodeGPP(b, gppNational(2, 2, 2, false)), "gpp_sid": []int{7}}, nil},
	} {
		var req openrtb2.BidRequest
		if err := json.Unmarshal(withPrivacy(b, bc.regs, bc.user), &req); err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := f.srv.privacyReason(&req); r != "" {
					b.Fatal(r)
				}
			}
		})
	}
	// A string seen for the first time: the parse the memo saves.
	b.Run("tcf_parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := parseTCF(yes, testVendor); r != "" {
				b.Fatal(r)
			}
		}
	})
}

// FuzzConsent feeds arbitrary TCF, US privacy and GPP strings through the
// consent evaluation: it must never panic (a parser panic would be caught
// and counted, so the fuzz target fails on that reason too).
func FuzzConsent(f *testing.F) {
	yes := encodeTCF(tcfSpec{vendors: []int{testVendor}, purposes: []int{1, 3, 4}})
	yesRange := encodeTCF(tcfSpec{vendors: []int{testVendor, 9}, purposes: []int{1, 3, 4}, rangeEnc: true, restrict: []int{3}})
	natStr := encodeGPP(f, gppNational(1, 2, 2, true), gppCalifornia(2, 1))
	f.Add(yes, "1YNN", natStr, []byte{7, 8})
	f.Add(yesRange, "1YYN", "DBABMA~CqQAAAAAAAAA.QA", []byte{7})
	f.Add("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA", "1---", "DBABzw~1YNN", []byte{6})
	f.Add(yes[:31], "", "DBACNY~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA", []byte{2})
	f.Add("", "", "D", []byte{})
	s := &Server{d: Deps{GDPRVendorID: testVendor}}
	one := int8(1)
	f.Fuzz(func(t *testing.T, consent, usp, gppStr string, sid []byte) {
		sids := make([]int8, len(sid))
		for i, v := range sid {
			sids[i] = int8(v)
		}
		req := &openrtb2.BidRequest{Regs: &openrtb2.Regs{GDPR: &one, USPrivacy: usp, GPP: gppStr, GPPSID: sids},
			User: &openrtb2.User{Consent: consent}}
		if r := s.privacyReason(req); r == reasonConsentPanic {
			t.Fatalf("consent parser panicked on consent=%q usp=%q gpp=%q sid=%v", consent, usp, gppStr, sid)
		}
	})
}

// FuzzJSONField checks the ext scanner against encoding/json on valid JSON
// objects and for panics on anything.
func FuzzJSONField(f *testing.F) {
	f.Add([]byte(`{"gdpr":1,"us_privacy":"1YNN"}`), "gdpr")
	f.Add([]byte(` { "a" : {"gdpr":[1,{"x":"}"}]}, "consent" : "C\"Q\u0041" } `), "consent")
	f.Add([]byte(`{"gpp_sid":[7, 8,-1,300,"x"],"gpp":"DBABLA~BVVqAAEABA.QA"}`), "gpp_sid")
	f.Add([]byte(`{"":"","\\":"\\"}`), "\\")
	f.Add([]byte(`[1,2]`), "gdpr")
	f.Fuzz(func(t *testing.T, obj []byte, key string) {
		v, ok := jsonField(obj, key)
		_ = jsonString(v)
		_ = jsonInt8s(v)
		var m map[string]json.RawMessage
		if !json.Valid(obj) || json.Unmarshal(obj, &m) != nil || strings.Contains(key, `\`) || strings.Contains(key, `"`) {
			return
		}
		if bytes.Count(obj, []byte(`"`+key+`"`)) != 1 {
			return // absent, escaped, duplicated, or the key's text inside values
		}
		want, has := m[key]
		if has != ok || (ok && !bytes.Equal(bytes.TrimSpace(want), v)) {
			t.Fatalf("jsonField(%s, %q) = %q, %v; encoding/json has %q, %v", obj, key, v, ok, want, has)
		}
	})
}

// TestTCFMemo: the memoised answer is parseTCF's, per string and vendor,
// whether the slot holds that string, another one, or nothing, and a key
// made from bytes that are overwritten afterwards does not change it.
func TestTCFMemo(t *testing.T) {
	yes := encodeTCF(tcfSpec{vendors: []int{testVendor}, purposes: []int{1, 3, 4}})
	no := encodeTCF(tcfSpec{vendors: []int{1}, purposes: []int{1, 3, 4}})
	m := memo.New[tcfKey, string](tcfSlots)
	cases := []struct {
		consent string
		vendor  uint16
	}{
		{yes, testVendor}, {yes, testVendor}, {yes, 1}, {yes, testVendor},
		{no, testVendor}, {no, 1}, {yes, testVendor}, {"", testVendor}, {"not base64!", testVendor},
		{strings.Repeat("C", maxConsentStringSize+1), testVendor},
	}
	for _, c := range cases {
		if got, want := memoTCF(m, c.consent, c.vendor), parseTCF(c.consent, c.vendor); got != want {
			t.Errorf("%.20q vendor %d: memo %q, parse %q", c.consent, c.vendor, got, want)
		}
	}
	if parseTCF(yes, testVendor) != "" || parseTCF(yes, 1) == "" {
		t.Fatal("fixture: want consent for testVendor only")
	}
	// The key is a request's string, whose bytes the next request reuses:
	// the memo must keep a copy, never the caller's bytes.
	b := []byte(yes)
	key := unsafe.String(&b[0], len(b))
	fresh := memo.New[tcfKey, string](tcfSlots)
	if r := memoTCF(fresh, key, testVendor); r != "" {
		t.Fatalf("first call: %q", r)
	}
	var e *tcfKey
	fresh.Range(func(k tcfKey, _ string) bool { e = &k; return false })
	if e == nil || e.consent != key || unsafe.StringData(e.consent) == unsafe.StringData(key) {
		t.Fatal("the memo keeps the caller's bytes, not a copy")
	}
	copy(b, no)
	if e.consent != yes {
		t.Fatal("the stored key changed with the caller's bytes")
	}
}
