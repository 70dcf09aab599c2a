package loadtest

import (
	"errors"

	"github.com/prebid/openrtb/v20/openrtb2"
	segjson "github.com/segmentio/encoding/json"
)

// answer is a 200 bid response as the exchange reads it: every field of
// openrtb2.BidResponse decoded as encoding/json decodes it, except each
// bid's markup, which stays the raw JSON string it came as. An exchange
// passes adm on untouched; unquoting kilobytes of escaped HTML per bid
// (segmentio spent a fifth of the generator's CPU on it) would be charged
// to the bidder under test, whose no-op baseline answers 204.
type answer struct {
	openrtb2.BidResponse
	SeatBid []answerSeat `json:"seatbid,omitempty"`
}

type answerSeat struct {
	openrtb2.SeatBid
	Bid []answerBid `json:"bid"`
}

// answerBid is a bid whose adm is raw JSON (the field shadows the
// embedded Bid.AdM, which stays empty).
type answerBid struct {
	openrtb2.Bid
	AdM segjson.RawMessage `json:"adm,omitempty"`
}

var errAdmNotString = errors.New("adm is not a JSON string")

// decodeAnswer decodes body into a. It accepts what encoding/json accepts
// into openrtb2.BidResponse: a non-string adm is an error there too.
func decodeAnswer(body []byte, a *answer) error {
	if err := segjson.Unmarshal(body, a); err != nil {
		return err
	}
	for s := range a.SeatBid {
		for b := range a.SeatBid[s].Bid {
			if adm := a.SeatBid[s].Bid[b].AdM; len(adm) > 0 && adm[0] != '"' && string(adm) != "null" {
				return errAdmNotString
			}
		}
	}
	return nil
}

// hasMarkup reports whether raw, a bid's adm as raw JSON, is a non-empty string.
func hasMarkup(raw []byte) bool { return len(raw) > 2 && raw[0] == '"' }

// markupText unquotes raw, a bid's adm as raw JSON ("" if it is not a string).
func markupText(raw []byte) string {
	if !hasMarkup(raw) {
		return ""
	}
	var s string
	_ = segjson.Unmarshal(raw, &s) // decodeAnswer has checked the JSON
	return s
}
