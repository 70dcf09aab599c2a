package pacing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"sync"
)

// Token is what a notice URL carries, signed: which campaign bid how much in
// which auction, for whom, and when.
type Token struct {
	Campaign   string
	AuctionID  string // request id
	ImpID      string
	BidMicros  int64 // bid price, CPM micros of the campaign currency
	Unix       int64 // bid time, seconds
	User       [16]byte
	FirstPrice bool // the auction was first-price (at=1)
}

// Token errors.
var (
	ErrBadToken = errors.New("pacing: malformed token")
	ErrBadSig   = errors.New("pacing: bad token signature")
)

const (
	// maxTokenField bounds each string field of a token.
	maxTokenField = 256
	// MaxTokenLen bounds an encoded token.
	MaxTokenLen = 2048
	sigLen      = 16
	flagFirst   = 1
)

// Signer signs and verifies notice tokens. Keyed HMAC states are pooled:
// hmac.New costs two key schedules and three allocations, a Reset none.
type Signer struct {
	key  []byte
	macs sync.Pool
}

// NewSigner returns a token signer keyed by secret.
func NewSigner(secret []byte) *Signer {
	s := &Signer{key: append([]byte("chaser-notice\x00"), secret...)}
	s.macs.New = func() any { return &keyedMAC{h: hmac.New(sha256.New, s.key), buf: make([]byte, 0, 1024)} }
	return s
}

// keyedMAC is a pooled HMAC state with scratch space for the message (a
// stack buffer passed to the interface's Write would escape to the heap).
type keyedMAC struct {
	h   hash.Hash
	buf []byte
}

func (s *Signer) getMAC() *keyedMAC { return s.macs.Get().(*keyedMAC) }

func (s *Signer) putMAC(m *keyedMAC) {
	if cap(m.buf) <= 4<<10 {
		s.macs.Put(m)
	}
}

// signBuf appends the HMAC of m.buf[:n] after it and returns m.buf.
func (m *keyedMAC) signBuf(n int) []byte {
	m.h.Reset()
	m.h.Write(m.buf[:n])
	m.buf = m.h.Sum(m.buf[:n])
	return m.buf
}

// Append appends the URL-safe encoding of the signed token to dst. String
// fields longer than 256 bytes are cut.
func (s *Signer) Append(dst []byte, t *Token) []byte {
	m := s.getMAC()
	defer s.putMAC(m)
	b := m.buf[:0]
	b = appendStr(b, t.Campaign)
	b = appendStr(b, t.AuctionID)
	b = appendStr(b, t.ImpID)
	b = binary.AppendUvarint(b, uint64(t.BidMicros))
	b = binary.AppendUvarint(b, uint64(t.Unix))
	b = append(b, t.User[:]...)
	var flags byte
	if t.FirstPrice {
		flags |= flagFirst
	}
	b = append(b, flags)
	n := len(b)
	m.buf = b
	b = m.signBuf(n)
	return base64.RawURLEncoding.AppendEncode(dst, b[:n+sigLen])
}

func appendStr(b []byte, s string) []byte {
	if len(s) > maxTokenField {
		s = s[:maxTokenField]
	}
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Parse decodes and verifies a token.
func (s *Signer) Parse(enc string) (Token, error) { return s.ParseBytes([]byte(enc)) }

// ParseBytes decodes and verifies a token given as bytes (a URL query value).
func (s *Signer) ParseBytes(enc []byte) (Token, error) {
	var t Token
	if len(enc) == 0 || len(enc) > MaxTokenLen {
		return t, ErrBadToken
	}
	var buf [MaxTokenLen]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], enc)
	if err != nil || n < sigLen+1 {
		return t, ErrBadToken
	}
	b := buf[:n]
	body, sig := b[:len(b)-sigLen], b[len(b)-sigLen:]
	m := s.getMAC()
	m.buf = append(m.buf[:0], body...)
	good := hmac.Equal(sig, m.signBuf(len(body))[len(body):len(body)+sigLen])
	s.putMAC(m)
	if !good {
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
	v, k := binary.Uvarint(body)
	if k <= 0 || v > 1<<62 {
		return t, ErrBadToken
	}
	t.BidMicros, body = int64(v), body[k:]
	v, k = binary.Uvarint(body)
	if k <= 0 || v > 1<<40 {
		return t, ErrBadToken
	}
	t.Unix, body = int64(v), body[k:]
	if len(body) != 17 {
		return t, ErrBadToken
	}
	copy(t.User[:], body)
	t.FirstPrice = body[16]&flagFirst != 0
	return t, nil
}

func readStr(b []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > maxTokenField || l > uint64(len(b)-n) {
		return "", nil, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}
