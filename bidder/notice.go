package bidder

import (
	"errors"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/chaser-dsp/chaser/pacing"
)

// noticeCount counts notices by kind and outcome.
func noticeCount(kind, outcome string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`chaser_notices_total{kind="` + kind + `",outcome="` + outcome + `"}`)
}

var spendMicros = metrics.NewCounter(`chaser_spend_micros_total`)

// handleWin handles win (nurl) and billing (burl) notices:
// /notice/win?t=TOKEN&p=${AUCTION_PRICE}&m=${AUCTION_MIN_TO_WIN}. Whatever
// the outcome the exchange gets a 2xx or a 4xx with a reason, and spend
// moves at most once per auction, durably before the answer.
func (s *Server) handleWin(ctx *fasthttp.RequestCtx, kind string) {
	args := ctx.QueryArgs()
	tok := args.Peek("t")
	if len(tok) == 0 {
		noticeCount(kind, "missing_token").Inc()
		ctx.Error("missing token", fasthttp.StatusBadRequest)
		return
	}
	price, ok := pacing.ParsePrice(args.Peek("p"))
	if !ok {
		noticeCount(kind, "bad_price").Inc()
		ctx.Error("missing or malformed price (p)", fasthttp.StatusBadRequest)
		return
	}
	res, err := s.d.Pacer.Notice(kind, tok, price, minToWin(args))
	if s.noticeOutcome(ctx, kind, err) {
		spendMicros.Add(int(res.Spent))
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}
}

// handleLoss handles loss notices (lurl): the bid's reservation is freed
// and ${AUCTION_MIN_TO_WIN}, when the exchange fills it, teaches
// first-price shading.
func (s *Server) handleLoss(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	tok := args.Peek("t")
	if len(tok) == 0 {
		noticeCount(pacing.NoticeLoss, "missing_token").Inc()
		ctx.Error("missing token", fasthttp.StatusBadRequest)
		return
	}
	_, err := s.d.Pacer.Notice(pacing.NoticeLoss, tok, -1, minToWin(args))
	if s.noticeOutcome(ctx, pacing.NoticeLoss, err) {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}
}

// handleImp is the impression pixel in the ad markup: it counts the
// impression (report, frequency cap) and always answers the GIF, so a
// browser never shows a broken image.
func (s *Server) handleImp(ctx *fasthttp.RequestCtx) {
	tok := ctx.QueryArgs().Peek("t")
	if len(tok) == 0 {
		noticeCount(pacing.NoticeImp, "missing_token").Inc()
	} else {
		_, err := s.d.Pacer.Notice(pacing.NoticeImp, tok, -1, -1)
		label := noticeLabel(err)
		noticeCount(pacing.NoticeImp, label).Inc()
		if label == "error" {
			s.d.Logger.Error("record notice", "kind", pacing.NoticeImp, "err", err)
		}
	}
	writeGIF(ctx)
}

// minToWin reads ${AUCTION_MIN_TO_WIN} (m); exchanges that do not fill the
// macro leave it literal, which is no information, not an error.
func minToWin(args *fasthttp.Args) int64 {
	if v, ok := pacing.ParsePrice(args.Peek("m")); ok {
		return v
	}
	return -1
}

// noticeLabel is the metric outcome of a notice error.
func noticeLabel(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, pacing.ErrDuplicate):
		return "duplicate"
	case errors.Is(err, pacing.ErrBadSig), errors.Is(err, pacing.ErrBadToken):
		return "bad_token"
	case errors.Is(err, pacing.ErrPriceAboveBid):
		return "price_above_bid"
	case errors.Is(err, pacing.ErrBadPrice):
		return "bad_price"
	case errors.Is(err, pacing.ErrUnknownCampaign):
		return "unknown_campaign"
	case errors.Is(err, pacing.ErrExpired):
		return "expired"
	}
	return "error"
}

// noticeOutcome counts the notice and answers errors; it reports whether
// the notice was applied (the caller then answers 204).
func (s *Server) noticeOutcome(ctx *fasthttp.RequestCtx, kind string, err error) bool {
	label := noticeLabel(err)
	noticeCount(kind, label).Inc()
	switch label {
	case "ok":
		return true
	case "duplicate":
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case "bad_token":
		ctx.Error("invalid token", fasthttp.StatusForbidden)
	case "price_above_bid":
		ctx.Error("price above bid", fasthttp.StatusBadRequest)
	case "bad_price":
		ctx.Error("missing or malformed price (p)", fasthttp.StatusBadRequest)
	case "unknown_campaign":
		ctx.Error("unknown campaign", fasthttp.StatusNotFound)
	case "expired":
		ctx.Error("notice too old", fasthttp.StatusGone)
	default:
		s.d.Logger.Error("record notice", "kind", kind, "err", err)
		ctx.Error("could not record notice", fasthttp.StatusServiceUnavailable)
	}
	return false
}

var clicks = metrics.NewCounter(`chaser_clicks_total`)

// handleClick redirects to the product's own landing URL, looked up in the
// catalogue; the request only names the product, signed. The click counts
// in the campaign's report.
func (s *Server) handleClick(ctx *fasthttp.RequestCtx) {
	a := ctx.QueryArgs()
	adv, cmp, pid, sig := string(a.Peek("a")), string(a.Peek("c")), string(a.Peek("p")), string(a.Peek("s"))
	if !s.d.Clicks.Verify(adv, cmp, pid, sig) {
		metrics.GetOrCreateCounter(`chaser_clicks_refused_total{reason="bad_signature"}`).Inc()
		ctx.Error("invalid click", fasthttp.StatusForbidden)
		return
	}
	feed := s.d.Catalog.Feed(adv)
	if feed == nil || feed.ByID[pid] == nil {
		metrics.GetOrCreateCounter(`chaser_clicks_refused_total{reason="unknown_product"}`).Inc()
		ctx.Error("product no longer available", fasthttp.StatusNotFound)
		return
	}
	clicks.Inc()
	s.d.Pacer.Click(cmp, s.d.Now())
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Redirect(feed.ByID[pid].LandingURL, fasthttp.StatusFound)
}

// gif1x1 is a transparent 1×1 GIF.
var gif1x1 = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

func writeGIF(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	ctx.Response.Header.Set("Pragma", "no-cache")
	ctx.Response.Header.Set("Expires", "0")
	ctx.SetContentType("image/gif")
	ctx.SetBody(gif1x1)
}
