package creative

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/prebid/openrtb/v20/native1"
	nreq "github.com/prebid/openrtb/v20/native1/request"

	"github.com/chaser-dsp/chaser/memo"
)

// MaxNativeRequest bounds the native request string of one imp.
const MaxNativeRequest = 16 << 10

// Native is what a native ad shows: one product, with title, image, price
// and a call to action, following the assets the exchange asked for.
type Native struct {
	Request    string // imp.native.request (OpenRTB Native 1.0–1.2)
	Product    *Product
	Offer      string
	Sponsor    string // brand or advertiser name for "sponsored by"
	Secure     bool
	BaseURL    string
	Advertiser string
	Campaign   string
	ImpURL     string
}

// ParseNativeRequest decodes a native request, wrapped in {"native":…}
// (Native 1.0/1.1) or not (1.2). It reports whether the request was wrapped.
func ParseNativeRequest(s string) (*nreq.Request, bool, bool) {
	if len(s) == 0 || len(s) > MaxNativeRequest {
		return nil, false, false
	}
	b := []byte(s)
	var wrapped struct {
		Native *nreq.Request `json:"native"`
	}
	if bytes.Contains(b, []byte(`"native"`)) && json.Unmarshal(b, &wrapped) == nil && wrapped.Native != nil {
		return wrapped.Native, true, true
	}
	var r nreq.Request
	if err := json.Unmarshal(b, &r); err != nil || len(r.Assets) == 0 {
		return nil, false, false
	}
	return &r, false, true
}

func truncate(s string, n int64) string {
	if n <= 0 || int64(utf8.RuneCountInString(s)) <= n {
		return s
	}
	r := []rune(s)
	if n > 1 {
		return string(r[:n-1]) + "…"
	}
	return string(r[:n])
}

// NativeADM renders the native response for n as the adm string; see
// AppendNativeADM.
func (s *ClickSigner) NativeADM(n *Native) (string, bool) {
	b, ok := s.AppendNativeADM(nil, n)
	return string(b), ok
}

// AppendNativeADM appends the native response for n (OpenRTB Native 1.2,
// wrapped in {"native":…} when the request was) to dst. It fails (false,
// dst unchanged) when the request is malformed or asks for a required
// asset this product cannot fill. Values are JSON-quoted, never spliced as
// text; the JSON is what encoding/json would write for
// native1/response.Response, without HTML escaping.
func (s *ClickSigner) AppendNativeADM(dst []byte, n *Native) ([]byte, bool) {
	req, wrapped, ok := parseNative(nativeRequests, n.Request)
	if !ok || n.Product == nil {
		return dst, false
	}
	start := len(dst)
	p := n.Product
	if wrapped {
		dst = append(dst, `{"native":`...)
	}
	dst = append(dst, `{"ver":"1.2","assets":[`...)
	count := 0
	for i := range req.Assets {
		a := &req.Assets[i]
		mark := len(dst)
		if count > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":`...)
		dst = strconv.AppendInt(dst, a.ID, 10)
		filled := false
		switch {
		case a.Title != nil:
			dst = append(dst, `,"title":{"text":`...)
			dst = AppendJSONString(dst, truncate(p.Title, a.Title.Len))
			dst = append(dst, '}')
			filled = true
		case a.Img != nil:
			if p.ImageURL != "" && (a.Img.Type == 0 || a.Img.Type == native1.ImageAssetTypeMain) {
				dst = append(dst, `,"img":{"url":"`...)
				from := len(dst)
				dst = closeJSONString(appendAssetURL(dst, p.ImageURL, n.Secure), from)
				if a.Img.W > 0 || a.Img.WMin > 0 {
					if w := max(a.Img.W, a.Img.WMin); w != 0 {
						dst = strconv.AppendInt(append(dst, `,"w":`...), w, 10)
					}
					if h := max(a.Img.H, a.Img.HMin); h != 0 {
						dst = strconv.AppendInt(append(dst, `,"h":`...), h, 10)
					}
				}
				dst = append(dst, '}')
				filled = true
			}
		case a.Data != nil:
			var buf [32]byte
			if v := n.dataValue(a.Data.Type, buf[:0]); v != "" {
				dst = append(dst, `,"data":{"value":`...)
				dst = AppendJSONString(dst, truncate(v, a.Data.Len))
				dst = append(dst, '}')
				filled = true
			}
		}
		if !filled {
			dst = dst[:mark]
			if a.Required == 1 {
				return dst[:start], false
			}
			continue
		}
		dst = append(dst, '}')
		count++
	}
	if count == 0 {
		return dst[:start], false
	}
	dst = append(dst, `],"link":{"url":"`...)
	from := len(dst)
	dst = closeJSONString(s.AppendClickURL(dst, n.BaseURL, n.Advertiser, n.Campaign, p.ID), from)
	dst = append(dst, '}')
	if n.ImpURL != "" {
		dst = append(dst, `,"imptrackers":[`...)
		dst = AppendJSONString(dst, n.ImpURL)
		dst = append(dst, `],"eventtrackers":[{"event":`...)
		dst = strconv.AppendInt(dst, int64(native1.EventTypeImpression), 10)
		dst = append(dst, `,"method":`...)
		dst = strconv.AppendInt(dst, int64(native1.EventTrackingMethodImage), 10)
		dst = append(dst, `,"url":`...)
		dst = AppendJSONString(dst, n.ImpURL)
		dst = append(dst, "}]"...)
	}
	dst = append(dst, '}')
	if wrapped {
		dst = append(dst, '}')
	}
	return dst, true
}

// dataValue is what n shows in a data asset of type t ("" for a type it
// has no value for). A price is written into buf's array (so the caller's
// stack array holds it, no allocation) and is valid while buf is.
func (n *Native) dataValue(t native1.DataAssetType, buf []byte) string {
	switch t {
	case native1.DataAssetTypePrice, native1.DataAssetTypeSalePrice:
		b := AppendPrice(buf[:0], n.Product.PriceMicros, n.Product.Currency)
		return unsafe.String(unsafe.SliceData(b), len(b))
	case native1.DataAssetTypeCTAText:
		return "Shop now"
	case native1.DataAssetTypeSponsored:
		return n.Sponsor
	case native1.DataAssetTypeDesc, native1.DataAssetTypeDesc2:
		if n.Offer != "" {
			return n.Offer
		}
		return n.Product.Title
	}
	return ""
}

// nativeRequests memoises ParseNativeRequest for the bid path: an exchange
// sends the same few native request strings (one per placement template)
// again and again, and decoding one with encoding/json cost more than the
// rest of the native ad. The parsed requests are shared and only read.
var nativeRequests = memo.New[string, parsedNative](nativeSlots)

const (
	nativeSlots = 1024
	// maxMemoNative is the longest request string memoised (typical ones
	// are under 1 KB), which bounds the memo at a few MB whatever comes in.
	maxMemoNative = 4 << 10
)

type parsedNative struct {
	req         *nreq.Request
	wrapped, ok bool
}

// parseNative is ParseNativeRequest through m. The key kept is a copy: s
// borrows the request's bytes.
func parseNative(m *memo.Table[string, parsedNative], s string) (*nreq.Request, bool, bool) {
	if len(s) == 0 || len(s) > maxMemoNative {
		return ParseNativeRequest(s)
	}
	if e, ok := m.Get(s); ok {
		return e.req, e.wrapped, e.ok
	}
	req, wrapped, ok := ParseNativeRequest(s)
	m.Put(strings.Clone(s), parsedNative{req: req, wrapped: wrapped, ok: ok})
	return req, wrapped, ok
}

// closeJSONString ends the JSON string whose unquoted text was appended
// at dst[from:] after an opening quote: it appends the closing quote, or,
// when the text has a byte JSON must escape (or any non-ASCII byte),
// re-quotes it with AppendJSONString.
func closeJSONString(dst []byte, from int) []byte {
	for _, c := range dst[from:] {
		if c >= utf8.RuneSelf || !safeASCII[c] {
			text := string(dst[from:])
			return AppendJSONString(dst[:from-1], text)
		}
	}
	return append(dst, '"')
}
