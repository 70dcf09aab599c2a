package loadtest

import (
	"net/url"
	"strconv"

	"github.com/prebid/openrtb/v20/openrtb2"
)

// Violation names one way a response breaks the OpenRTB contract Chaser
// promises (DESIGN.md, "Public port"). Check mode fails the run on any.
type Violation string

// The violations check mode looks for.
const (
	VResponseID     Violation = "response id differs from the request id"
	VMissingCur     Violation = "response without cur"
	VWrongCur       Violation = "cur not among the request's currencies"
	VMissingBidID   Violation = "bid without id"
	VUnknownImp     Violation = "bid for an unknown imp id"
	VBadPrice       Violation = "bid price not positive"
	VBelowFloor     Violation = "bid price below the imp's floor"
	VMissingAdm     Violation = "bid without adm"
	VMissingMType   Violation = "bid without mtype"
	VWrongMType     Violation = "bid mtype not offered by the imp"
	VBadNoticeURL   Violation = "notice URL (nurl, burl, lurl) not an absolute http(s) URL"
	VMissingVersion Violation = "answer without x-openrtb-version header"
	VBadJSON        Violation = "200 answer that is not a BidResponse"
	VUnexpectedCode Violation = "HTTP status other than 200 or 204"
	requestCurrency           = "USD"
)

// bidEntry is one bid of a response as the exchange judges it.
type bidEntry struct {
	bid    *openrtb2.Bid // AdM empty: the markup is adm
	adm    []byte        // the bid's adm as raw JSON (answer.go)
	seat   string
	imp    int        // index into the request's imps; -1 when unknown
	reject LossReason // non-zero when the bid is kept out of the auction
}

// finding is one violation with its detail.
type finding struct {
	v      Violation
	detail string
}

// examine judges a decoded 200 answer to the request reqID that offered imps.
// It appends every bid to bids, marking the ones the exchange throws out
// before the auction, and every violation to found.
func examine(imps []ImpSpec, reqID string, resp *answer, bids []bidEntry, found []finding) ([]bidEntry, []finding) {
	where := "request " + reqID
	idOK := resp.ID == reqID
	if !idOK {
		found = append(found, finding{VResponseID, where + ": response id " + strconv.Quote(resp.ID)})
	}
	curOK := true
	switch resp.Cur {
	case "":
		found = append(found, finding{VMissingCur, where})
	case requestCurrency:
	default:
		curOK = false
		found = append(found, finding{VWrongCur, where + ": cur " + strconv.Quote(resp.Cur)})
	}
	for s := range resp.SeatBid {
		seat := &resp.SeatBid[s]
		for b := range seat.Bid {
			bid := &seat.Bid[b].Bid
			e := bidEntry{bid: bid, adm: seat.Bid[b].AdM, seat: seat.Seat, imp: -1}
			at := where + " imp " + strconv.Quote(bid.ImpID) + " bid " + strconv.Quote(bid.ID)
			for i := range imps {
				if imps[i].ID == bid.ImpID {
					e.imp = i
					break
				}
			}
			reject := func(v Violation, detail string, why LossReason) {
				found = append(found, finding{v, at + detail})
				if e.reject == 0 {
					e.reject = why
				}
			}
			if !idOK {
				e.reject = LossInvalidAuctionID
			}
			if !curOK {
				e.reject = LossInvalidResponse
			}
			if bid.ID == "" {
				reject(VMissingBidID, "", LossInvalidResponse)
			}
			if e.imp < 0 {
				reject(VUnknownImp, "", LossInvalidResponse)
			}
			if !hasMarkup(e.adm) {
				reject(VMissingAdm, "", LossMissingMarkup)
			}
			switch bid.MType {
			case 0:
				reject(VMissingMType, "", LossInvalidResponse)
			case openrtb2.MarkupBanner, openrtb2.MarkupNative:
				if e.imp >= 0 {
					imp := imps[e.imp]
					if bid.MType == openrtb2.MarkupBanner && !imp.Banner || bid.MType == openrtb2.MarkupNative && !imp.Native {
						reject(VWrongMType, ": mtype "+strconv.Itoa(int(bid.MType)), LossInvalidResponse)
					}
				}
			default:
				reject(VWrongMType, ": mtype "+strconv.Itoa(int(bid.MType)), LossInvalidResponse)
			}
			// Price problems are the auction's to settle (loss reason 100);
			// here they are only recorded.
			if !(bid.Price > 0) {
				found = append(found, finding{VBadPrice, at + ": price " + FormatCPM(bid.Price)})
			} else if e.imp >= 0 && bid.Price < imps[e.imp].Floor {
				found = append(found, finding{VBelowFloor, at + ": price " + FormatCPM(bid.Price) + " < floor " + FormatCPM(imps[e.imp].Floor)})
			}
			for _, u := range [...]string{bid.NURL, bid.BURL, bid.LURL} {
				if u != "" && !absoluteHTTP(u) {
					found = append(found, finding{VBadNoticeURL, at + ": " + strconv.Quote(u)})
				}
			}
			bids = append(bids, e)
		}
	}
	return bids, found
}

// absoluteHTTP reports whether u can be fired as a notice.
func absoluteHTTP(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}
