package bidder

import (
	"bytes"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prebid/openrtb/v20/openrtb2"
	"github.com/valyala/fasthttp"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/creative"
	"github.com/chaser-dsp/chaser/pacing"
)

var (
	bidsTotal   = metrics.NewCounter(`chaser_bid_requests_total{outcome="bid"}`)
	noBidsTotal = metrics.NewCounter(`chaser_bid_requests_total{outcome="nobid"}`)
	badTotal    = metrics.NewCounter(`chaser_bid_requests_total{outcome="bad_request"}`)
	bidsPlaced  = metrics.NewCounter(`chaser_bids_total`)
	bidLatency  = metrics.NewHistogram(`chaser_bid_duration_seconds`)
)

// bidBad counts a malformed bid request by reason.
func bidBad(reason string) *metrics.Counter { return badCounters.get(reason) }

// noBid counts a no-bid by reason.
func noBid(reason string) *metrics.Counter { return noBidCounters.get(reason) }

var (
	badCounters   = counterSet{name: "chaser_bid_bad_requests_total"}
	noBidCounters = counterSet{name: "chaser_nobid_total"}
)

// counterSet is a metric family by reason, read without locks or
// allocation on the bid path: a copy-on-write map swapped when a reason is
// first seen (reasons are a small fixed set).
type counterSet struct {
	name string
	m    atomic.Pointer[map[string]*metrics.Counter]
	mu   sync.Mutex
}

func (cs *counterSet) get(reason string) *metrics.Counter {
	if m := cs.m.Load(); m != nil {
		if c, ok := (*m)[reason]; ok {
			return c
		}
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	old := cs.m.Load()
	if old != nil {
		if c, ok := (*old)[reason]; ok {
			return c
		}
	}
	next := make(map[string]*metrics.Counter, 16)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	c := metrics.GetOrCreateCounter(cs.name + `{reason="` + reason + `"}`)
	next[reason] = c
	cs.m.Store(&next)
	return c
}

// No-bid reasons (metric label values).
const (
	reasonNoUser      = "no_user_id"
	reasonUnknownUser = "unknown_user"
	reasonNoCampaign  = "no_matching_campaign"
	reasonNoImpFit    = "no_imp_fit"
	reasonBudget      = "budget"
	reasonNoProduct   = "no_product"
)

// badRequest answers 400 with a reason and counts it.
func badRequest(ctx *fasthttp.RequestCtx, reason, msg string) {
	badTotal.Inc()
	bidBad(reason).Inc()
	setVersion(ctx)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(fasthttp.StatusBadRequest)
	ctx.SetBodyString(msg + "\n")
}

// setVersion adds the x-openrtb-version header every bid answer carries,
// with the key already in fasthttp's canonical form: Header.Set would
// normalise it again on each of the tens of thousands of answers a second
// (a fifth of a microsecond in the server's profile).
func setVersion(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetCanonical(versionKey, versionValue)
}

var versionKey, versionValue = []byte("X-Openrtb-Version"), []byte("2.6")

func noContent(ctx *fasthttp.RequestCtx, reason string) {
	noBidsTotal.Inc()
	noBid(reason).Inc()
	setVersion(ctx)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// handleBid answers POST /openrtb2/bid. It is split in three so that each
// part's defers are open-coded (the compiler does that only for a function
// with few defers times returns; otherwise each defer costs a runtime call).
func (s *Server) handleBid(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	defer bidLatency.UpdateDuration(start)
	body, g, ok := readBidBody(ctx)
	if !ok {
		return
	}
	if g != nil {
		defer g.release() // after st.release: the decoded request borrows body
	}
	if !s.lim.enter() {
		noContent(ctx, reasonOverload)
		return
	}
	defer s.lim.leave()
	s.answerBid(ctx, body, start)
}

// readBidBody checks a bid request's method and headers and returns its body,
// inflated by g if it came gzipped (g is nil otherwise; the caller releases
// it when done with body). Refused requests are answered here.
func readBidBody(ctx *fasthttp.RequestCtx) (body []byte, g *gunzipper, ok bool) {
	if !ctx.IsPost() {
		badRequest(ctx, "method", "bid requests must be POSTed")
		return nil, nil, false
	}
	if ct := ctx.Request.Header.ContentType(); len(ct) > 0 && !isJSONType(ct) {
		badRequest(ctx, "content_type", "content type must be application/json")
		return nil, nil, false
	}
	body = ctx.Request.Body()
	if enc := ctx.Request.Header.ContentEncoding(); len(enc) > 0 {
		if !bytes.EqualFold(enc, []byte("gzip")) {
			badRequest(ctx, "content_encoding", "only gzip content encoding is accepted")
			return nil, nil, false
		}
		g = gunzippers.Get().(*gunzipper)
		var err error
		if body, err = g.gunzip(body, MaxBodyBytes); err != nil {
			g.release()
			badRequest(ctx, "gzip", "body is not valid gzip or inflates beyond 1 MiB")
			return nil, nil, false
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if g != nil {
			g.release()
		}
		badRequest(ctx, "empty_body", "empty body")
		return nil, nil, false
	}
	return body, g, true
}

// answerBid decodes body, decides and writes the answer.
func (s *Server) answerBid(ctx *fasthttp.RequestCtx, body []byte, start time.Time) {
	st := getBidState()
	defer st.release()
	req := &st.req
	if err := decodeRequest(body, st); err != nil {
		badRequest(ctx, "bad_json", "malformed bid request JSON")
		return
	}
	if reason, msg := validate(req); reason != "" {
		badRequest(ctx, reason, msg)
		return
	}
	if late(req, start, time.Now()) {
		noContent(ctx, reasonLate)
		return
	}
	resp, reason := s.decideFor(req, bidExchange(ctx.Path()), &st.ans)
	if resp == nil {
		noContent(ctx, reason)
		return
	}
	st.out = appendResponse(st.out[:0], resp)
	bidsTotal.Inc()
	setVersion(ctx)
	ctx.SetContentType("application/json")
	ctx.SetBody(st.out)
}

func isJSONType(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	for _, t := range jsonTypes {
		if bytes.EqualFold(ct, t) {
			return true
		}
	}
	return false
}

var jsonTypes = [][]byte{[]byte("application/json"), []byte("text/json"), []byte("text/plain"), []byte("application/x-openrtb")}

// validate checks what OpenRTB requires of a request we can answer.
func validate(req *openrtb2.BidRequest) (reason, msg string) {
	if req.ID == "" {
		return "missing_id", "request id is required"
	}
	if len(req.ID) > 256 {
		return "bad_id", "request id longer than 256 bytes"
	}
	if len(req.Imp) == 0 {
		return "no_imps", "at least one imp is required"
	}
	if len(req.Imp) > MaxImps {
		return "too_many_imps", "more than 32 imps (MaxImps)"
	}
	for i := range req.Imp {
		id := req.Imp[i].ID
		if id == "" {
			return "missing_imp_id", "imp.id is required"
		}
		for j := 0; j < i; j++ {
			if req.Imp[j].ID == id {
				return "duplicate_imp_id", "imp ids must be unique"
			}
		}
		if f := req.Imp[i].BidFloor; f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return "bad_floor", "imp.bidfloor must be a non-negative number"
		}
	}
	return "", ""
}

// userIDs collects the pseudonyms of the request's user ids.
func (s *Server) userIDs(req *openrtb2.BidRequest, dst []audience.Pseudonym) []audience.Pseudonym {
	pz := s.d.Audiences.Pseudonymizer()
	if u := req.User; u != nil {
		if u.BuyerUID != "" {
			if p, err := pz.Raw(audience.IDUID, u.BuyerUID, ""); err == nil {
				dst = append(dst, p)
			}
		}
		n := 0
		var buf [audience.MaxIDLen]byte
		for _, e := range u.EIDs {
			for _, id := range e.UIDs {
				if n >= MaxEIDs {
					break
				}
				n++
				b := append(append(append(buf[:0], e.Source...), ':'), id.ID...)
				if p, _, err := pz.RawKind(audience.IDEID, b, ""); err == nil {
					dst = append(dst, p)
				}
			}
		}
	}
	if d := req.Device; d != nil && d.IFA != "" && (d.Lmt == nil || *d.Lmt == 0) {
		if p, err := pz.Raw(audience.IDMAID, d.IFA, ""); err == nil {
			dst = append(dst, p)
		}
	}
	return dst
}

// candidate is a campaign that wants this user.
type candidate struct {
	c    *campaign.Campaign
	user audience.Pseudonym
	pace pacingState // see pace.go
}

// answerState holds one answer while it is decided and encoded: the
// response, its bids and the candidates considered. The bid path keeps it
// in the pooled bidState, so an answer allocates nothing once warm.
type answerState struct {
	ids   []audience.Pseudonym // the user's ids (decideFor)
	resp  openrtb2.BidResponse
	seat  [1]openrtb2.SeatBid
	bids  []openrtb2.Bid
	cands []candidate
	// buildBid's scratch, for one bid at a time
	hist     []creative.HistoryItem
	products []*creative.Product
	// arena holds the request's strings that are not in its body: the
	// unescaped ones (bidState.keep) and every string of the answer's bids
	// (buildBid). They point into it until reset.
	arena []byte
	// domains backs the bids' adomain lists, one entry each: like the
	// arena, it only grows until reset, so an earlier bid's list stays put.
	domains []string
}

// reset drops what the last answer referenced, keeping the storage.
func (a *answerState) reset() {
	clear(a.bids)
	clear(a.cands)
	clear(a.hist)
	clear(a.products)
	clear(a.domains)
	a.bids, a.cands, a.hist, a.products, a.domains = a.bids[:0], a.cands[:0], a.hist[:0], a.products[:0], a.domains[:0]
	a.ids = a.ids[:0]
	a.resp, a.seat = openrtb2.BidResponse{}, [1]openrtb2.SeatBid{}
	if cap(a.arena) > maxPooledArena {
		a.arena = nil
	}
	a.arena = a.arena[:0]
}

// decide turns a valid request into a response, or nil and a no-bid reason.
func (s *Server) decide(req *openrtb2.BidRequest) (*openrtb2.BidResponse, string) {
	return s.decideFor(req, nil, new(answerState))
}

// decideFor is decide for a request from the named exchange (sync.go),
// building the answer in a (returned response included).
func (s *Server) decideFor(req *openrtb2.BidRequest, exchange []byte, a *answerState) (*openrtb2.BidResponse, string) {
	if r := s.privacyReason(req); r != "" { // COPPA, GDPR, US privacy, GPP: see consent.go
		return nil, r
	}
	ids := s.syncedIDs(req, exchange, s.userIDs(req, a.ids[:0]))
	a.ids = ids
	if len(ids) == 0 {
		return nil, reasonNoUser
	}
	now := s.d.Now()
	asnap := s.d.Audiences.Snapshot()
	s.observe(req, ids[0], asnap, now) // lookalike population: see population.go
	// Only ids in some audience can match one: drop the others (an app
	// user's random device id next to a known cookie) before the campaigns
	// test them against each of their audiences.
	known := ids[:0]
	for _, p := range ids {
		if asnap.Known(p) {
			known = append(known, p)
		}
	}
	if ids = known; len(ids) == 0 {
		return nil, reasonUnknownUser
	}
	csnap := s.d.Campaigns.Snapshot()
	// Which of the campaigns' audiences hold which of the ids, in one pass.
	plan := s.plan(asnap, csnap)
	var stackHits [maxStackHits]uint32
	hits := stackHits[:0]
	probed := len(ids) <= audience.MaxProbeIDs
	if probed {
		if n := plan.probe.Len(); n <= len(stackHits) {
			hits = stackHits[:n]
		} else {
			hits = make([]uint32, n)
		}
		if !plan.probe.Test(ids, hits) {
			return nil, reasonNoCampaign
		}
	}
	cands := a.cands[:0]
	held := ""
	country, devType, domain := requestContext(req)
	for i, c := range csnap.Campaigns {
		if !c.LiveAt(now) || !targets(c, country, devType, domain) {
			continue
		}
		var user audience.Pseudonym
		var ok bool
		var k int // user's index in ids (probed)
		if probed {
			user, k, ok = plan.match(i, ids, hits)
		} else {
			user, ok = matchAudiences(asnap, c, ids)
		}
		if !ok {
			continue
		}
		pace, why := s.d.Pacer.Admit(c, user, now) // budget, frequency cap, pacing
		if why != "" {
			held = why
			continue
		}
		cd := candidate{c: c, user: user, pace: pacingState{h: pace}}
		if probed {
			cd.pace.kind = plan.kind(i, k, hits, s.audienceKind)
		} else {
			cd.pace.kind = s.matchedKind(asnap, c, user)
		}
		cands = append(cands, cd)
	}
	a.cands = cands // keep the grown array for the next request
	if len(cands) == 0 {
		if held != "" {
			return nil, held
		}
		return nil, reasonNoCampaign
	}
	resp := &a.resp
	resp.ID, resp.Cur = req.ID, ""
	bids := a.bids[:0]
	reason := reasonNoImpFit
	secureDefault := req.Site != nil && strings.HasPrefix(req.Site.Page, "https:")
	for i := range req.Imp {
		imp := &req.Imp[i]
		var best *candidate
		var bestPrice int64
		var bestSize campaign.Size
		for j := range cands {
			cd := &cands[j]
			if blocked(req, csnap.Advertisers[cd.c.AdvertiserID]) {
				continue
			}
			size, ok := fitImp(imp, cd.c)
			if !ok {
				continue
			}
			price, why := s.quote(req, imp, cd, now)
			if why != "" {
				if reason == reasonNoImpFit || why == reasonBudget {
					reason = why
				}
				continue
			}
			if resp.Cur != "" && resp.Cur != cd.c.Currency {
				continue // one currency per response
			}
			if best == nil || price > bestPrice {
				best, bestPrice, bestSize = cd, price, size
			}
		}
		if best == nil {
			continue
		}
		bid, ok := s.buildBid(req, imp, best, bestPrice, bestSize, secureDefault, csnap, now, a)
		if !ok {
			reason = reasonNoProduct
			continue
		}
		if !best.pace.h.Reserve(bestPrice, req.AT == 1, now) { // raced with other bids for the last of the budget
			reason = reasonBudget
			continue
		}
		resp.Cur = best.c.Currency
		bids = append(bids, bid)
	}
	a.bids = bids
	if len(bids) == 0 {
		return nil, reason
	}
	bidsPlaced.Add(len(bids))
	a.seat[0] = openrtb2.SeatBid{Seat: "chaser", Bid: bids}
	resp.SeatBid = a.seat[:]
	return resp, ""
}

// requestContext extracts what targeting needs.
func requestContext(req *openrtb2.BidRequest) (country string, devType int, domain string) {
	if d := req.Device; d != nil {
		devType = int(d.DeviceType)
		if d.Geo != nil {
			country = d.Geo.Country
		}
	}
	if country == "" && req.User != nil && req.User.Geo != nil {
		country = req.User.Geo.Country
	}
	if req.Site != nil {
		domain = req.Site.Domain
	} else if req.App != nil {
		domain = req.App.Bundle
	}
	return
}

func targets(c *campaign.Campaign, country string, devType int, domain string) bool {
	t := &c.Targeting
	if len(t.Countries) > 0 && !containsFold(t.Countries, country) {
		return false
	}
	if len(t.DeviceTypes) > 0 {
		ok := false
		for _, d := range t.DeviceTypes {
			if d == devType {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(t.Domains) > 0 && !containsFold(t.Domains, domain) {
		return false
	}
	return true
}

func containsFold(list []string, v string) bool {
	for _, s := range list {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}

// matchAudiences reports whether one of the user's ids is in an included
// audience and none is in an excluded one; it returns the matching id.
func matchAudiences(as *audience.Snapshot, c *campaign.Campaign, ids []audience.Pseudonym) (audience.Pseudonym, bool) {
	for _, ex := range c.Targeting.ExcludeAudiences {
		for _, p := range ids {
			if as.Contains(ex, p) {
				return audience.Pseudonym{}, false
			}
		}
	}
	for _, a := range c.Targeting.Audiences {
		for _, p := range ids {
			if as.Contains(a, p) {
				return p, true
			}
		}
	}
	return audience.Pseudonym{}, false
}

// blocked reports whether the request blocks the advertiser's domain.
func blocked(req *openrtb2.BidRequest, adv *campaign.Advertiser) bool {
	if adv == nil {
		return true
	}
	if adv.Domain != "" {
		for _, b := range req.BAdv {
			if strings.EqualFold(b, adv.Domain) {
				return true
			}
		}
	}
	// Chaser's creatives are retail product ads: IAB category IAB22
	// (shopping). Requests that block it get no bid.
	for _, c := range req.BCat {
		if c == "IAB22" || strings.HasPrefix(c, "IAB22-") {
			return true
		}
	}
	return false
}

// fitImp picks how the campaign can fill the imp: a banner size the imp
// accepts (banner w/h or one of its formats), or else a native ad when both
// the imp and the campaign do native (native is reported by a zero size).
// Video- and audio-only imps do not fit.
func fitImp(imp *openrtb2.Imp, c *campaign.Campaign) (campaign.Size, bool) {
	if sz, ok := fitBanner(imp, c); ok {
		return sz, true
	}
	if imp.Native != nil && c.Creative.Native && imp.Native.Request != "" {
		return campaign.Size{}, true
	}
	return campaign.Size{}, false
}

func fitBanner(imp *openrtb2.Imp, c *campaign.Campaign) (campaign.Size, bool) {
	b := imp.Banner
	if b == nil {
		return campaign.Size{}, false
	}
	for _, sz := range c.Creative.Sizes {
		if b.W != nil && b.H != nil && *b.W == sz.W && *b.H == sz.H {
			return sz, true
		}
		for _, f := range b.Format {
			if f.W == sz.W && f.H == sz.H {
				return sz, true
			}
		}
	}
	return campaign.Size{}, false
}

func (s *Server) buildBid(req *openrtb2.BidRequest, imp *openrtb2.Imp, cd *candidate, price int64,
	size campaign.Size, secureDefault bool, csnap *campaign.Snapshot, now time.Time, ans *answerState) (openrtb2.Bid, bool) {
	c := cd.c
	feed := s.d.Catalog.Feed(c.AdvertiserID)
	if feed == nil || len(feed.InStock) == 0 {
		return openrtb2.Bid{}, false
	}
	var hist []creative.HistoryItem
	offer := ""
	if prof, err := s.profileOf(cd); err == nil {
		ans.hist = historyOf(ans.hist[:0], prof)
		hist = ans.hist
		if isCartAbandoner(hist) {
			offer = c.Creative.Offer
		}
	}
	native := size.W == 0
	n := 1
	if !native {
		n = creative.ProductsForSize(size.W, size.H)
	}
	ans.products = s.chooseProducts(ans.products[:0], feed, hist, n, now)
	products := ans.products
	if len(products) == 0 {
		return openrtb2.Bid{}, false
	}
	secure := secureDefault
	if imp.Secure != nil {
		secure = *imp.Secure == 1
	}
	tok := pacing.Token{Campaign: c.ID, AuctionID: req.ID, ImpID: imp.ID, BidMicros: price, Unix: now.Unix(), User: cd.user,
		FirstPrice: req.AT == 1}
	// Every string of the bid is written into the answer's arena and points
	// into it (ids, notice URLs with one signed token four times, the
	// markup): no allocation and no copy per bid. The arena lives as long
	// as the pooled answer state, until the response has been encoded; if
	// it grows, strings made before point into the old array, which the
	// garbage collector keeps while they do.
	start := len(ans.arena)
	base := s.d.BaseURL
	a := append(ans.arena, base...)
	a = append(a, "/notice/imp?t="...)
	t0 := len(a)
	a = s.d.Notices.Append(a, &tok)
	t1 := len(a)
	impURL := unsafe.String(&a[start], t1-start)
	tokStr := impURL[t0-start:]
	idStart := len(a)
	a = append(append(append(a, req.ID...), '-'), imp.ID...)
	idEnd := len(a)
	a = creative.AppendCRID(a, size.W, size.H, native, products)
	cridEnd := len(a)
	a = append(append(append(a, base...), "/notice/win?t="...), tokStr...)
	a = append(a, "&p=${AUCTION_PRICE}&m=${AUCTION_MIN_TO_WIN}"...)
	nurlEnd := len(a)
	a = append(append(append(a, base...), "/notice/bill?t="...), tokStr...)
	a = append(a, "&p=${AUCTION_PRICE}"...)
	burlEnd := len(a)
	a = append(append(append(a, base...), "/notice/loss?t="...), tokStr...)
	a = append(a, "&r=${AUCTION_LOSS}&m=${AUCTION_MIN_TO_WIN}"...)
	lurlEnd := len(a)
	adv := csnap.Advertisers[c.AdvertiserID]
	mtype := openrtb2.MarkupBanner
	if native {
		sponsor := products[0].Brand
		if sponsor == "" && adv != nil {
			sponsor = adv.Name
		}
		var ok bool
		a, ok = s.d.Clicks.AppendNativeADM(a, &creative.Native{Request: imp.Native.Request, Product: products[0], Offer: offer,
			Sponsor: sponsor, Secure: secure, BaseURL: base, Advertiser: c.AdvertiserID, Campaign: c.ID, ImpURL: impURL})
		if !ok {
			ans.arena = a[:start]
			return openrtb2.Bid{}, false
		}
		mtype = openrtb2.MarkupNative
	} else {
		a = s.d.Clicks.AppendBannerHTML(a, &creative.Banner{
			W: size.W, H: size.H, Products: products, Offer: offer, Secure: secure,
			BaseURL: base, Advertiser: c.AdvertiserID, Campaign: c.ID, ImpURL: impURL,
		})
	}
	ans.arena = a
	all := unsafe.String(&a[idStart], len(a)-idStart)
	at := func(i, j int) string { return all[i-idStart : j-idStart] }
	var adomain []string
	if adv != nil && adv.Domain != "" {
		n := len(ans.domains)
		ans.domains = append(ans.domains, adv.Domain)
		adomain = ans.domains[n : n+1 : n+1]
	}
	return openrtb2.Bid{
		ID:      at(idStart, idEnd),
		ImpID:   imp.ID,
		Price:   float64(price) / 1e6,
		AdM:     all[lurlEnd-idStart:],
		ADomain: adomain,
		CID:     c.ID,
		CrID:    at(idEnd, cridEnd),
		W:       size.W,
		H:       size.H,
		MType:   mtype,
		Cat:     shoppingCat,
		NURL:    at(cridEnd, nurlEnd),
		BURL:    at(nurlEnd, burlEnd),
		LURL:    at(burlEnd, lurlEnd),
	}, true
}

// shoppingCat is every bid's cat: read only, shared by all responses.
var shoppingCat = []string{"IAB22"}

// maxPooledArena bounds the arena a pooled answer state keeps.
const maxPooledArena = 64 << 10

// historyOf appends p's product events to out.
func historyOf(out []creative.HistoryItem, p *audience.Profile) []creative.HistoryItem {
	for _, e := range p.Events {
		var k uint8
		switch e.Type {
		case audience.EventProductView:
			k = creative.KindView
		case audience.EventAddToCart:
			k = creative.KindCart
		case audience.EventPurchase:
			k = creative.KindPurchase
		default:
			continue
		}
		for _, pid := range e.Products {
			out = append(out, creative.HistoryItem{Product: pid, Kind: k, Unix: e.Unix})
		}
	}
	return out
}

// isCartAbandoner: the latest cart is newer than the latest purchase.
func isCartAbandoner(h []creative.HistoryItem) bool {
	var cart, buy int64
	for _, e := range h {
		switch e.Kind {
		case creative.KindCart:
			cart = max(cart, e.Unix)
		case creative.KindPurchase:
			buy = max(buy, e.Unix)
		}
	}
	return cart > 0 && cart >= buy
}
