package loadtest

import (
	"encoding/binary"
	"encoding/json"
	"net/url"
	"reflect"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"
)

func TestExamine(t *testing.T) {
	imps := []ImpSpec{{ID: "1", Floor: 0.5, Banner: true}, {ID: "2", Native: true}}
	good := func() openrtb2.Bid {
		return openrtb2.Bid{ID: "b1", ImpID: "1", Price: 1, AdM: "<div/>", MType: openrtb2.MarkupBanner,
			NURL: "http://127.0.0.1:1/notice/win?p=${AUCTION_PRICE}"}
	}
	tests := []struct {
		name       string
		respID     string
		cur        string
		bid        func(*openrtb2.Bid)
		want       []Violation
		wantReject LossReason
		wantImp    int
	}{
		{name: "valid", bid: func(*openrtb2.Bid) {}},
		{name: "valid native", bid: func(b *openrtb2.Bid) { b.ImpID, b.MType = "2", openrtb2.MarkupNative }, wantImp: 1},
		{name: "wrong response id", respID: "other", bid: func(*openrtb2.Bid) {}, want: []Violation{VResponseID}, wantReject: LossInvalidAuctionID},
		{name: "missing cur", cur: "-", bid: func(*openrtb2.Bid) {}, want: []Violation{VMissingCur}},
		{name: "wrong cur", cur: "KRW", bid: func(*openrtb2.Bid) {}, want: []Violation{VWrongCur}, wantReject: LossInvalidResponse},
		{name: "unknown imp", bid: func(b *openrtb2.Bid) { b.ImpID = "9" }, want: []Violation{VUnknownImp}, wantReject: LossInvalidResponse, wantImp: -1},
		{name: "no bid id", bid: func(b *openrtb2.Bid) { b.ID = "" }, want: []Violation{VMissingBidID}, wantReject: LossInvalidResponse},
		{name: "below floor", bid: func(b *openrtb2.Bid) { b.Price = 0.4 }, want: []Violation{VBelowFloor}},
		{name: "zero price", bid: func(b *openrtb2.Bid) { b.Price = 0 }, want: []Violation{VBadPrice}},
		{name: "no adm", bid: func(b *openrtb2.Bid) { b.AdM = "" }, want: []Violation{VMissingAdm}, wantReject: LossMissingMarkup},
		{name: "no mtype", bid: func(b *openrtb2.Bid) { b.MType = 0 }, want: []Violation{VMissingMType}, wantReject: LossInvalidResponse},
		{name: "native mtype for banner imp", bid: func(b *openrtb2.Bid) { b.MType = openrtb2.MarkupNative }, want: []Violation{VWrongMType}, wantReject: LossInvalidResponse},
		{name: "video mtype", bid: func(b *openrtb2.Bid) { b.MType = openrtb2.MarkupVideo }, want: []Violation{VWrongMType}, wantReject: LossInvalidResponse},
		{name: "relative nurl", bid: func(b *openrtb2.Bid) { b.NURL = "/notice/win" }, want: []Violation{VBadNoticeURL}},
		{name: "several at once", bid: func(b *openrtb2.Bid) { b.AdM, b.MType, b.Price = "", 0, 0.1 },
			want: []Violation{VMissingAdm, VMissingMType, VBelowFloor}, wantReject: LossMissingMarkup},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := good()
			tc.bid(&b)
			resp := &openrtb2.BidResponse{ID: "req-1", Cur: "USD", SeatBid: []openrtb2.SeatBid{{Seat: "s", Bid: []openrtb2.Bid{b}}}}
			if tc.respID != "" {
				resp.ID = tc.respID
			}
			switch tc.cur {
			case "-":
				resp.Cur = ""
			case "":
			default:
				resp.Cur = tc.cur
			}
			body, err := json.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			var a answer
			if err := decodeAnswer(body, &a); err != nil {
				t.Fatal(err)
			}
			bids, found := examine(imps, "req-1", &a, nil, nil)
			var got []Violation
			for _, f := range found {
				got = append(got, f.v)
				if f.detail == "" {
					t.Errorf("%s without detail", f.v)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("violations %q, want %q", got, tc.want)
			}
			if len(bids) != 1 || bids[0].reject != tc.wantReject || bids[0].imp != tc.wantImp || bids[0].seat != "s" {
				t.Errorf("bids %+v, want reject %d imp %d", bids, tc.wantReject, tc.wantImp)
			}
		})
	}
}

// parsedHTTP is absoluteHTTP without its fast path: url.Parse's answer.
func parsedHTTP(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// FuzzAbsoluteHTTP checks absoluteHTTP, whose fast path skips url.Parse,
// against url.Parse. The seeds run as a test.
func FuzzAbsoluteHTTP(f *testing.F) {
	const tok = "R9xUDJTOtwSiOHXBEnPha7C4qHrthN6RHyEzVoEV8lSdz5ehhPMmI9EacxJM65mlcJsINyHoeKFtePWWcYunsqEocf7iEPuGGSkerqGUWBy9JTHksjdZ0iX2"
	seeds := []string{
		// Chaser's notice URLs, before and after macro expansion.
		"http://127.0.0.1:28080/notice/win?t=" + tok + "&p=${AUCTION_PRICE}&m=${AUCTION_MIN_TO_WIN}",
		"http://127.0.0.1:28080/notice/bill?t=" + tok + "&p=${AUCTION_PRICE}",
		"http://127.0.0.1:28080/notice/loss?t=" + tok + "&r=${AUCTION_LOSS}&m=${AUCTION_MIN_TO_WIN}",
		"https://bid.example.com/notice/win?t=" + tok + "&p=2.375&m=1.5",
		"http://127.0.0.1:1/notice/win?p=${AUCTION_PRICE}",
		"http://bid.example.com/notice/loss?t=x&r=102&m=1.01#frag",
		// Hosts and ports.
		"http://h", "https://h/", "http://h:", "http://h:80", "http://h:8a/", "http://h:80:81/",
		"http://h::80/", "http://:80/", "http://a.b-c_d~e/x", "http://xn--bcher-kva.example/",
		"http://b\u00fccher.example/", "http://h%41/", "http://h%2541/", "http://h%c3%bc/",
		"http://h<x>/", "http://h x/", "http://h!$&'()*+,;=/", "http://h\"/",
		// IPv6 and IP literals.
		"http://[::1]/", "http://[::1]:8080/win", "http://[fe80::1%25en0]/", "http://[fe80::1%en0]/",
		"http://[127.0.0.1]/", "http://[::ffff:127.0.0.1]/", "http://[::1/", "http://::1/",
		"http://x[::1]/", "http://[::1]x/", "http://[::1]:8x/",
		// Userinfo.
		"http://user@h/", "http://user:pass@h/", "http://us%20er@h/", "http://us%zzer@h/",
		"http://u@s@h/", "http://u s@h/", "http://@h/", "http://user@/x", "http://u:p@[::1]:1/",
		// Empty hosts and other schemes.
		"http:///x", "http://", "https://", "http:", "http:x", "http:/x", "http:?x", "//h/x",
		"/notice/win", "h/notice/win", "ftp://h/", "mailto:a@h", "HTTP://h/", "Https://h/",
		"hTTp://h/", "http+x://h/", "1http://h/", "://h/", "", "*", "http://h\\x/",
		// Escapes.
		"http://h/a%20b", "http://h/a%2", "http://h/a%", "http://h/a%zz", "http://h/a%2g",
		"http://h/?q=%", "http://h/?q=%zz", "http://h/#%", "http://h/#%41", "http://h/#a%zz",
		"http://h/a%?x", "http://h/a%4?x", "http://h/a%4#x", "http://h%/", "http://h/%C3%BC",
		// Control bytes, spaces, non-ASCII.
		"http://h/a b", "http://h/a\tb", "http://h/a\x7fb", "http://h/\x00", "http://h/?\n",
		"http://h/#\n", "http://h/#\x7f", "http://h\n/", " http://h/", "http://h/ ",
		"http://h/\u00e9", "http://h/\xff", "http://h?\u00e9", "http://\xff/",
		// Delimiters in odd places.
		"http://h?x/y", "http://h#x/y", "http://h?", "http://h#", "http://h/?", "http://h/??",
		"http://h:80?x", "http://h:80#x", "http://h@?x", "http://h/@x", "http://h/:x",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		want := parsedHTTP(u)
		if plainHTTP(u) && !want {
			t.Errorf("plainHTTP(%q) = true, url.Parse says not an absolute http(s) URL", u)
		}
		if got := absoluteHTTP(u); got != want {
			t.Errorf("absoluteHTTP(%q) = %v, url.Parse says %v", u, got, want)
		}
	})
}

func BenchmarkAbsoluteHTTP(b *testing.B) {
	const tok = "R9xUDJTOtwSiOHXBEnPha7C4qHrthN6RHyEzVoEV8lSdz5ehhPMmI9EacxJM65mlcJsINyHoeKFtePWWcYunsqEocf7iEPuGGSkerqGUWBy9JTHksjdZ0iX2"
	u := "http://127.0.0.1:28080/notice/win?t=" + tok + "&p=${AUCTION_PRICE}&m=${AUCTION_MIN_TO_WIN}"
	for _, bc := range []struct {
		name string
		f    func(string) bool
	}{{"absoluteHTTP", absoluteHTTP}, {"url.Parse", parsedHTTP}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !bc.f(u) {
					b.Fatal(u)
				}
			}
		})
	}
}

// TestSpecial checks the word-at-a-time test of plainHTTP against the byte
// at a time one: every byte value at every position among other bytes.
func TestSpecial(t *testing.T) {
	isSpecial := func(c byte) bool { return c < ' ' || c == 0x7f || c == '%' }
	for _, fill := range []byte{'a', ' ', '!', '$', '&', '$' + 1, '%' + 1, '%' - 1, 0x7e, 0x80, 0xa5, 0xff} {
		for pos := range 8 {
			for c := range 256 {
				var w [8]byte
				for i := range w {
					w[i] = fill
				}
				w[pos] = byte(c)
				want := false
				for _, b := range w {
					want = want || isSpecial(b)
				}
				if got := special(binary.LittleEndian.Uint64(w[:])); got != want {
					t.Errorf("special(%q) = %v", w, got)
				}
			}
		}
	}
}
