package loadtest

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"
)

// TestDecodeAnswer checks decodeAnswer against encoding/json decoding into
// openrtb2.BidResponse: the same answers are errors, and the same fields
// come out, the markup unquoted on demand.
func TestDecodeAnswer(t *testing.T) {
	bodies := []string{
		`{"id":"r1","cur":"USD","seatbid":[{"seat":"chaser","bid":[{"id":"b1","impid":"1","price":1.25,"adm":"<a href=\"https://x.test/c?u=1&amp;p=2\">\u00e9 \ud83d\ude00</a>","mtype":1,"nurl":"http://h/w?p=${AUCTION_PRICE}","cid":"c1","crid":"cr","adomain":["shop.test"],"w":300,"h":250,"ext":{"k":1}}]}]}`,
		`{"id":"r2","seatbid":[{"bid":[{"id":"b1","impid":"1","price":1,"adm":"","mtype":4},{"id":"b2","impid":"2","price":2,"adm":null}]}],"bidid":"x","nbr":0}`,
		`{"id":"r3","seatbid":[{"bid":[{"id":"b1","impid":"1","price":1,"mtype":2}]}]}`,
		`{"id":"r4","seatbid":[{"bid":[{"id":"b1","adm":"{\"native\":{\"ver\":\"1.2\",\"assets\":[{\"id\":1,\"title\":{\"text\":\"T\"}}]}}"}]},{"seat":"s2","bid":[]}]}`,
		`{"id":"r5","seatbid":null}`,
		`{"id":"r6","adm":"stray top-level"}`,
		`{"id":"r7","seatbid":[{"bid":[{"id":"b1","adm":"invalid \xff utf-8"}]}]}`,
		`{"id":"r8","seatbid":[{"bid":[{"id":"b1","adm":12}]}]}`,
		`{"id":"r9","seatbid":[{"bid":[{"id":"b1","adm":{"html":"x"}}]}]}`,
		`{"id":"r10","seatbid":[{"bid":[{"id":"b1","adm":["x"]}]}]}`,
		`{"id":"r11","seatbid":[{"bid":[{"id":"b1","price":"1"}]}]}`,
		`{"id":"r12","seatbid":[{"bid":[{"id":"b1","adm":"x"}]}]`,
		`{"id":"r13","seatbid":{"bid":[]}}`,
		`[]`,
		``,
	}
	for _, body := range bodies {
		var want openrtb2.BidResponse
		wantErr := json.Unmarshal([]byte(body), &want)
		var a answer
		err := decodeAnswer([]byte(body), &a)
		if (err != nil) != (wantErr != nil) {
			t.Errorf("%s: error %v, encoding/json %v", body, err, wantErr)
			continue
		}
		if err != nil {
			continue
		}
		got := a.BidResponse
		got.SeatBid = nil
		if a.SeatBid != nil {
			got.SeatBid = make([]openrtb2.SeatBid, len(a.SeatBid))
		}
		for s, seat := range a.SeatBid {
			got.SeatBid[s] = seat.SeatBid
			got.SeatBid[s].Bid = nil
			if seat.Bid != nil {
				got.SeatBid[s].Bid = make([]openrtb2.Bid, len(seat.Bid))
			}
			for b, bid := range seat.Bid {
				if bid.Bid.AdM != "" {
					t.Errorf("%s: embedded AdM %q set", body, bid.Bid.AdM)
				}
				if hasMarkup(bid.AdM) != (want.SeatBid[s].Bid[b].AdM != "") {
					t.Errorf("%s: hasMarkup(%s) disagrees with %q", body, bid.AdM, want.SeatBid[s].Bid[b].AdM)
				}
				got.SeatBid[s].Bid[b] = bid.Bid
				got.SeatBid[s].Bid[b].AdM = markupText(bid.AdM)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", body, got, want)
		}
	}
}

func BenchmarkDecodeAnswer(b *testing.B) {
	adm := `<div class="chaser"><a href="https://bid.example.com/click?c=cmp_1&p=SKU-1&sig=abcdef0123456789"><img src="https://cdn.example.com/img/sku-1.jpg" width="300" height="250" alt="A product"></a><img src="https://bid.example.com/px?x=1" width="1" height="1" style="display:none"></div>`
	for len(adm) < 3000 {
		adm += adm
	}
	resp := openrtb2.BidResponse{ID: "r", Cur: "USD", SeatBid: []openrtb2.SeatBid{{Seat: "chaser", Bid: []openrtb2.Bid{{
		ID: "b", ImpID: "1", Price: 1.5, AdM: adm, MType: 1, NURL: "https://bid.example.com/win?p=${AUCTION_PRICE}", CID: "c", CrID: "cr", ADomain: []string{"shop.test"},
	}}}}}
	body, err := json.Marshal(resp)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var a answer
		if err := decodeAnswer(body, &a); err != nil {
			b.Fatal(err)
		}
	}
}
