package creative

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/prebid/openrtb/v20/native1"
	nreq "github.com/prebid/openrtb/v20/native1/request"
	nresp "github.com/prebid/openrtb/v20/native1/response"
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

// NativeADM renders the native response for n as the adm string. It fails
// (false) when the request is malformed or asks for a required asset this
// product cannot fill. Values are JSON-encoded, never spliced as text.
func (s *ClickSigner) NativeADM(n *Native) (string, bool) {
	req, wrapped, ok := ParseNativeRequest(n.Request)
	if !ok || n.Product == nil {
		return "", false
	}
	p := n.Product
	click := string(s.AppendClickURL(nil, n.BaseURL, n.Advertiser, n.Campaign, p.ID))
	resp := nresp.Response{Ver: "1.2", Link: nresp.Link{URL: click}}
	if n.ImpURL != "" {
		resp.ImpTrackers = []string{n.ImpURL}
		resp.EventTrackers = []nresp.EventTracker{{Event: native1.EventTypeImpression, Method: native1.EventTrackingMethodImage, URL: n.ImpURL}}
	}
	for _, a := range req.Assets {
		id := a.ID
		var out *nresp.Asset
		switch {
		case a.Title != nil:
			out = &nresp.Asset{ID: &id, Title: &nresp.Title{Text: truncate(p.Title, a.Title.Len)}}
		case a.Img != nil:
			if p.ImageURL != "" && (a.Img.Type == 0 || a.Img.Type == native1.ImageAssetTypeMain) {
				img := &nresp.Image{URL: string(appendAssetURL(nil, p.ImageURL, n.Secure))}
				if a.Img.W > 0 || a.Img.WMin > 0 {
					img.W, img.H = max(a.Img.W, a.Img.WMin), max(a.Img.H, a.Img.HMin)
				}
				out = &nresp.Asset{ID: &id, Img: img}
			}
		case a.Data != nil:
			var v string
			switch a.Data.Type {
			case native1.DataAssetTypePrice, native1.DataAssetTypeSalePrice:
				v = FormatPrice(p.PriceMicros, p.Currency)
			case native1.DataAssetTypeCTAText:
				v = "Shop now"
			case native1.DataAssetTypeSponsored:
				v = n.Sponsor
			case native1.DataAssetTypeDesc, native1.DataAssetTypeDesc2:
				v = n.Offer
				if v == "" {
					v = p.Title
				}
			}
			if v != "" {
				out = &nresp.Asset{ID: &id, Data: &nresp.Data{Value: truncate(v, a.Data.Len)}}
			}
		}
		if out == nil {
			if a.Required == 1 {
				return "", false
			}
			continue
		}
		resp.Assets = append(resp.Assets, *out)
	}
	if len(resp.Assets) == 0 {
		return "", false
	}
	var b []byte
	var err error
	if wrapped {
		b, err = json.Marshal(struct {
			Native *nresp.Response `json:"native"`
		}{&resp})
	} else {
		b, err = json.Marshal(&resp)
	}
	if err != nil {
		return "", false
	}
	return string(b), true
}
