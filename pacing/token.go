package pacing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// Token is what a notice URL carries, signed: which campaign bid how much in
// which auction, and when.
type Token struct {
	Campaign  string
	AuctionID string // request id
	ImpID     string
	BidMicros int64 // bid price, CPM micros
	Unix      int64 // bid time
	User      [16]byte
}

// Token errors.
var (
	ErrBadToken    = errors.New("pacing: malformed token")
	ErrBadSig      = errors.New("pacing: bad token signature")
	maxTokenFields = 256
)

// Signer signs and verifies notice tokens.
type Signer struct{ key []byte }

// NewSigner returns a token signer keyed by secret.
func NewSigner(secret []byte) *Signer {
	return &Signer{key: append([]byte("chaser-notice\x00"), secret...)}
}

const sigLen = 16

// Append appends the URL-safe encoding of the signed token to dst.
func (s *Signer) Append(dst []byte, t *Token) []byte {
	var raw [512]byte
	b := raw[:0]
	b = appendStr(b, t.Campaign)
	b = appendStr(b, t.AuctionID)
	b = appendStr(b, t.ImpID)
	b = binary.AppendUvarint(b, uint64(t.BidMicros))
	b = binary.AppendUvarint(b, uint64(t.Unix))
	b = append(b, t.User[:]...)
	m := hmac.New(sha256.New, s.key)
	m.Write(b)
	b = m.Sum(b)[:len(b)+sigLen]
	n := base64.RawURLEncoding.EncodedLen(len(b))
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	base64.RawURLEncoding.Encode(dst[start:], b)
	return dst
}

func appendStr(b []byte, s string) []byte {
	if len(s) > maxTokenFields {
		s = s[:maxTokenFields]
	}
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Parse decodes and verifies a token.
func (s *Signer) Parse(enc string) (Token, error) {
	var t Token
	if len(enc) == 0 || len(enc) > 2048 {
		return t, ErrBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(b) < sigLen+1 {
		return t, ErrBadToken
	}
	body, sig := b[:len(b)-sigLen], b[len(b)-sigLen:]
	m := hmac.New(sha256.New, s.key)
	m.Write(body)
	if !hmac.Equal(sig, m.Sum(nil)[:sigLen]) {
		return t, ErrBadSig
	}
	var ok bool
	if t.Campaign, body, ok = readStr(body); !ok {
		return t, ErrBadToken
	}
	if t.AuctionID, body, ok = readStr(body); !ok {
		return t, ErrBadToken
	}
	if t.ImpID, body, ok = readStr(body); !ok {
		return t, ErrBadToken
	}
	v, n := binary.Uvarint(body)
	if n <= 0 {
		return t, ErrBadToken
	}
	t.BidMicros, body = int64(v), body[n:]
	v, n = binary.Uvarint(body)
	if n <= 0 {
		return t, ErrBadToken
	}
	t.Unix, body = int64(v), body[n:]
	if len(body) != 16 {
		return t, ErrBadToken
	}
	copy(t.User[:], body)
	return t, nil
}

func readStr(b []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return "", nil, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}
