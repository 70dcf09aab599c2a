package creative

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/chaser-dsp/chaser/memo"
)

// ProductsForSize is how many products a banner of the given size shows.
func ProductsForSize(w, h int64) int {
	switch {
	case w == 320 && h == 480:
		return 4
	case w == 728 && h == 90, w == 300 && h == 600:
		return 3
	case w == 160 && h == 600:
		return 2
	}
	return 1
}

// ClickSigner signs and checks click URLs. A click URL names advertiser,
// campaign and product; the redirect target is the product's landing URL
// looked up in the catalogue, never a URL taken from the request, so /click
// cannot be an open redirect.
//
// Keyed HMAC states are pooled (a Reset instead of hmac.New's key schedules
// and allocations on every signed URL of the bid path).
type ClickSigner struct {
	key  []byte
	macs sync.Pool
	sigs *memo.Table[[3]string, [sigLen]byte] // see appendSig
}

// NewClickSigner returns a signer keyed by secret.
func NewClickSigner(secret []byte) *ClickSigner {
	s := &ClickSigner{key: append([]byte("chaser-click\x00"), secret...), sigs: memo.New[[3]string, [sigLen]byte](sigSlots)}
	s.macs.New = func() any { return &keyedMAC{h: hmac.New(sha256.New, s.key), buf: make([]byte, 0, 256)} }
	return s
}

// keyedMAC is a pooled HMAC state with scratch space: the message is
// gathered in buf and written at once (a stack buffer passed to the
// interface's Write would escape to the heap).
type keyedMAC struct {
	h   hash.Hash
	buf []byte
}

// appendMAC appends the URL-safe signature of (adv, cmp, product) to dst.
func (s *ClickSigner) appendMAC(dst []byte, adv, cmp, product string) []byte {
	m := s.macs.Get().(*keyedMAC)
	b := append(m.buf[:0], adv...)
	b = append(b, 0)
	b = append(b, cmp...)
	b = append(b, 0)
	b = append(b, product...)
	m.h.Reset()
	m.h.Write(b)
	b = m.h.Sum(b[:0])
	dst = base64.RawURLEncoding.AppendEncode(dst, b[:16])
	if cap(b) <= 4<<10 {
		m.buf = b
		s.macs.Put(m)
	}
	return dst
}

// AppendClickURL appends base + "/click?..." for the product.
func (s *ClickSigner) AppendClickURL(dst []byte, base, adv, cmp, product string) []byte {
	dst = append(dst, base...)
	dst = append(dst, "/click?a="...)
	dst = appendQueryEscape(dst, adv)
	dst = append(dst, "&c="...)
	dst = appendQueryEscape(dst, cmp)
	dst = append(dst, "&p="...)
	dst = appendQueryEscape(dst, product)
	dst = append(dst, "&s="...)
	return s.appendSig(dst, adv, cmp, product)
}

// appendSig is appendMAC through the signer's memo of recently rendered
// products' signatures: a campaign shows the same products again and
// again, and one HMAC-SHA256 costs several times the rest of a product's
// markup. A signature depends on the key and the three ids alone, and the
// key is the signer's for its life, so an entry never goes stale. Verify
// does not use the memo: forged clicks must not churn it.
func (s *ClickSigner) appendSig(dst []byte, adv, cmp, product string) []byte {
	if len(adv) > maxMemoID || len(cmp) > maxMemoID || len(product) > maxMemoID {
		return s.appendMAC(dst, adv, cmp, product)
	}
	if sig, ok := s.sigs.Get([3]string{adv, cmp, product}); ok {
		return append(dst, sig[:]...)
	}
	n := len(dst)
	dst = s.appendMAC(dst, adv, cmp, product)
	var sig [sigLen]byte
	copy(sig[:], dst[n:])
	s.sigs.Put([3]string{strings.Clone(adv), strings.Clone(cmp), strings.Clone(product)}, sig)
	return dst
}

const (
	// sigSlots bounds the memo at a few hundred KB.
	sigSlots = 4096
	// sigLen is the length of a signature: 16 bytes of MAC in unpadded
	// URL-safe base64.
	sigLen = 22
	// maxMemoID is the longest id memoised; longer ones are signed afresh.
	maxMemoID = 256
)

// appendQueryEscape appends url.QueryEscape(v) without allocating when v
// needs no escaping (ids usually do not).
func appendQueryEscape(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return append(dst, url.QueryEscape(v)...)
		}
	}
	return append(dst, v...)
}

// Verify checks a click URL's signature.
func (s *ClickSigner) Verify(adv, cmp, product, sig string) bool {
	var buf [32]byte
	return hmac.Equal([]byte(sig), s.appendMAC(buf[:0], adv, cmp, product))
}

// Banner is what a banner creative shows.
type Banner struct {
	W, H       int64
	Products   []*Product
	Offer      string // e.g. "10% off today" for a cart reminder; empty for none
	Secure     bool   // the imp requires https assets
	BaseURL    string // public base URL for click and impression URLs (http or https)
	Advertiser string
	Campaign   string
	ImpURL     string // impression pixel URL (already signed), or empty
}

// AppendCRID appends the creative id: template and products, so reports can
// say which products won ("b300x250:sku-1+sku-2").
func AppendCRID(dst []byte, w, h int64, native bool, products []*Product) []byte {
	if native {
		dst = append(dst, "n:"...)
	} else {
		dst = append(dst, 'b')
		dst = strconv.AppendInt(dst, w, 10)
		dst = append(dst, 'x')
		dst = strconv.AppendInt(dst, h, 10)
		dst = append(dst, ':')
	}
	for i, p := range products {
		if i > 0 {
			dst = append(dst, '+')
		}
		dst = append(dst, p.ID...)
	}
	return dst
}

// assetURL returns u, upgraded to https when the imp is secure.
func assetURL(u string, secure bool) string {
	if secure && strings.HasPrefix(u, "http://") {
		return "https://" + u[len("http://"):]
	}
	return u
}

// appendEsc appends s escaped exactly as html.EscapeString escapes it
// (<, >, &, ' and "), without allocating.
func appendEsc[S ~string | ~[]byte](dst []byte, s S) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var rep string
		switch s[i] {
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '&':
			rep = "&amp;"
		case '\'':
			rep = "&#39;"
		case '"':
			rep = "&#34;"
		default:
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, rep...)
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// appendAssetURL appends u, upgraded to https when the imp is secure.
func appendAssetURL(dst []byte, u string, secure bool) []byte {
	if secure && strings.HasPrefix(u, "http://") {
		dst = append(dst, "https://"...)
		u = u[len("http://"):]
	}
	return append(dst, u...)
}

// FormatPrice renders micros in a currency for display ("12.50 USD").
func FormatPrice(micros int64, currency string) string {
	return string(AppendPrice(nil, micros, currency))
}

// AppendPrice appends what FormatPrice returns.
func AppendPrice(dst []byte, micros int64, currency string) []byte {
	cents := (micros + 5000) / 10000
	dst = strconv.AppendInt(dst, cents/100, 10)
	dst = append(dst, '.')
	if c := cents % 100; c < 10 {
		dst = append(dst, '0', byte('0'+c))
	} else {
		dst = strconv.AppendInt(dst, c, 10)
	}
	if currency != "" {
		dst = append(dst, ' ')
		dst = append(dst, currency...)
	}
	return dst
}

// AppendBannerHTML appends the banner's HTML markup. Every value from a feed
// or campaign is HTML-escaped (both quotes included); links go through
// signed click URLs. Attributes are single-quoted, so the markup needs no
// escaping inside the JSON of a bid response (AppendJSONString copies it
// eight bytes at a time).
func (s *ClickSigner) AppendBannerHTML(dst []byte, b *Banner) []byte {
	n := len(b.Products)
	horizontal := b.W > b.H*2
	dst = append(dst, `<div class='chaser-ad' style='width:`...)
	dst = strconv.AppendInt(dst, b.W, 10)
	dst = append(dst, `px;height:`...)
	dst = strconv.AppendInt(dst, b.H, 10)
	dst = append(dst, `px;overflow:hidden;font-family:sans-serif;display:flex;flex-direction:`...)
	if horizontal {
		dst = append(dst, "row"...)
	} else {
		dst = append(dst, "column"...)
	}
	dst = append(dst, `'>`...)
	if b.Offer != "" {
		dst = append(dst, `<div class='chaser-offer' style='font-weight:bold'>`...)
		dst = appendEsc(dst, b.Offer)
		dst = append(dst, `</div>`...)
	}
	var buf [512]byte // scratch for the unescaped click URL and price
	for _, p := range b.Products {
		dst = append(dst, `<a class='chaser-item' target='_blank' rel='noopener' style='flex:1;text-decoration:none;color:inherit' href='`...)
		dst = appendEsc(dst, s.AppendClickURL(buf[:0], b.BaseURL, b.Advertiser, b.Campaign, p.ID))
		dst = append(dst, `'>`...)
		if p.ImageURL != "" {
			dst = append(dst, `<img alt='' style='max-width:100%;max-height:`...)
			dst = strconv.AppendInt(dst, imgMax(b, n, horizontal), 10)
			dst = append(dst, `px' src='`...)
			dst = appendEsc(dst, appendAssetURL(buf[:0], p.ImageURL, b.Secure))
			dst = append(dst, `'>`...)
		}
		dst = append(dst, `<div class='chaser-title'>`...)
		dst = appendEsc(dst, p.Title)
		dst = append(dst, `</div><div class='chaser-price'>`...)
		dst = appendEsc(dst, AppendPrice(buf[:0], p.PriceMicros, p.Currency))
		dst = append(dst, `</div></a>`...)
	}
	if b.ImpURL != "" {
		dst = append(dst, `<img width='1' height='1' style='display:none' alt='' src='`...)
		dst = appendEsc(dst, b.ImpURL)
		dst = append(dst, `'>`...)
	}
	return append(dst, `</div>`...)
}

func imgMax(b *Banner, n int, horizontal bool) int64 {
	h := b.H - 40
	if !horizontal && n > 1 {
		h = b.H/int64(n) - 40
	}
	if h < 20 {
		h = 20
	}
	return h
}
