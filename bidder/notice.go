package bidder

import (
	"errors"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/pacing"
)

// noticeCount counts notices by kind and outcome.
func noticeCount(kind, outcome string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`chaser_notices_total{kind="` + kind + `",outcome="` + outcome + `"}`)
}

var spendMicros = metrics.NewCounter(`chaser_spend_micros_total`)

func (s *Server) lookupCampaign(id string) *campaign.Campaign {
	return s.d.Campaigns.Snapshot().ByID[id]
}

// handleWin handles win (nurl) and billing (burl) notices. Whatever the
// outcome the exchange gets a 2xx or a 4xx with a reason, and spend moves at
// most once per auction.
func (s *Server) handleWin(ctx *fasthttp.RequestCtx, kind string) {
	args := ctx.QueryArgs()
	tok := args.Peek("t")
	price, ok := parsePriceMicros(args.Peek("p"))
	if len(tok) == 0 {
		noticeCount(kind, "missing_token").Inc()
		ctx.Error("missing token", fasthttp.StatusBadRequest)
		return
	}
	if !ok {
		noticeCount(kind, "bad_price").Inc()
		ctx.Error("missing or malformed price (p)", fasthttp.StatusBadRequest)
		return
	}
	res, err := s.d.Ledger.RecordWin(kind, string(tok), price, s.lookupCampaign)
	switch {
	case err == nil:
		noticeCount(kind, "ok").Inc()
		spendMicros.Add(int(res.Spent))
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case errors.Is(err, pacing.ErrDuplicate):
		noticeCount(kind, "duplicate").Inc()
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case errors.Is(err, pacing.ErrBadSig), errors.Is(err, pacing.ErrBadToken):
		noticeCount(kind, "bad_token").Inc()
		ctx.Error("invalid token", fasthttp.StatusForbidden)
	case errors.Is(err, pacing.ErrPriceAboveBid):
		noticeCount(kind, "price_above_bid").Inc()
		ctx.Error("price above bid", fasthttp.StatusBadRequest)
	case errors.Is(err, pacing.ErrUnknownCampaign):
		noticeCount(kind, "unknown_campaign").Inc()
		ctx.Error("unknown campaign", fasthttp.StatusNotFound)
	case errors.Is(err, pacing.ErrExpired):
		noticeCount(kind, "expired").Inc()
		ctx.Error("notice too old", fasthttp.StatusGone)
	default:
		noticeCount(kind, "error").Inc()
		s.d.Logger.Error("record notice", "kind", kind, "err", err)
		ctx.Error("could not record notice", fasthttp.StatusServiceUnavailable)
	}
}

func (s *Server) handleLoss(ctx *fasthttp.RequestCtx) {
	if _, err := s.d.Notices.Parse(string(ctx.QueryArgs().Peek("t"))); err != nil {
		noticeCount(pacing.NoticeLoss, "bad_token").Inc()
		ctx.Error("invalid token", fasthttp.StatusForbidden)
		return
	}
	noticeCount(pacing.NoticeLoss, "ok").Inc()
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) handleImp(ctx *fasthttp.RequestCtx) {
	if _, err := s.d.Notices.Parse(string(ctx.QueryArgs().Peek("t"))); err != nil {
		noticeCount(pacing.NoticeImp, "bad_token").Inc()
	} else {
		noticeCount(pacing.NoticeImp, "ok").Inc()
	}
	writeGIF(ctx)
}

var clicks = metrics.NewCounter(`chaser_clicks_total`)

// handleClick redirects to the product's own landing URL, looked up in the
// catalogue; the request only names the product, signed.
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
