package loadtest

import "testing"

func TestExpandMacros(t *testing.T) {
	m := Macros{
		AuctionID: "a1b2c3d4-000000000000042", BidID: "bid 7", ImpID: "2", SeatID: "chaser",
		AdID: "ad-9", Currency: "USD", Price: 1.2345, MinToWin: 0.87, Loss: LossOutbid,
	}
	tests := []struct {
		name   string
		in     string
		escape bool
		want   string
	}{
		{"no macros", "http://h/notice/win?x=1", true, "http://h/notice/win?x=1"},
		{"price", "p=${AUCTION_PRICE}", true, "p=1.2345"},
		{"every macro", "${AUCTION_ID}|${AUCTION_BID_ID}|${AUCTION_IMP_ID}|${AUCTION_SEAT_ID}|${AUCTION_AD_ID}|${AUCTION_CURRENCY}|${AUCTION_PRICE}|${AUCTION_LOSS}|${AUCTION_MIN_TO_WIN}",
			false, "a1b2c3d4-000000000000042|bid 7|2|chaser|ad-9|USD|1.2345|102|0.87"},
		{"values escaped in URLs", "http://h/w?b=${AUCTION_BID_ID}", true, "http://h/w?b=bid+7"},
		{"values verbatim in markup", "<i>${AUCTION_BID_ID}</i>", false, "<i>bid 7</i>"},
		{"repeated", "${AUCTION_IMP_ID}${AUCTION_IMP_ID}", true, "22"},
		{"unknown macro kept", "a=${AUCTION_PRICE:B64}&b=${CLICK_URL}&c=${AUCTION_IMP_ID}", true, "a=${AUCTION_PRICE:B64}&b=${CLICK_URL}&c=2"},
		{"unterminated kept", "p=${AUCTION_PRICE", true, "p=${AUCTION_PRICE"},
		{"dollar alone", "cost $5 ${AUCTION_CURRENCY}", false, "cost $5 USD"},
		{"empty", "", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.Expand(tc.in, tc.escape); got != tc.want {
				t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestFormatCPM(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{2, "2"},
		{1.5, "1.5"},
		{0.01, "0.01"},
		{1.0000004, "1"},
		{1.0000006, "1.000001"},
		{0.000001, "0.000001"},
		{1e-7, "0"},
		{12345.678901, "12345.678901"},
		{0, "0"},
	}
	for _, tc := range tests {
		if got := FormatCPM(tc.in); got != tc.want {
			t.Errorf("FormatCPM(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
