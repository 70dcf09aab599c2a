package creative

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/prebid/openrtb/v20/native1"
	nresp "github.com/prebid/openrtb/v20/native1/response"

	"github.com/chaser-dsp/chaser/memo"
)

// nativeReference is AppendNativeADM's semantics written with the
// native1/response types and encoding/json (how it was first built): the
// oracle for the hand-written JSON. Which value an asset shows is
// Native.dataValue in both.
func nativeReference(s *ClickSigner, n *Native) (string, bool) {
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
			if v := n.dataValue(a.Data.Type, nil); v != "" {
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

// TestAppendNativeADMMatchesReference renders native ads for requests and
// products with every kind of awkward value and checks that the JSON
// decodes to what the encoding/json version wrote.
func TestAppendNativeADMMatchesReference(t *testing.T) {
	s := NewClickSigner([]byte("native-secret-0123456789"))
	requests := []string{
		`{"ver":"1.2","assets":[{"id":1,"required":1,"title":{"len":10}},{"id":2,"img":{"type":3,"w":300,"h":250}},{"id":3,"data":{"type":6}}]}`,
		`{"native":{"ver":"1.1","assets":[{"id":1,"required":1,"title":{"len":90}},{"id":2,"img":{"type":3,"wmin":100,"hmin":80}}]}}`,
		`{"ver":"1.2","assets":[{"id":0,"title":{"len":0}},{"id":-7,"img":{"type":1}},{"id":9,"img":{"wmin":50}},{"id":4,"data":{"type":2}},{"id":5,"data":{"type":12,"len":3}},{"id":6,"data":{"type":1}},{"id":7,"data":{"type":3}},{"id":8,"data":{"type":10}},{"id":10,"data":{"type":7}}]}`,
		`{"ver":"1.2","assets":[{"id":1,"video":{"mimes":["video/mp4"]}},{"id":2,"data":{"type":6,"len":4}}]}`,
		`{"ver":"1.2","assets":[{"id":1,"required":1,"img":{"type":3}}]}`,
		`{"ver":"1.2","assets":[{"id":1,"required":1,"video":{"mimes":["video/mp4"]}}]}`,
		`{"ver":"1.2","assets":[{"id":1,"data":{"type":3}}]}`,
		`{"ver":"1.2","assets":[]}`,
		`{"ver":`,
		``,
		`{"native":"x","assets":[{"id":1,"title":{"len":5}}]}`,
	}
	products := append(testProducts(),
		&Product{ID: `sku "q" & <b>`, Title: "Schuh \"Größe\" 42 <b>&amp;</b>\u2028\x01", PriceMicros: 1_234_567, Currency: "EUR",
			ImageURL: "http://cdn.example/i.jpg?a=1&b=\"2\"", Brand: "Brand"},
		&Product{ID: "sku-bad", Title: "bad \xff utf-8 €€€€€", PriceMicros: 5, ImageURL: "https://cdn.example/ü.png"},
	)
	natives := []Native{
		{BaseURL: "https://bid.example", Advertiser: "a", Campaign: "c", Secure: true, ImpURL: "https://bid.example/notice/imp?t=abc&x=1"},
		{BaseURL: "http://bid.example", Advertiser: "adv 1", Campaign: "c/2", Sponsor: "Spons\"or", Offer: "10% off <today>"},
	}
	for ri, r := range requests {
		for pi, p := range products {
			for ni, n := range natives {
				n.Request, n.Product = r, p
				want, wantOK := nativeReference(s, &n)
				prefix := []byte("prefix")
				got, ok := s.AppendNativeADM(prefix, &n)
				if !strings.HasPrefix(string(got), "prefix") {
					t.Fatalf("req %d product %d native %d: prefix lost: %s", ri, pi, ni, got)
				}
				if ok != wantOK {
					t.Fatalf("req %d product %d native %d: ok %v, want %v", ri, pi, ni, ok, wantOK)
				}
				if !ok {
					if string(got) != "prefix" {
						t.Errorf("req %d product %d native %d: failed but appended %q", ri, pi, ni, got)
					}
					continue
				}
				if msg := sameJSON(got[len("prefix"):], want); msg != "" {
					t.Errorf("req %d product %d native %d: %s", ri, pi, ni, msg)
				}
			}
		}
	}
}

// sameJSON says how got, which must be valid JSON, differs from the JSON
// want once both are decoded ("" when they are the same value).
func sameJSON(got []byte, want string) string {
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Sprintf("invalid JSON %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		return fmt.Sprintf("reference %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		return fmt.Sprintf("\ngot  %s\nwant %s", got, want)
	}
	return ""
}

// TestNativeMemo checks that the memo answers like ParseNativeRequest
// when strings collide in a slot and when one comes back.
func TestNativeMemo(t *testing.T) {
	m := memo.New[string, parsedNative](nativeSlots) // 3 strings per slot: they collide
	for i := range 3 * nativeSlots {
		s := `{"ver":"1.2","assets":[{"id":` + strings.Repeat("1", 1+i%3) + `,"title":{"len":` + strconv.Itoa(i) + `}}]}`
		if i%5 == 0 {
			s = s[:len(s)-2] // malformed
		}
		for range 2 {
			req, wrapped, ok := parseNative(m, s)
			wreq, wwrapped, wok := ParseNativeRequest(s)
			if ok != wok || wrapped != wwrapped || !reflect.DeepEqual(req, wreq) {
				t.Fatalf("%s: memo %v %v %+v, parse %v %v %+v", s, ok, wrapped, req, wok, wwrapped, wreq)
			}
		}
	}
	s := `{"ver":"1.2","assets":[{"id":1,"title":{"len":5}}]}`
	a, _, _ := parseNative(m, s)
	b, _, _ := parseNative(m, strings.Clone(s))
	if a != b {
		t.Error("the same request string parsed twice")
	}
}

func BenchmarkAppendNativeADM(b *testing.B) {
	s := NewClickSigner([]byte("native-secret-0123456789"))
	n := Native{Request: `{"ver":"1.2","context":1,"plcmttype":1,"assets":[{"id":1,"required":1,"title":{"len":90}},{"id":2,"required":1,"img":{"type":3,"wmin":300,"hmin":250}},{"id":3,"data":{"type":6}},{"id":4,"data":{"type":12}}],"eventtrackers":[{"event":1,"methods":[1]}]}`,
		Product: testProducts()[0], Secure: true, BaseURL: "https://bid.example", Advertiser: "adv", Campaign: "cmp", ImpURL: "https://bid.example/notice/imp?t=abcdef"}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = s.AppendNativeADM(buf[:0], &n)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			nativeReference(s, &n)
		}
	})
}

// FuzzAppendNativeADM renders arbitrary native requests (outside input,
// from the exchange) with arbitrary product titles and brands: never a
// panic, always valid JSON, and the same ad as the encoding/json version.
func FuzzAppendNativeADM(f *testing.F) {
	f.Add(`{"ver":"1.2","assets":[{"id":1,"required":1,"title":{"len":10}},{"id":2,"img":{"type":3,"w":300,"h":250}},{"id":3,"data":{"type":6}}]}`, "Red Running Shoe", "Brand")
	f.Add(`{"native":{"ver":"1.1","assets":[{"id":1,"title":{"len":2}},{"id":2,"data":{"type":2,"len":1}}]}}`, "Schuh \"Größe\" <b>\u2028", "")
	f.Add(`{"ver":"1.2","assets":[{"id":1,"required":1,"video":{}}]}`, "x", "y")
	f.Add(`{"ver":"1.2","assets":[{"id":-1,"img":{"wmin":-5,"hmin":7}},{"id":9223372036854775807,"data":{"type":12}}]}`, "bad \xff", "\x00")
	f.Add(`{"assets":[{"id":1,"title":{"len":1}}],"assets":null}`, "t", "b")
	s := NewClickSigner([]byte("native-secret-0123456789"))
	f.Fuzz(func(t *testing.T, req, title, brand string) {
		p := &Product{ID: "sku-1", Title: title, Brand: brand, PriceMicros: 12_340_000, Currency: "EUR", ImageURL: "http://cdn.example/" + brand}
		n := Native{Request: req, Product: p, Sponsor: brand, Offer: title, Secure: len(title)%2 == 0,
			BaseURL: "https://bid.example", Advertiser: "adv", Campaign: "cmp", ImpURL: "https://bid.example/notice/imp?t=" + brand}
		want, wantOK := nativeReference(s, &n)
		got, ok := s.AppendNativeADM(nil, &n)
		if ok != wantOK {
			t.Fatalf("ok %v, encoding/json version %v", ok, wantOK)
		}
		if !ok {
			if len(got) != 0 {
				t.Fatalf("failed but wrote %q", got)
			}
			return
		}
		if msg := sameJSON(got, want); msg != "" {
			t.Fatal(msg)
		}
	})
}
