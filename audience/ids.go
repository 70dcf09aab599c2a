package audience

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"unicode/utf8"
)

// IDType is the kind of a user identifier.
type IDType uint8

// Identifier kinds. Email and Phone are accepted on input only: they are
// normalised and hashed to EmailSHA256 / PhoneSHA256 on arrival. The numeric
// values are part of every stored pseudonym: never renumber them.
const (
	IDUnknown IDType = iota
	IDEmail
	IDEmailSHA256
	IDPhone
	IDPhoneSHA256
	IDMAID // mobile advertising id (IDFA / GAID), lower-case UUID
	IDUID  // Chaser's own cookie id (user.buyeruid after cookie sync)
	IDEID  // an extended id from user.eids, "source:id"
)

var idTypeNames = [...]string{"", "email", "email_sha256", "phone", "phone_sha256", "maid", "uid", "eid"}

func (t IDType) String() string {
	if int(t) < len(idTypeNames) {
		return idTypeNames[t]
	}
	return fmt.Sprintf("idtype(%d)", t)
}

// linkable reports whether ids of kind t reach the bid stream only through an
// identity link (hashed e-mails and phones), not by themselves.
func (t IDType) linkable() bool { return t == IDEmailSHA256 || t == IDPhoneSHA256 }

// ParseIDType parses an id type name as used by the admin API (id_type=…)
// and by upload header rows. Names are case-insensitive; spaces and dashes
// count as underscores, so the column names of Google Customer Match ("Email",
// "Phone", "Mobile Device ID") and Meta custom audiences ("email", "phone",
// "madid") files are understood.
func ParseIDType(s string) (IDType, error) {
	n := typeNameReplacer.Replace(strings.ToLower(strings.TrimSpace(s)))
	for i, name := range idTypeNames {
		if i > 0 && name == n {
			return IDType(i), nil
		}
	}
	switch n {
	case "mobile_ad_id", "mobile_device_id", "ifa", "idfa", "gaid", "aaid", "madid", "adid":
		return IDMAID, nil
	case "sha256_email", "hashed_email", "email_hash":
		return IDEmailSHA256, nil
	case "sha256_phone", "hashed_phone", "phone_hash":
		return IDPhoneSHA256, nil
	case "e_mail", "mail", "email_address", "em":
		return IDEmail, nil // plain or already hashed
	case "phone_number", "mobile", "mobile_phone", "ph":
		return IDPhone, nil
	case "cookie", "buyeruid", "user_id":
		return IDUID, nil
	}
	return IDUnknown, fmt.Errorf("unknown id type %q (want email, email_sha256, phone, phone_sha256, maid or uid)", truncate(s, 40))
}

var typeNameReplacer = strings.NewReplacer(" ", "_", "-", "_")

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Normalisation errors. Their texts never contain the offending value.
var (
	ErrEmpty     = errors.New("empty identifier")
	ErrTooLong   = fmt.Errorf("identifier longer than %d bytes", MaxIDLen)
	ErrBadEmail  = errors.New("not an e-mail address")
	ErrBadPhone  = errors.New("not a phone number")
	ErrBadNANP   = errors.New("not a North American number (want 10 digits, area code 2-9xx)")
	ErrBadKorean = errors.New("not a Korean number (want 8 to 10 digits after +82)")
	ErrCountry   = errors.New("national phone number but the advertiser's default country is not a calling code")
	ErrBadHash   = errors.New("not a SHA-256 hex digest (want 64 hex characters)")
	ErrBadMAID   = errors.New("not a mobile ad id (want a UUID)")
	ErrZeroMAID  = errors.New("zeroed mobile ad id (limit ad tracking)")
	ErrBadUID    = errors.New("not a valid user id (printable ASCII without spaces)")
	ErrBadIDType = errors.New("unsupported id type")
)

// MaxIDLen bounds any raw identifier accepted from outside.
const MaxIDLen = 256

// Normalize turns a raw identifier of type t into its stored kind and
// canonical value:
//
//   - e-mail: trimmed and lower-cased, then SHA-256 hex (kind email_sha256).
//     Dots and "+tags" are kept: Google Customer Match and Meta custom
//     audiences hash the address as written (only trimmed and lower-cased),
//     and the hashes advertisers bring were made the same way, so stripping
//     would make a plain upload disagree with a hashed one of the same list.
//   - phone: E.164 ("+" country code and national number, digits only), the
//     national trunk prefix removed, defaultCountry (a calling code such as
//     "82"; empty means "1") used when the number has no country code; then
//     SHA-256 hex of the E.164 string (kind phone_sha256).
//   - email_sha256, phone_sha256: 64 hex characters, lower-cased. An e-mail
//     or phone column holding such a digest is taken as already hashed.
//   - maid: a UUID, lower-cased (32 hex digits without dashes are accepted);
//     the all-zero id of "limit ad tracking" is refused.
//   - uid, eid: printable ASCII without spaces, as is.
//
// A raw e-mail or phone never leaves this function.
func Normalize(t IDType, raw, defaultCountry string) (IDType, string, error) {
	var scratch [64]byte
	kind, payload, err := normalizeTo(scratch[:0], t, []byte(raw), defaultCountry)
	if err != nil {
		return t, "", err
	}
	return kind, canonical(kind, payload), nil
}

// canonical returns the string form of a compact payload (see normalizeTo).
func canonical(kind IDType, payload []byte) string {
	switch kind {
	case IDEmailSHA256, IDPhoneSHA256:
		return hex.EncodeToString(payload)
	case IDMAID:
		var b [36]byte
		hex.Encode(b[0:8], payload[0:4])
		b[8] = '-'
		hex.Encode(b[9:13], payload[4:6])
		b[13] = '-'
		hex.Encode(b[14:18], payload[6:8])
		b[18] = '-'
		hex.Encode(b[19:23], payload[8:10])
		b[23] = '-'
		hex.Encode(b[24:36], payload[10:16])
		return string(b[:])
	}
	return string(payload)
}

// normalizeTo normalises raw of type t and returns the stored kind and its
// compact payload, appended to dst: the 32 digest bytes for hashed kinds, the
// 16 bytes of a mobile ad id, the id itself for uid/eid. It does not allocate
// when dst has room for 64 bytes.
func normalizeTo(dst []byte, t IDType, raw []byte, defaultCountry string) (IDType, []byte, error) {
	v := trimSpace(raw)
	if len(v) == 0 {
		return t, nil, ErrEmpty
	}
	if len(v) > MaxIDLen {
		return t, nil, ErrTooLong
	}
	switch t {
	case IDEmail:
		if len(v) == 64 {
			if b, ok := appendHexDecoded(dst, v); ok {
				return IDEmailSHA256, b, nil
			}
		}
		var buf [MaxIDLen]byte
		e, err := normalizeEmail(buf[:0], v)
		if err != nil {
			return t, nil, err
		}
		sum := sha256.Sum256(e)
		return IDEmailSHA256, append(dst, sum[:]...), nil
	case IDPhone:
		if len(v) == 64 {
			if b, ok := appendHexDecoded(dst, v); ok {
				return IDPhoneSHA256, b, nil
			}
		}
		var buf [24]byte
		p, err := normalizePhone(buf[:0], v, defaultCountry)
		if err != nil {
			return t, nil, err
		}
		sum := sha256.Sum256(p)
		return IDPhoneSHA256, append(dst, sum[:]...), nil
	case IDEmailSHA256, IDPhoneSHA256:
		if len(v) != 64 {
			return t, nil, ErrBadHash
		}
		b, ok := appendHexDecoded(dst, v)
		if !ok {
			return t, nil, ErrBadHash
		}
		return t, b, nil
	case IDMAID:
		b, err := appendUUID(dst, v)
		return t, b, err
	case IDUID, IDEID:
		for _, c := range v {
			if c < 0x21 || c > 0x7e {
				return t, nil, ErrBadUID
			}
		}
		return t, append(dst, v...), nil
	}
	return t, nil, ErrBadIDType
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 {
		c := b[len(b)-1]
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			break
		}
		b = b[:len(b)-1]
	}
	// A UTF-8 byte order mark (Excel exports) is not part of the id.
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		return trimSpace(b[3:])
	}
	return b
}

// unhex maps a hex digit (either case) to its value, anything else to 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
		t[c-'a'+'A'] = byte(c-'a') + 10
	}
	return t
}()

func fromHex(c byte) byte { return unhex[c] }

// appendHexDecoded appends the bytes of the even-length hex string v, and
// reports whether v was hex (dst is unusable when not).
func appendHexDecoded(dst, v []byte) ([]byte, bool) {
	var bad byte
	for i := 0; i+1 < len(v); i += 2 {
		hi, lo := unhex[v[i]], unhex[v[i+1]]
		bad |= hi | lo
		dst = append(dst, hi<<4|lo)
	}
	return dst, bad <= 15 && len(v)%2 == 0
}

// normalizeEmail appends the trimmed, lower-cased address (no dot or +tag
// stripping, see Normalize) after checking it looks like one.
func normalizeEmail(dst, v []byte) ([]byte, error) {
	at := -1
	for i, c := range v {
		switch {
		case c == '@':
			if at >= 0 {
				return nil, ErrBadEmail
			}
			at = i
		case c <= ' ' || c == 0x7f || c == ',' || c == ';' || c == '<' || c == '>' || c == '"' || c == '(' || c == ')' || c == '[' || c == ']' || c == '\\':
			return nil, ErrBadEmail
		}
	}
	if at <= 0 || at > 64 || at >= len(v)-3 {
		return nil, ErrBadEmail
	}
	dom := v[at+1:]
	if dom[0] == '.' || dom[len(dom)-1] == '.' || !containsByte(dom, '.') || containsDots(dom) || v[0] == '.' || v[at-1] == '.' {
		return nil, ErrBadEmail
	}
	ascii := true
	for _, c := range v {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		if !utf8.Valid(v) {
			return nil, ErrBadEmail
		}
		return append(dst, strings.ToLower(string(v))...), nil
	}
	for _, c := range v {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, nil
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

func containsDots(b []byte) bool {
	for i := 1; i < len(b); i++ {
		if b[i] == '.' && b[i-1] == '.' {
			return true
		}
	}
	return false
}

// trunkZero lists calling codes of countries whose national numbers start
// with the trunk prefix 0, which E.164 drops: "+82 010-1234-5678", a common
// mistake, is +821012345678. Calling codes are prefix-free, so a number
// starting with one of these and then 0 can only be that country. Italy (39)
// is absent on purpose: its numbers keep their leading 0 in E.164.
var trunkZero = []string{
	"20", "27", "30", "31", "32", "33", "41", "43", "44", "46", "49", "51", "54", "55", "60", "61", "62", "63",
	"64", "66", "81", "82", "84", "86", "90", "91", "92", "94", "234", "254", "351", "353", "358", "852", "880",
	"886", "966", "971", "972",
}

// normalizePhone appends the E.164 form "+<digits>" of v. A number is
// international when it starts with "+" or "00" (or "011" in North
// America); otherwise it is national in defaultCountry. "(0)" after a
// country code, and a trunk 0 right after it, are dropped; North American
// and Korean numbers get a length check, others only E.164's 7–15 digits.
// Letters, extensions and other symbols make the number invalid.
func normalizePhone(dst, v []byte, defaultCountry string) ([]byte, error) {
	var d [32]byte
	digits := d[:0]
	plus := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
			if len(digits) == len(d) {
				return nil, ErrBadPhone
			}
			digits = append(digits, c)
		case c == '+' && len(digits) == 0 && !plus:
			plus = true
		case c == '(' && i+2 < len(v) && v[i+1] == '0' && v[i+2] == ')' && (plus || hasPrefix(digits, "00")):
			i += 2 // "+44 (0)20 …": the national trunk prefix written in parentheses
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/' || c == '\t':
		default:
			return nil, ErrBadPhone
		}
	}
	cc := strings.TrimPrefix(strings.TrimSpace(defaultCountry), "+")
	if cc == "" {
		cc = "1"
	}
	switch {
	case plus:
	case hasPrefix(digits, "00"):
		digits = digits[2:]
		plus = true
	case cc == "1" && hasPrefix(digits, "011"):
		digits = digits[3:]
		plus = true
	}
	if plus {
		for _, tz := range trunkZero {
			if len(digits) > len(tz) && hasPrefix(digits, tz) && digits[len(tz)] == '0' {
				digits = append(digits[:len(tz)], digits[len(tz)+1:]...)
				break
			}
		}
	} else {
		if len(cc) > 3 || !allDigits(cc) || cc[0] == '0' {
			return nil, ErrCountry
		}
		switch {
		case cc == "1" && len(digits) == 11 && digits[0] == '1':
			// 1-555-…: the country code (and NANP trunk prefix) already there.
		case cc == "39":
			digits = append([]byte(cc), digits...)
		case len(digits) > 0 && digits[0] == '0':
			// National trunk prefix: Korea 010-1234-5678 → +82 10 1234 5678.
			digits = append([]byte(cc), digits[1:]...)
		case cc != "1" && hasPrefix(digits, cc) && len(digits) >= len(cc)+8:
			// The country code without "+": 82 10 1234 5678.
		default:
			digits = append([]byte(cc), digits...)
		}
	}
	if len(digits) < 7 || len(digits) > 15 || digits[0] == '0' {
		return nil, ErrBadPhone
	}
	switch {
	case digits[0] == '1':
		// North American Numbering Plan: +1 NPA NXX XXXX, area code 2-9xx.
		if len(digits) != 11 || digits[1] < '2' {
			return nil, ErrBadNANP
		}
	case hasPrefix(digits, "82"):
		if n := len(digits) - 2; n < 8 || n > 10 || digits[2] == '0' {
			return nil, ErrBadKorean
		}
	}
	dst = append(dst, '+')
	return append(dst, digits...), nil
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// appendUUID appends the 16 bytes of a UUID written with or without dashes.
func appendUUID(dst, v []byte) ([]byte, error) {
	var h [32]byte
	n := 0
	switch len(v) {
	case 36:
		for i, c := range v {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if c != '-' {
					return nil, ErrBadMAID
				}
				continue
			}
			h[n] = c
			n++
		}
	case 32:
		n = copy(h[:], v)
	default:
		return nil, ErrBadMAID
	}
	out, ok := appendHexDecoded(dst, h[:])
	if !ok {
		return nil, ErrBadMAID
	}
	var or byte
	for _, c := range out[len(dst):] {
		or |= c
	}
	if or == 0 {
		return nil, ErrZeroMAID
	}
	return out, nil
}

// Pseudonym is the keyed hash of (id kind, normalised value). It is the only
// form of a user identifier that is stored, held in filters or logged.
type Pseudonym [16]byte

// String returns the hex form, safe to log.
func (p Pseudonym) String() string { return hex.EncodeToString(p[:]) }

// IsZero reports whether p is the zero pseudonym.
func (p Pseudonym) IsZero() bool { return p == Pseudonym{} }

// Pseudonymizer computes pseudonyms under a secret key: the first 16 bytes
// of HMAC-SHA256(secret, kind ‖ payload), where payload is the compact form
// of the normalised value (the 32 digest bytes of a hashed e-mail or phone,
// the 16 bytes of a mobile ad id, a uid as is). The compact form keeps a
// hashed e-mail's message in one SHA-256 block instead of two (about a
// quarter of the cost of a pseudonym; BENCHMARKS.md, "Audiences"). HMAC is
// kept over faster keyed hashes as the construction data-protection
// guidance names for pseudonymisation. Safe for concurrent use.
type Pseudonymizer struct {
	pool sync.Pool
}

// NewPseudonymizer returns a Pseudonymizer keyed by secret (at least 16 bytes).
func NewPseudonymizer(secret []byte) (*Pseudonymizer, error) {
	if len(secret) < 16 {
		return nil, errors.New("audience: secret shorter than 16 bytes")
	}
	key := append([]byte(nil), secret...)
	p := &Pseudonymizer{}
	p.pool.New = func() any { return &hstate{h: hmac.New(sha256.New, key)} }
	return p, nil
}

type hstate struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// ofPayload returns the pseudonym of a compact payload of kind t.
func (p *Pseudonymizer) ofPayload(t IDType, payload []byte) Pseudonym {
	s := p.pool.Get().(*hstate)
	s.buf = append(append(s.buf[:0], byte(t)), payload...)
	s.h.Reset()
	s.h.Write(s.buf)
	sum := s.h.Sum(s.sum[:0])
	var out Pseudonym
	copy(out[:], sum)
	p.pool.Put(s)
	return out
}

// appendPayload appends the compact payload of a canonical value of kind t.
// A value that is not canonical is hashed as written, so Of stays total.
func appendPayload(dst []byte, t IDType, v []byte) []byte {
	switch t {
	case IDEmailSHA256, IDPhoneSHA256:
		if len(v) == 64 {
			if b, ok := appendHexDecoded(dst, v); ok {
				return b
			}
		}
	case IDMAID:
		if b, err := appendUUID(dst, v); err == nil {
			return b
		}
	}
	return append(dst, v...)
}

// Of returns the pseudonym of an already normalised value of kind t (as
// returned by Normalize).
func (p *Pseudonymizer) Of(t IDType, normalized string) Pseudonym {
	if len(normalized) > MaxIDLen {
		return p.OfBytes(t, []byte(normalized))
	}
	var b [MaxIDLen]byte
	n := copy(b[:], normalized)
	return p.OfBytes(t, b[:n])
}

// OfBytes is Of for a byte slice value (no allocation).
func (p *Pseudonymizer) OfBytes(t IDType, normalized []byte) Pseudonym {
	var pl [MaxIDLen]byte
	return p.ofPayload(t, appendPayload(pl[:0], t, normalized))
}

// Raw normalises raw of type t and returns its pseudonym and stored kind.
func (p *Pseudonymizer) Raw(t IDType, raw, defaultCountry string) (Pseudonym, error) {
	ps, _, err := p.RawKind(t, []byte(raw), defaultCountry)
	return ps, err
}

// RawKind normalises raw of type t and returns its pseudonym and the kind it
// is stored under (email_sha256 for an e-mail, and so on).
func (p *Pseudonymizer) RawKind(t IDType, raw []byte, defaultCountry string) (Pseudonym, IDType, error) {
	var scratch [MaxIDLen]byte
	kind, payload, err := normalizeTo(scratch[:0], t, raw, defaultCountry)
	if err != nil {
		return Pseudonym{}, t, err
	}
	return p.ofPayload(kind, payload), kind, nil
}
