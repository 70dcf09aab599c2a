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
// to the bidder under test, whose no-op baseline answers 204. For the same
// reason each worker decodes into one answer, again and again, whose
// strings point into the body it came from (decodeAnswer).
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

// Room a reused answer keeps between decodes: it starts with room for one
// seat of four bids (segmentio would allocate ten of each, all to be zeroed
// on every reset); a larger answer grows it, up to these bounds, beyond
// which the slice is dropped and decoded afresh.
const (
	firstSeats = 1
	firstBids  = 4
	keptSeats  = 4
	keptBids   = 16
)

// reset makes a as a fresh answer, except that it keeps the room of its
// seat and bid slices, zeroed, for the next decode. segmentio decodes into
// the elements a slice already has without zeroing them, so a reused
// element would otherwise keep the fields its new JSON lacks (a bid
// without nurl would fire the previous bid's). The whole capacity is
// zeroed, not just the length: a failed decode, or a key given twice, can
// leave written elements beyond it. The one difference from a fresh
// answer: an absent seatbid (or bid) leaves an empty slice, not nil.
func (a *answer) reset() {
	seats := a.SeatBid[:cap(a.SeatBid)]
	if len(seats) > keptSeats {
		seats = nil
	}
	if seats == nil {
		seats = make([]answerSeat, firstSeats)
	}
	for i := range seats {
		bids := seats[i].Bid[:cap(seats[i].Bid)]
		if len(bids) > keptBids {
			bids = nil
		}
		if bids == nil {
			bids = make([]answerBid, firstBids)
		}
		clear(bids)
		seats[i] = answerSeat{Bid: bids[:0]}
	}
	*a = answer{SeatBid: seats[:0]}
}

// decodeAnswer decodes body into a, which may hold an earlier answer: a
// ends as if it were fresh (see reset). It accepts what encoding/json
// accepts into openrtb2.BidResponse: a non-string adm is an error there
// too.
//
// The strings and raw JSON of a point into body where they can (no copy
// of kilobytes of markup per bid, no allocation per field), so a is only
// valid while body is unchanged: whatever outlives it must be copied.
func decodeAnswer(body []byte, a *answer) error {
	a.reset()
	rest, err := segjson.Parse(body, a, segjson.DontCopyString|segjson.DontCopyRawMessage)
	if err != nil || len(rest) != 0 {
		// Rare: decode again as Unmarshal does, for its verdict and its
		// exact error.
		a.reset()
		if err := segjson.Unmarshal(body, a); err != nil {
			return err
		}
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
