package bidder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prebid/openrtb/v20/openrtb2"
)

// TestNoticeOutcomes sends every kind of bad, repeated and good notice over
// the handler and checks the status, the metric outcome and that spend
// moves only for the one good win.
func TestNoticeOutcomes(t *testing.T) {
	f := newFixture(t)
	body, _ := os.ReadFile(filepath.Join("testdata", "requests", "site_banner.json"))
	bid := func(id string) openrtb2.Bid {
		t.Helper()
		req := strings.Replace(string(body), `"id":"site-banner-1"`, `"id":"`+id+`"`, 1)
		resp := f.do("POST", "/openrtb2/bid", "application/json", []byte(req), nil)
		var br openrtb2.BidResponse
		if err := json.Unmarshal(resp.Body(), &br); err != nil || len(br.SeatBid) == 0 {
			t.Fatalf("no bid (%d): %s", resp.StatusCode(), resp.Body())
		}
		return br.SeatBid[0].Bid[0]
	}
	b := bid("n-1")
	if !strings.Contains(b.NURL, "m=${AUCTION_MIN_TO_WIN}") || !strings.Contains(b.LURL, "m=${AUCTION_MIN_TO_WIN}") {
		t.Fatalf("notice URLs lack the min-to-win macro: %s %s", b.NURL, b.LURL)
	}
	path := func(u string, macros ...string) string {
		u = strings.TrimPrefix(u, "https://bid.example")
		return strings.NewReplacer(macros...).Replace(u)
	}
	win := func(price string) string {
		return path(b.NURL, "${AUCTION_PRICE}", price, "${AUCTION_MIN_TO_WIN}", "1.2")
	}
	tok := b.NURL[strings.Index(b.NURL, "t=")+2 : strings.Index(b.NURL, "&")]
	forged := strings.Replace(win("1.5"), "t="+tok, "t="+tok[:10]+"x"+tok[11:], 1)
	spend := func() int64 { _, total := f.deps.Pacer.Spend(&f.campaign); return total }
	cases := []struct {
		name, url, kind, outcome string
		status                   int
		spend                    int64
	}{
		{"missing token", "/notice/win?p=1.5", "win", "missing_token", 400, 0},
		{"forged token", forged, "win", "bad_token", 403, 0},
		{"unsubstituted price", path(b.NURL), "win", "bad_price", 400, 0},
		{"negative price", win("-1"), "win", "bad_price", 400, 0},
		{"price above bid", win("9.99"), "win", "price_above_bid", 400, 0},
		{"win", win("1.5"), "win", "ok", 204, 1500},
		{"loss with a forged token", strings.Replace(path(b.LURL), "t="+tok, "t=AAAA"+tok[4:], 1), "loss", "bad_token", 403, 1500},
		{"imp, forged", "/notice/imp?t=AAAA", "imp", "bad_token", 200, 1500},
		{"imp", path(b.AdM[strings.Index(b.AdM, "/notice/imp"):strings.Index(b.AdM, `'></div>`)]), "imp", "ok", 200, 1500},
		{"billing", path(b.BURL, "${AUCTION_PRICE}", "1.5"), "bill", "ok", 204, 1500},
	}
	for _, tc := range cases {
		before := noticeCount(tc.kind, tc.outcome).Get()
		resp := f.do("GET", tc.url, "", nil, nil)
		if resp.StatusCode() != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, resp.StatusCode(), tc.status, resp.Body())
		}
		if got := noticeCount(tc.kind, tc.outcome).Get() - before; got != 1 {
			t.Fatalf("%s: outcome %q counted %d times", tc.name, tc.outcome, got)
		}
		if spend() != tc.spend {
			t.Fatalf("%s: spend %d, want %d", tc.name, spend(), tc.spend)
		}
	}
	// The same win ten more times: ten duplicates, no spend.
	before := noticeCount("win", "duplicate").Get()
	for i := 0; i < 10; i++ {
		if resp := f.do("GET", win("1.5"), "", nil, nil); resp.StatusCode() != 204 {
			t.Fatalf("duplicate win: status %d", resp.StatusCode())
		}
	}
	if got := noticeCount("win", "duplicate").Get() - before; got != 10 || spend() != 1500 {
		t.Fatalf("10 duplicates: counted %d, spend %d", got, spend())
	}
	// A loss frees the reservation of another bid; a deleted campaign's
	// notices are refused.
	b2 := bid("n-2")
	if st := f.deps.Pacer.State(&f.campaign); st.ReservedMicros == 0 {
		t.Fatal("a bid reserved nothing")
	}
	if resp := f.do("GET", path(b2.LURL, "${AUCTION_LOSS}", "102", "${AUCTION_MIN_TO_WIN}", "2.1"), "", nil, nil); resp.StatusCode() != 204 {
		t.Fatalf("loss: %d", resp.StatusCode())
	}
	if st := f.deps.Pacer.State(&f.campaign); st.ReservedMicros != 0 {
		t.Fatalf("loss left %d reserved", st.ReservedMicros)
	}
	b3 := bid("n-3")
	if err := f.deps.Campaigns.Delete(f.campaign.ID); err != nil {
		t.Fatal(err)
	}
	before = noticeCount("win", "unknown_campaign").Get()
	if resp := f.do("GET", path(b3.NURL, "${AUCTION_PRICE}", "1"), "", nil, nil); resp.StatusCode() != 404 {
		t.Fatalf("win for a deleted campaign: %d", resp.StatusCode())
	}
	if noticeCount("win", "unknown_campaign").Get()-before != 1 {
		t.Fatal("unknown campaign not counted")
	}
}

// TestClickCountsInReport: a click on a signed link counts for the campaign.
func TestClickCountsInReport(t *testing.T) {
	f := newFixture(t)
	u := string(f.deps.Clicks.AppendClickURL(nil, "", f.campaign.AdvertiserID, f.campaign.ID, "sku-2"))
	for i := 0; i < 3; i++ {
		if resp := f.do("GET", u, "", nil, nil); resp.StatusCode() != 302 {
			t.Fatalf("click: %d", resp.StatusCode())
		}
	}
	f.do("GET", strings.Replace(u, "&s=", "&s=x", 1), "", nil, nil) // refused: not counted
	now := time.Now()
	rows, err := f.deps.Pacer.Report(f.campaign.ID, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, r := range rows {
		n += r.Clicks
	}
	if n != 3 {
		t.Fatalf("clicks in report %d, want 3", n)
	}
}
