package loadtest

import (
	"net/url"
	"strconv"
	"strings"

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
// before the auction, and every violation to found. Details are built only
// for violations: judging a valid answer builds no strings.
func examine(imps []ImpSpec, reqID string, resp *answer, bids []bidEntry, found []finding) ([]bidEntry, []finding) {
	const where = "request "
	idOK := resp.ID == reqID
	if !idOK {
		found = append(found, finding{VResponseID, where + reqID + ": response id " + strconv.Quote(resp.ID)})
	}
	curOK := true
	switch resp.Cur {
	case "":
		found = append(found, finding{VMissingCur, where + reqID})
	case requestCurrency:
	default:
		curOK = false
		found = append(found, finding{VWrongCur, where + reqID + ": cur " + strconv.Quote(resp.Cur)})
	}
	for s := range resp.SeatBid {
		seat := &resp.SeatBid[s]
		for b := range seat.Bid {
			bid := &seat.Bid[b].Bid
			e := bidEntry{bid: bid, adm: seat.Bid[b].AdM, seat: seat.Seat, imp: -1}
			at := func() string {
				return where + reqID + " imp " + strconv.Quote(bid.ImpID) + " bid " + strconv.Quote(bid.ID)
			}
			for i := range imps {
				if imps[i].ID == bid.ImpID {
					e.imp = i
					break
				}
			}
			reject := func(v Violation, detail string, why LossReason) {
				found = append(found, finding{v, at() + detail})
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
				found = append(found, finding{VBadPrice, at() + ": price " + FormatCPM(bid.Price)})
			} else if e.imp >= 0 && bid.Price < imps[e.imp].Floor {
				found = append(found, finding{VBelowFloor, at() + ": price " + FormatCPM(bid.Price) + " < floor " + FormatCPM(imps[e.imp].Floor)})
			}
			for _, u := range [...]string{bid.NURL, bid.BURL, bid.LURL} {
				if u != "" && !absoluteHTTP(u) {
					found = append(found, finding{VBadNoticeURL, at() + ": " + strconv.Quote(u)})
				}
			}
			bids = append(bids, e)
		}
	}
	return bids, found
}

// absoluteHTTP reports whether u can be fired as a notice: url.Parse
// accepts it, with scheme http or https and a host. Every bid has up to
// three notice URLs, and url.Parse (~250 ns and an allocation each) was
// most of examine's time, so the usual URL is recognised by one pass over
// it (plainHTTP); anything else goes to url.Parse (FuzzAbsoluteHTTP checks
// that the answer is the same).
func absoluteHTTP(u string) bool {
	if plainHTTP(u) {
		return true
	}
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// plainHTTP reports whether u is an http(s) URL that url.Parse surely
// accepts with that scheme and a host: a lower-case "http://" or
// "https://", then a host of letters, digits and "-._~" with an optional
// ":port" of digits, ending at the first '/', '?' or '#' (or the end),
// and then no control byte and no '%' without two hex digits after it.
// false means "ask url.Parse", not "invalid".
func plainHTTP(u string) bool {
	var rest string
	switch {
	case strings.HasPrefix(u, "http://"):
		rest = u[len("http://"):]
	case strings.HasPrefix(u, "https://"):
		rest = u[len("https://"):]
	default:
		return false
	}
	// The authority: url.Parse cuts the fragment, then the query, then
	// takes the authority up to the first '/'.
	i, port := 0, false
authority:
	for ; i < len(rest); i++ {
		switch c := rest[i]; {
		case c == '/' || c == '?' || c == '#':
			break authority
		case '0' <= c && c <= '9':
		case port:
			return false // a second ':' or a non-digit in the port
		case c == ':':
			if i == 0 {
				return false // no host name
			}
			port = true
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '.' || c == '_' || c == '~':
		default:
			return false // userinfo, IP literal, escapes: url.Parse's call
		}
	}
	if i == 0 {
		return false // no host
	}
	// Path, query and fragment: url.Parse rejects a control byte before the
	// fragment and a bad escape in the path or fragment; refusing both
	// anywhere is stricter, never looser. Eight bytes at a time while none
	// is a control byte, DEL or '%'.
	j := i
	for ; j+8 <= len(rest); j += 8 {
		w := rest[j : j+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		if special(x) {
			break
		}
	}
	for ; j < len(rest); j++ {
		switch c := rest[j]; {
		case c < ' ' || c == 0x7f:
			return false
		case c == '%':
			if j+2 >= len(rest) || !isHex(rest[j+1]) || !isHex(rest[j+2]) {
				return false
			}
		}
	}
	return true
}

// special reports whether a byte of x, eight bytes of a URL, is a control
// byte, DEL or '%'. Word-at-a-time tests ("Bit Twiddling Hacks": a byte
// less than n; a zero byte of x^c for a byte equal to c): exact as to
// whether some byte matches, not as to which.
func special(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	del, pct := x^(ones*0x7f), x^(ones*'%')
	return ((x-ones*' ')&^x|(del-ones)&^del|(pct-ones)&^pct)&highs != 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
