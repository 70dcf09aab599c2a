package loadtest

import (
	"net/url"
	"strconv"
	"strings"
)

// Macros are the values an exchange substitutes for the OpenRTB 2.6
// substitution macros (section 4.4) in notice URLs and markup.
type Macros struct {
	AuctionID string     // ${AUCTION_ID}: BidRequest.id
	BidID     string     // ${AUCTION_BID_ID}: BidResponse.bidid, else Bid.id
	ImpID     string     // ${AUCTION_IMP_ID}: Imp.id
	SeatID    string     // ${AUCTION_SEAT_ID}: SeatBid.seat
	AdID      string     // ${AUCTION_AD_ID}: Bid.adid
	Currency  string     // ${AUCTION_CURRENCY}: BidResponse.cur, else USD
	Price     float64    // ${AUCTION_PRICE}: clearing price, CPM
	MinToWin  float64    // ${AUCTION_MIN_TO_WIN}: CPM
	Loss      LossReason // ${AUCTION_LOSS}
}

// value returns the substitution for macro name (without "${" and "}").
func (m *Macros) value(name string) (string, bool) {
	switch name {
	case "AUCTION_PRICE":
		return FormatCPM(m.Price), true
	case "AUCTION_ID":
		return m.AuctionID, true
	case "AUCTION_BID_ID":
		return m.BidID, true
	case "AUCTION_IMP_ID":
		return m.ImpID, true
	case "AUCTION_SEAT_ID":
		return m.SeatID, true
	case "AUCTION_AD_ID":
		return m.AdID, true
	case "AUCTION_CURRENCY":
		return m.Currency, true
	case "AUCTION_LOSS":
		return strconv.Itoa(int(m.Loss)), true
	case "AUCTION_MIN_TO_WIN":
		return FormatCPM(m.MinToWin), true
	}
	return "", false
}

// Expand substitutes the macros in s. Unknown macros (such as
// ${AUCTION_PRICE:B64} or a bidder's own) are left as they are. With
// escapeValues, values are query-escaped, as they must be inside URLs; markup
// gets them verbatim.
func (m *Macros) Expand(s string, escapeValues bool) string {
	i := strings.Index(s, "${")
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 32)
	for i >= 0 {
		b.WriteString(s[:i])
		s = s[i:]
		end := strings.IndexByte(s, '}')
		if end < 0 {
			break
		}
		if v, ok := m.value(s[2:end]); ok {
			if escapeValues {
				v = url.QueryEscape(v)
			}
			b.WriteString(v)
		} else {
			b.WriteString(s[:end+1])
		}
		s = s[end+1:]
		i = strings.Index(s, "${")
	}
	b.WriteString(s)
	return b.String()
}

// FormatCPM formats a price as the decimal an exchange puts into
// ${AUCTION_PRICE}: rounded to millionths, no exponent, no trailing zeros.
func FormatCPM(p float64) string {
	return strconv.FormatFloat(roundMicros(p), 'f', -1, 64)
}
