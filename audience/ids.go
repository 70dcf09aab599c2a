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
)

// IDType is the kind of a user identifier.
type IDType uint8

// Identifier kinds. Email and Phone are accepted on input only: they are
// normalised and hashed to EmailSHA256 / PhoneSHA256 on arrival.
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

// ParseIDType parses an id type name as used by the admin API (id_type=…).
func ParseIDType(s string) (IDType, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range idTypeNames {
		if i > 0 && n == s {
			return IDType(i), nil
		}
	}
	switch s {
	case "mobile_ad_id", "ifa", "idfa", "gaid", "madid":
		return IDMAID, nil
	case "sha256_email", "hashed_email":
		return IDEmailSHA256, nil
	case "sha256_phone", "hashed_phone":
		return IDPhoneSHA256, nil
	case "cookie", "buyeruid", "user_id":
		return IDUID, nil
	}
	return IDUnknown, fmt.Errorf("unknown id type %q (want email, email_sha256, phone, phone_sha256, maid or uid)", s)
}

// Normalisation errors.
var (
	ErrEmpty     = errors.New("empty identifier")
	ErrBadEmail  = errors.New("not an e-mail address")
	ErrBadPhone  = errors.New("not a phone number")
	ErrBadHash   = errors.New("not a SHA-256 hex digest (want 64 hex characters)")
	ErrBadMAID   = errors.New("not a mobile ad id (want a UUID)")
	ErrBadUID    = errors.New("not a valid user id")
	ErrBadIDType = errors.New("unsupported id type")
)

// MaxIDLen bounds any raw identifier accepted from outside.
const MaxIDLen = 256

// Normalize turns a raw identifier of type t into its stored kind and
// canonical value. Plain e-mails and phones come back as their SHA-256 hex
// digest (kind IDEmailSHA256 / IDPhoneSHA256), so a raw value never leaves
// this function. defaultCountry is the ITU calling code (e.g. "82") used for
// national phone numbers; empty means "1".
func Normalize(t IDType, raw, defaultCountry string) (IDType, string, error) {
	v := strings.TrimSpace(raw)
	if v == "" {
		return t, "", ErrEmpty
	}
	if len(v) > MaxIDLen {
		return t, "", fmt.Errorf("identifier longer than %d bytes", MaxIDLen)
	}
	switch t {
	case IDEmail:
		e, err := normalizeEmail(v)
		if err != nil {
			return t, "", err
		}
		return IDEmailSHA256, sha256Hex(e), nil
	case IDEmailSHA256, IDPhoneSHA256:
		h, err := normalizeHash(v)
		return t, h, err
	case IDPhone:
		p, err := normalizePhone(v, defaultCountry)
		if err != nil {
			return t, "", err
		}
		return IDPhoneSHA256, sha256Hex(p), nil
	case IDMAID:
		m, err := normalizeUUID(v)
		return t, m, err
	case IDUID, IDEID:
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < 0x21 || c > 0x7e {
				return t, "", ErrBadUID
			}
		}
		return t, v, nil
	}
	return t, "", ErrBadIDType
}

func normalizeEmail(v string) (string, error) {
	v = strings.ToLower(v)
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 || strings.ContainsAny(v, " \t,;<>\"") || strings.Count(v, "@") != 1 {
		return "", ErrBadEmail
	}
	if !strings.Contains(v[at+1:], ".") {
		return "", ErrBadEmail
	}
	return v, nil
}

func normalizeHash(v string) (string, error) {
	if len(v) != 64 {
		return "", ErrBadHash
	}
	var b [64]byte
	for i := 0; i < 64; i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", ErrBadHash
		}
		b[i] = c
	}
	return string(b[:]), nil
}

// normalizePhone returns the E.164 form "+<digits>".
func normalizePhone(v, defaultCountry string) (string, error) {
	international := strings.HasPrefix(v, "+") || strings.HasPrefix(v, "00")
	digits := make([]byte, 0, 16)
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == ' ' || c == '-' || c == '(' || c == ')' || c == '.' || (c == '+' && i == 0):
		default:
			return "", ErrBadPhone
		}
	}
	if strings.HasPrefix(v, "00") {
		digits = digits[2:]
	}
	if !international {
		cc := defaultCountry
		if cc == "" {
			cc = "1"
		}
		// National numbers drop their trunk prefix 0 (e.g. Korea 010-… → +8210…).
		if len(digits) > 0 && digits[0] == '0' {
			digits = digits[1:]
		}
		if !(cc == "1" && len(digits) == 11 && digits[0] == '1') {
			digits = append([]byte(cc), digits...)
		}
	}
	if len(digits) < 8 || len(digits) > 15 || digits[0] == '0' {
		return "", ErrBadPhone
	}
	return "+" + string(digits), nil
}

func normalizeUUID(v string) (string, error) {
	if len(v) != 36 {
		return "", ErrBadMAID
	}
	var b [36]byte
	for i := 0; i < 36; i++ {
		c := v[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return "", ErrBadMAID
			}
			b[i] = c
			continue
		}
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", ErrBadMAID
		}
		b[i] = c
	}
	s := string(b[:])
	if s == "00000000-0000-0000-0000-000000000000" {
		return "", ErrBadMAID // limit ad tracking: a zeroed IFA identifies no one
	}
	return s, nil
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Pseudonym is the keyed hash of (id kind, normalised value). It is the only
// form of a user identifier that is stored, held in filters or logged.
type Pseudonym [16]byte

// String returns the hex form, safe to log.
func (p Pseudonym) String() string { return hex.EncodeToString(p[:]) }

// IsZero reports whether p is the zero pseudonym.
func (p Pseudonym) IsZero() bool { return p == Pseudonym{} }

// Pseudonymizer computes pseudonyms under a secret key. Safe for concurrent use.
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
	sum []byte
}

// Of returns the pseudonym of an already normalised value of kind t.
func (p *Pseudonymizer) Of(t IDType, normalized string) Pseudonym {
	s := p.pool.Get().(*hstate)
	s.h.Reset()
	s.buf = append(s.buf[:0], byte(t))
	s.buf = append(s.buf, normalized...)
	s.h.Write(s.buf)
	s.sum = s.h.Sum(s.sum[:0])
	var out Pseudonym
	copy(out[:], s.sum)
	p.pool.Put(s)
	return out
}

// OfBytes is Of for a byte slice value (no allocation).
func (p *Pseudonymizer) OfBytes(t IDType, normalized []byte) Pseudonym {
	s := p.pool.Get().(*hstate)
	s.h.Reset()
	s.buf = append(s.buf[:0], byte(t))
	s.buf = append(s.buf, normalized...)
	s.h.Write(s.buf)
	s.sum = s.h.Sum(s.sum[:0])
	var out Pseudonym
	copy(out[:], s.sum)
	p.pool.Put(s)
	return out
}

// Raw normalises raw of type t and returns its pseudonym.
func (p *Pseudonymizer) Raw(t IDType, raw, defaultCountry string) (Pseudonym, error) {
	k, v, err := Normalize(t, raw, defaultCountry)
	if err != nil {
		return Pseudonym{}, err
	}
	return p.Of(k, v), nil
}
