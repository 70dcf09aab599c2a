package loadtest

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prebid/openrtb/v20/openrtb2"
	"github.com/valyala/fasthttp"
)

// fakeBidder is a bidder on loopback with a fixed, checkable behaviour: it
// bids on every imp of a request whose user is known (buyeruid with the
// known prefix), at deterministic prices, and keeps count of everything it
// answered and every notice it received.
type fakeBidder struct {
	t      *testing.T
	URL    string
	srv    *fasthttp.Server
	done   chan error
	prefix string

	// competing and auction let the fake work out which of its bids must win
	// and what they must pay, independently of the code under test.
	competing float64
	auction   AuctionType

	// misbehave, when set, may spoil a response before it is sent; it may
	// also return an HTTP status to answer with instead.
	misbehave func(req *openrtb2.BidRequest, resp *openrtb2.BidResponse) (status int)
	// noVersion drops the x-openrtb-version header.
	noVersion bool
	// delay is how long the fake thinks before answering a bid request.
	delay time.Duration
	// noticeStatus, when set, is the status every notice is answered with.
	noticeStatus int

	mu sync.Mutex
	fakeCounts
}

// fakeCounts is what the fake saw; guarded by fakeBidder.mu.
type fakeCounts struct {
	requests     int
	gzipped      int
	ids          map[string]bool
	duplicateIDs int
	bidResponses int
	bids         map[string]*fakeBid // by bid id
	wantWins     int
	wantSpend    map[string]float64 // by campaign, currency units
	status       map[int]int        // answers by HTTP status
	// Notices received.
	winFirst, winDup, bills, losses, lateWins int
	unknownNotices                            int
	problems                                  []string
}

type fakeBid struct {
	auctionID, impID string
	price            float64
	wantWin          bool
	wantClearing     float64
	answered         time.Time
	wins             int
}

func startFake(t *testing.T, competing float64, auction AuctionType) *fakeBidder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBidder{
		t: t, URL: "http://" + ln.Addr().String(), prefix: "demo-user-",
		competing: competing, auction: auction,
		fakeCounts: fakeCounts{ids: map[string]bool{}, bids: map[string]*fakeBid{}, wantSpend: map[string]float64{}, status: map[int]int{}},
		done:       make(chan error, 1),
	}
	f.srv = &fasthttp.Server{Handler: f.handle}
	go func() { f.done <- f.srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := f.srv.Shutdown(); err != nil {
			t.Error(err)
		}
		_ = ln.Close()
		<-f.done
	})
	return f
}

func (f *fakeBidder) handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/openrtb2/bid":
		f.bid(ctx)
	case "/notice/win", "/notice/bill", "/notice/loss":
		f.notice(ctx)
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	}
}

func (f *fakeBidder) problem(format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func (f *fakeBidder) bid(ctx *fasthttp.RequestCtx) {
	time.Sleep(f.delay)
	if !f.noVersion {
		ctx.Response.Header.Set("x-openrtb-version", "2.6")
	}
	body, err := ctx.Request.BodyUncompressed()
	var req openrtb2.BidRequest
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if string(ctx.Request.Header.ContentEncoding()) == "gzip" {
		f.gzipped++
	}
	if err != nil {
		f.problem("undecodable request: %v", err)
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		return
	}
	if f.ids[req.ID] {
		f.duplicateIDs++
	}
	f.ids[req.ID] = true
	if req.User == nil || !strings.HasPrefix(req.User.BuyerUID, f.prefix) {
		f.status[204]++
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	resp := openrtb2.BidResponse{ID: req.ID, Cur: "USD", BidID: "resp-" + req.ID}
	seat := openrtb2.SeatBid{Seat: "chaser"}
	for k, imp := range req.Imp {
		// Imp "1" bids well above the floor, the others just above it: with
		// a competing price of 1.0 some of each win and lose.
		price := imp.BidFloor + 0.05
		if imp.ID == "1" {
			price = imp.BidFloor + 0.9
		}
		price = roundMicros(price)
		id := fmt.Sprintf("%s-b%d", req.ID, k)
		cid, mtype := "cmp_banner", openrtb2.MarkupBanner
		if imp.Native != nil {
			cid, mtype = "cmp_native", openrtb2.MarkupNative
		}
		q := "bid=" + id + "&auction=${AUCTION_ID}&imp=${AUCTION_IMP_ID}&seat=${AUCTION_SEAT_ID}&cur=${AUCTION_CURRENCY}&price=${AUCTION_PRICE}&mtw=${AUCTION_MIN_TO_WIN}&bidid=${AUCTION_BID_ID}"
		seat.Bid = append(seat.Bid, openrtb2.Bid{
			ID: id, ImpID: imp.ID, Price: price, CID: cid, CrID: "cr-1", MType: mtype,
			AdM:  `<div data-price="${AUCTION_PRICE}">ad</div>`,
			NURL: f.URL + "/notice/win?" + q, BURL: f.URL + "/notice/bill?" + q,
			LURL: f.URL + "/notice/loss?" + q + "&loss=${AUCTION_LOSS}",
		})
	}
	resp.SeatBid = []openrtb2.SeatBid{seat}
	status := fasthttp.StatusOK
	if f.misbehave != nil {
		if s := f.misbehave(&req, &resp); s != 0 {
			status = s
		}
	}
	f.status[status]++
	ctx.SetStatusCode(status)
	if status != fasthttp.StatusOK {
		return
	}
	if status == fasthttp.StatusOK && len(resp.SeatBid) > 0 && len(resp.SeatBid[0].Bid) > 0 {
		f.bidResponses++
	}
	// Work out the auction's result the simple way: one bid per imp.
	for _, b := range resp.SeatBid[0].Bid {
		fb := &fakeBid{auctionID: req.ID, impID: b.ImpID, price: b.Price, answered: time.Now()}
		var floor float64
		for _, imp := range req.Imp {
			if imp.ID == b.ImpID {
				floor = imp.BidFloor
			}
		}
		fb.wantWin = b.Price >= floor && b.Price > f.competing
		if fb.wantWin {
			fb.wantClearing = b.Price
			if f.auction == SecondPrice {
				fb.wantClearing = math.Min(b.Price, roundMicros(math.Max(floor, f.competing)+0.01))
			}
			f.wantWins++
			f.wantSpend[b.CID] += fb.wantClearing / 1000
		}
		f.bids[b.ID] = fb
	}
	out, err := json.Marshal(&resp)
	if err != nil {
		f.problem("encode response: %v", err)
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

func (f *fakeBidder) notice(ctx *fasthttp.RequestCtx) {
	if f.noticeStatus != 0 {
		ctx.SetStatusCode(f.noticeStatus)
	}
	args := ctx.QueryArgs()
	get := func(k string) string { return string(args.Peek(k)) }
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.Contains(string(ctx.URI().QueryString()), "${") {
		f.problem("unsubstituted macro in %s", ctx.URI())
	}
	b := f.bids[get("bid")]
	if b == nil {
		f.unknownNotices++
		return
	}
	if get("auction") != b.auctionID || get("imp") != b.impID || get("seat") != "chaser" || get("cur") != "USD" || get("bidid") != "resp-"+b.auctionID {
		f.problem("notice %s: wrong ids", ctx.URI())
	}
	price, err := strconv.ParseFloat(get("price"), 64)
	if err != nil {
		f.problem("notice %s: price: %v", ctx.URI(), err)
	}
	switch string(ctx.Path()) {
	case "/notice/win":
		if !b.wantWin {
			f.problem("win notice for a bid that should lose: %s", ctx.URI())
		}
		if math.Abs(price-b.wantClearing) > 1e-9 {
			f.problem("win notice price %v, want %v", price, b.wantClearing)
		}
		b.wins++
		if b.wins == 1 {
			f.winFirst++
			if time.Since(b.answered) >= time.Second {
				f.lateWins++
			}
		} else {
			f.winDup++
		}
	case "/notice/bill":
		if !b.wantWin || math.Abs(price-b.wantClearing) > 1e-9 {
			f.problem("bill notice %s: want win %v at %v", ctx.URI(), b.wantWin, b.wantClearing)
		}
		f.bills++
	case "/notice/loss":
		if b.wantWin {
			f.problem("loss notice for a bid that should win: %s", ctx.URI())
		}
		if get("loss") != "102" && get("loss") != "100" {
			f.problem("loss notice %s: unexpected reason", ctx.URI())
		}
		f.losses++
	}
}

// snapshot returns a copy of what the fake saw. Call it once the run is
// over: the maps are shared.
func (f *fakeBidder) snapshot() fakeCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.fakeCounts
	c.problems = append([]string(nil), f.problems...)
	return c
}
