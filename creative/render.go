package creative

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/url"
	"strconv"
	"strings"
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
type ClickSigner struct {
	key []byte
}

// NewClickSigner returns a signer keyed by secret.
func NewClickSigner(secret []byte) *ClickSigner {
	return &ClickSigner{key: append([]byte("chaser-click\x00"), secret...)}
}

func (s *ClickSigner) mac(adv, cmp, product string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(adv))
	m.Write([]byte{0})
	m.Write([]byte(cmp))
	m.Write([]byte{0})
	m.Write([]byte(product))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// AppendClickURL appends base + "/click?..." for the product.
func (s *ClickSigner) AppendClickURL(dst []byte, base, adv, cmp, product string) []byte {
	dst = append(dst, base...)
	dst = append(dst, "/click?a="...)
	dst = append(dst, url.QueryEscape(adv)...)
	dst = append(dst, "&c="...)
	dst = append(dst, url.QueryEscape(cmp)...)
	dst = append(dst, "&p="...)
	dst = append(dst, url.QueryEscape(product)...)
	dst = append(dst, "&s="...)
	return append(dst, s.mac(adv, cmp, product)...)
}

// Verify checks a click URL's signature.
func (s *ClickSigner) Verify(adv, cmp, product, sig string) bool {
	return hmac.Equal([]byte(sig), []byte(s.mac(adv, cmp, product)))
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

func appendEsc(dst []byte, s string) []byte {
	return append(dst, html.EscapeString(s)...)
}

// FormatPrice renders micros in a currency for display ("12.50 USD").
func FormatPrice(micros int64, currency string) string {
	cents := (micros + 5000) / 10000
	s := strconv.FormatInt(cents/100, 10) + "." + pad2(cents%100)
	if currency != "" {
		s += " " + currency
	}
	return s
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// AppendBannerHTML appends the banner's HTML markup. Every value from a feed
// or campaign is HTML-escaped; links go through signed click URLs.
func (s *ClickSigner) AppendBannerHTML(dst []byte, b *Banner) []byte {
	n := len(b.Products)
	horizontal := b.W > b.H*2
	dst = append(dst, `<div class="chaser-ad" style="width:`...)
	dst = strconv.AppendInt(dst, b.W, 10)
	dst = append(dst, `px;height:`...)
	dst = strconv.AppendInt(dst, b.H, 10)
	dst = append(dst, `px;overflow:hidden;font-family:sans-serif;display:flex;flex-direction:`...)
	if horizontal {
		dst = append(dst, "row"...)
	} else {
		dst = append(dst, "column"...)
	}
	dst = append(dst, `">`...)
	if b.Offer != "" {
		dst = append(dst, `<div class="chaser-offer" style="font-weight:bold">`...)
		dst = appendEsc(dst, b.Offer)
		dst = append(dst, `</div>`...)
	}
	for _, p := range b.Products {
		dst = append(dst, `<a class="chaser-item" target="_blank" rel="noopener" style="flex:1;text-decoration:none;color:inherit" href="`...)
		var click []byte
		click = s.AppendClickURL(click, b.BaseURL, b.Advertiser, b.Campaign, p.ID)
		dst = appendEsc(dst, string(click))
		dst = append(dst, `">`...)
		if p.ImageURL != "" {
			dst = append(dst, `<img alt="" style="max-width:100%;max-height:`...)
			dst = strconv.AppendInt(dst, imgMax(b, n, horizontal), 10)
			dst = append(dst, `px" src="`...)
			dst = appendEsc(dst, assetURL(p.ImageURL, b.Secure))
			dst = append(dst, `">`...)
		}
		dst = append(dst, `<div class="chaser-title">`...)
		dst = appendEsc(dst, p.Title)
		dst = append(dst, `</div><div class="chaser-price">`...)
		dst = appendEsc(dst, FormatPrice(p.PriceMicros, p.Currency))
		dst = append(dst, `</div></a>`...)
	}
	if b.ImpURL != "" {
		dst = append(dst, `<img width="1" height="1" style="display:none" alt="" src="`...)
		dst = appendEsc(dst, b.ImpURL)
		dst = append(dst, `">`...)
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
