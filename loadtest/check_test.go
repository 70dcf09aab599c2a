package loadtest

import (
	"encoding/json"
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
