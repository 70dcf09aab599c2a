package bidder

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prebid/go-gdpr/api"
	"github.com/prebid/go-gdpr/consentconstants"
	tcf2 "github.com/prebid/go-gdpr/vendorconsent/tcf2"
	gpp "github.com/prebid/go-gpp"
	gppc "github.com/prebid/go-gpp/constants"
	"github.com/prebid/go-gpp/sections/uspca"
	"github.com/prebid/go-gpp/sections/uspco"
	"github.com/prebid/go-gpp/sections/uspct"
	"github.com/prebid/go-gpp/sections/uspnat"
	"github.com/prebid/go-gpp/sections/usput"
	"github.com/prebid/go-gpp/sections/uspva"
	"github.com/prebid/openrtb/v20/openrtb2"

	"github.com/chaser-dsp/chaser/memo"
)

// Consent: the privacy signals of a bid request and what they allow.
//
// Chaser only ever bids on a personalised basis (a user in a retargeting or
// lookalike audience), so every signal that forbids personalised advertising
// is a no bid, decided before any audience lookup:
//
//   - regs.coppa=1: the site is directed at children.
//   - GDPR applies (regs.gdpr=1, or regs.ext.gdpr=1 in OpenRTB 2.5, or the
//     GPP string's applicable sections include TCF EU v2) and the TCF v2
//     string (user.consent, user.ext.consent, or the GPP TCF section) is
//     missing, malformed, or lacks consent for Chaser's vendor id
//     (Deps.GDPRVendorID) or for purposes 1 (store/access information on a
//     device), 3 (create a personalised ads profile) and 4 (select
//     personalised ads), or the publisher restricts one of those purposes for
//     Chaser. A vendor id of 0 means Chaser is not registered with the IAB
//     Global Vendor List, so no GDPR request can carry consent for it.
//   - The US privacy string (regs.us_privacy or regs.ext.us_privacy, CCPA
//     "1YYN" form) says the user opted out of sale (third character Y), or is
//     malformed.
//   - A GPP string's applicable US sections (national and state: 7–12, per
//     regs.gpp_sid; every section when gpp_sid is absent) record an opt-out
//     of sale, sharing or targeted advertising (value 1), or a Global Privacy
//     Control signal; the embedded US privacy section (6) is read as above.
//     A GPP string that cannot be parsed for an applicable section is a no bid.
//
// Evaluation allocates nothing when a request carries no privacy signal; the
// TCF string is decoded into a pooled buffer.

// No-bid reasons of consent (metric label values of chaser_nobid_total).
const (
	reasonCOPPA          = "coppa"
	reasonGDPRNoConsent  = "gdpr_consent_missing" // GDPR applies, no consent string
	reasonGDPRInvalid    = "gdpr_consent_invalid" // not a TCF v2 string we can read
	reasonGDPRDenied     = "gdpr_no_consent"      // no consent for our vendor or purposes 1, 3, 4
	reasonUSPOptOut      = "us_privacy_opt_out"
	reasonUSPInvalid     = "us_privacy_invalid"
	reasonGPPOptOut      = "gpp_opt_out"
	reasonGPPInvalid     = "gpp_invalid"
	reasonConsentPanic   = "consent_parse_panic"
	maxConsentStringSize = 8 << 10 // longer TCF or GPP strings are refused as invalid
)

// consentPanics counts parser panics on hostile consent strings.
var consentPanics = metrics.NewCounter(`chaser_consent_parse_panics_total`)

// purposesNeeded are the TCF purposes a retargeting bid relies on.
var purposesNeeded = [...]consentconstants.Purpose{1, 3, 4}

// signals are the privacy fields of one request, read once.
type signals struct {
	gdpr     int8 // -1 unknown, 0 no, 1 yes
	consent  string
	usp      string
	gpp      string
	gppSID   []int8
	gppGiven bool // regs.gpp or regs.gpp_sid present
}

var (
	keyGDPR      = []byte(`"gdpr"`)
	keyUSPrivacy = []byte(`"us_privacy"`)
	keyGPP       = []byte(`"gpp`)
	keyConsent   = []byte(`"consent"`)
)

// readSignals collects the privacy fields, from their OpenRTB 2.6 places or
// their 2.5 ext places (regs.ext.gdpr, regs.ext.us_privacy, regs.ext.gpp,
// regs.ext.gpp_sid, user.ext.consent). The ext objects are scanned, not
// decoded: they were validated as JSON with the request.
func readSignals(req *openrtb2.BidRequest) signals {
	s := signals{gdpr: -1}
	if r := req.Regs; r != nil {
		if r.GDPR != nil {
			s.gdpr = *r.GDPR
		}
		s.usp, s.gpp, s.gppSID = r.USPrivacy, r.GPP, r.GPPSID
		if ext := r.Ext; len(ext) > 2 && (bytes.Contains(ext, keyGDPR) || bytes.Contains(ext, keyUSPrivacy) || bytes.Contains(ext, keyGPP)) {
			if v, ok := jsonField(ext, "gdpr"); ok && s.gdpr < 0 {
				s.gdpr = parseFlag(v)
			}
			if v, ok := jsonField(ext, "us_privacy"); ok && s.usp == "" {
				s.usp = jsonString(v)
			}
			if s.gpp == "" && len(s.gppSID) == 0 {
				if v, ok := jsonField(ext, "gpp"); ok {
					s.gpp = jsonString(v)
				}
				if v, ok := jsonField(ext, "gpp_sid"); ok {
					s.gppSID = jsonInt8s(v)
				}
			}
		}
	}
	s.gppGiven = s.gpp != "" || len(s.gppSID) > 0
	if u := req.User; u != nil {
		s.consent = u.Consent
		if s.consent == "" && len(u.Ext) > 2 && bytes.Contains(u.Ext, keyConsent) {
			if v, ok := jsonField(u.Ext, "consent"); ok {
				s.consent = jsonString(v)
			}
		}
	}
	return s
}

// jsonField returns the raw value of key in the top-level JSON object obj,
// which must be valid JSON (as a json.RawMessage decoded with its request
// is); on anything unexpected it reports false.
func jsonField(obj []byte, key string) ([]byte, bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, false
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return nil, false
		}
		ke := skipValue(obj, i)
		if ke-i < 2 {
			return nil, false
		}
		k := obj[i+1 : ke-1]
		i = skipSpace(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return nil, false
		}
		vs := skipSpace(obj, i+1)
		ve := skipValue(obj, vs)
		if ve <= vs {
			return nil, false
		}
		if string(k) == key {
			return obj[vs:ve], true
		}
		i = skipSpace(obj, ve)
		if i >= len(obj) || obj[i] != ',' {
			return nil, false
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipValue(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		return j
	}
}

// jsonString returns a JSON string value; escaped strings are decoded with
// encoding/json; anything but a string is "".
func jsonString(v []byte) string {
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1])
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// jsonInt8s reads an array of small non-negative integers; other elements
// are skipped.
func jsonInt8s(v []byte) []int8 {
	if len(v) < 2 || v[0] != '[' {
		return nil
	}
	var out []int8
	n, digits, bad := 0, false, false
	for _, c := range v[1:] {
		switch {
		case c >= '0' && c <= '9':
			if n < 1000 {
				n = n*10 + int(c-'0')
			}
			digits = true
		case c == ',' || c == ']' || c == ' ' || c == '\n' || c == '\t' || c == '\r':
			if digits && !bad && n <= 127 {
				out = append(out, int8(n))
			}
			n, digits, bad = 0, false, false
		default:
			bad = true
		}
	}
	return out
}

// parseFlag reads 0/1 given as a number or a string; anything else is 1
// (when in doubt, GDPR applies).
func parseFlag(raw json.RawMessage) int8 {
	switch strings.Trim(string(bytes.TrimSpace(raw)), `"`) {
	case "0":
		return 0
	case "null", "":
		return -1
	}
	return 1
}

// privacyReason returns the no-bid reason the request's privacy signals
// impose, or "" when a personalised bid is allowed.
func (s *Server) privacyReason(req *openrtb2.BidRequest) (reason string) {
	if req.Regs != nil && req.Regs.COPPA == 1 {
		return reasonCOPPA
	}
	if req.Regs == nil && (req.User == nil || (req.User.Consent == "" && len(req.User.Ext) == 0)) {
		return "" // no signal at all: the common case, nothing to parse
	}
	defer func() {
		if v := recover(); v != nil {
			consentPanics.Inc()
			reason = reasonConsentPanic
		}
	}()
	sig := readSignals(req)
	tcfChecked := false
	if sig.gdpr == 1 {
		if r := tcfReason(sig.consent, s.d.GDPRVendorID); r != "" {
			return r
		}
		tcfChecked = true
	}
	if sig.usp != "" {
		if r := uspReason(sig.usp); r != "" {
			return r
		}
	}
	if sig.gppGiven {
		return gppReason(&sig, tcfChecked, s.d.GDPRVendorID)
	}
	return ""
}

var consentBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// pubRestricter is the publisher-restriction part of a parsed TCF v2 string.
type pubRestricter interface {
	CheckPubRestriction(purposeID uint8, restrictType uint8, vendor uint16) bool
}

// tcfReason checks a TCF v2 consent string for vendor and purposes 1, 3, 4,
// remembering the answer for the string (tcfAnswers).
func tcfReason(consent string, vendor uint16) string {
	return memoTCF(tcfAnswers, consent, vendor)
}

// tcfAnswers remembers parseTCF's answers for recently seen consent
// strings: a user's string comes back with each of their requests (it
// changes only when they change their choices), and decoding and parsing
// it is most of the privacy check's cost. The answer depends on the string
// and the vendor id alone, so an entry never goes stale. At most tcfSlots
// strings of at most maxConsentStringSize bytes (typical ones are 100–300).
var tcfAnswers = memo.New[tcfKey, string](tcfSlots)

const tcfSlots = 1024

type tcfKey struct {
	consent string
	vendor  uint16
}

// memoTCF is parseTCF through m. The key kept is a copy: consent borrows
// the request's bytes.
func memoTCF(m *memo.Table[tcfKey, string], consent string, vendor uint16) string {
	if consent == "" || len(consent) > maxConsentStringSize {
		return parseTCF(consent, vendor)
	}
	if r, ok := m.Get(tcfKey{consent, vendor}); ok {
		return r
	}
	r := parseTCF(consent, vendor)
	m.Put(tcfKey{strings.Clone(consent), vendor}, r)
	return r
}

// parseTCF is tcfReason without the memo.
func parseTCF(consent string, vendor uint16) string {
	if consent == "" {
		return reasonGDPRNoConsent
	}
	if i := strings.IndexByte(consent, '.'); i >= 0 {
		consent = consent[:i] // the core segment; disclosed vendors etc. follow
	}
	consent = strings.TrimRight(consent, "=")
	if !tcf2.IsConsentV2(consent) || len(consent) > maxConsentStringSize {
		return reasonGDPRInvalid // TCF v1 strings are no longer valid
	}
	bp := consentBufs.Get().(*[]byte)
	defer consentBufs.Put(bp)
	// Decode in place (output is never longer than input), as tcf2.ParseString
	// does, but in a pooled buffer instead of a fresh copy of the string.
	buf := append((*bp)[:0], consent...)
	*bp = buf
	n, err := base64.RawURLEncoding.Decode(buf, buf)
	if err != nil {
		return reasonGDPRInvalid
	}
	vc, err := tcf2.Parse(buf[:n])
	if err != nil {
		return reasonGDPRInvalid
	}
	return tcfAllows(vc, vendor)
}

func tcfAllows(vc api.VendorConsents, vendor uint16) string {
	if vendor == 0 || !vc.VendorConsent(vendor) {
		return reasonGDPRDenied
	}
	pr, _ := vc.(pubRestricter)
	for _, p := range purposesNeeded {
		if !vc.PurposeAllowed(p) {
			return reasonGDPRDenied
		}
		// Restriction type 0: the publisher does not allow this purpose for this vendor.
		if pr != nil && pr.CheckPubRestriction(uint8(p), 0, vendor) {
			return reasonGDPRDenied
		}
	}
	return ""
}

// uspReason reads a US privacy (CCPA) string: version 1, then notice given,
// opted out of sale, LSPA covered, each Y, N or "-".
func uspReason(s string) string {
	if len(s) != 4 || s[0] != '1' {
		return reasonUSPInvalid
	}
	for i := 1; i < 4; i++ {
		switch s[i] {
		case 'Y', 'y', 'N', 'n', '-':
		default:
			return reasonUSPInvalid
		}
	}
	if s[2] == 'Y' || s[2] == 'y' {
		return reasonUSPOptOut
	}
	return ""
}

// gppRelevant reports whether section id is one Chaser reads.
func gppRelevant(id gppc.SectionID) bool {
	return id == gppc.SectionTCFEU2 || id == gppc.SectionUSPV1 || (id >= gppc.SectionUSPNAT && id <= gppc.SectionUSPCT)
}

func gppReason(sig *signals, tcfChecked bool, vendor uint16) string {
	applies := func(id gppc.SectionID) bool {
		if len(sig.gppSID) == 0 {
			return true
		}
		for _, s := range sig.gppSID {
			if gppc.SectionID(s) == id {
				return true
			}
		}
		return false
	}
	relevant := len(sig.gppSID) == 0
	for _, s := range sig.gppSID {
		if gppRelevant(gppc.SectionID(s)) {
			relevant = true
			break
		}
	}
	if !relevant {
		return ""
	}
	if sig.gpp == "" {
		return reasonGPPInvalid // gpp_sid names a section we must honour but no string came
	}
	if len(sig.gpp) > maxConsentStringSize {
		return reasonGPPInvalid
	}
	c, errs := gpp.Parse(sig.gpp)
	if len(errs) > 0 {
		// A header or US section the library could not read: its opt-outs
		// are unknown, so no personalised bid.
		return reasonGPPInvalid
	}
	for _, sid := range sig.gppSID {
		if id := gppc.SectionID(sid); gppRelevant(id) && !slices.Contains(c.SectionTypes, id) {
			return reasonGPPInvalid // gpp_sid names a section the string does not carry
		}
	}
	for _, sec := range c.Sections {
		id := sec.GetID()
		if !gppRelevant(id) || !applies(id) {
			continue
		}
		switch v := sec.(type) {
		case uspnat.USPNAT:
			if optedOut(v.CoreSegment.SaleOptOut, v.CoreSegment.SharingOptOut, v.CoreSegment.TargetedAdvertisingOptOut) || v.GPCSegment.Gpc {
				return reasonGPPOptOut
			}
		case uspca.USPCA:
			if optedOut(v.CoreSegment.SaleOptOut, v.CoreSegment.SharingOptOut) || v.GPCSegment.Gpc {
				return reasonGPPOptOut
			}
		case uspva.USPVA:
			if optedOut(v.CoreSegment.SaleOptOut, v.CoreSegment.TargetedAdvertisingOptOut) {
				return reasonGPPOptOut
			}
		case uspco.USPCO:
			if optedOut(v.CoreSegment.SaleOptOut, v.CoreSegment.TargetedAdvertisingOptOut) || v.GPCSegment.Gpc {
				return reasonGPPOptOut
			}
		case uspct.USPCT:
			if optedOut(v.CoreSegment.SaleOptOut, v.CoreSegment.TargetedAdvertisingOptOut) || v.GPCSegment.Gpc {
				return reasonGPPOptOut
			}
		case usput.USPUT:
			if optedOut(v.CoreSegment.SaleOptOut, v.CoreSegment.TargetedAdvertisingOptOut) {
				return reasonGPPOptOut
			}
		default:
			switch id {
			case gppc.SectionUSPV1:
				switch uspReason(sec.GetValue()) {
				case reasonUSPOptOut:
					return reasonGPPOptOut
				case reasonUSPInvalid:
					return reasonGPPInvalid
				}
			case gppc.SectionTCFEU2:
				if !tcfChecked {
					if r := tcfReason(sec.GetValue(), vendor); r != "" {
						return r
					}
				}
			default:
				return reasonGPPInvalid // a US section of a type this version does not know
			}
		}
	}
	return ""
}

// optedOut reports whether any MSPA opt-out field is 1 (opted out); 0 is
// "not applicable" and 2 "did not opt out".
func optedOut(fields ...byte) bool {
	for _, f := range fields {
		if f == 1 {
			return true
		}
	}
	return false
}
