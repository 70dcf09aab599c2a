package bidder

import (
	"bytes"
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prebid/openrtb/v20/openrtb2"
	"github.com/valyala/fasthttp"

	"github.com/chaser-dsp/chaser/audience"
)

// Cookie sync: the id Chaser's pixel gives a browser (cookie chaser_uid) is
// the id an exchange sends back as user.buyeruid, or is mapped from the
// exchange's own user id.
//
//	GET /sync?redirect=URL[&exchange=NAME][&gdpr=&gdpr_consent=&us_privacy=&gpp=&gpp_sid=]
//	    302 to URL with Chaser's uid (URL-encoded) in place of ${UID}, $UID or
//	    {UID}; the cookie is set when absent or malformed. URL must be http(s)
//	    on a host of Deps.SyncHosts (exact, or "*.suffix" for any subdomain),
//	    at most 2 KiB, without user info or control characters: else 400.
//	    Without consent for Chaser (GDPR applies and the TCF string lacks
//	    Chaser's vendor or purposes 1, 3, 4; a US privacy or GPP opt-out or an
//	    unreadable string) the uid is empty and no cookie is set.
//	GET /setuid?exchange=NAME&euid=ID[&gdpr=…]
//	    records that exchange NAME (one of Deps.Exchanges' names) knows this
//	    browser as ID; a 1×1 GIF, whatever happens (with sync=1 it may
//	    chain on to the next exchange's sync URL: syncpixel.go).
//	POST /openrtb2/bid/NAME
//	    a bid request from exchange NAME: as /openrtb2/bid, and user.id is
//	    also resolved through the /setuid mappings of NAME.

// MaxRedirectLen bounds /sync's redirect URL.
const MaxRedirectLen = 2 << 10

// Outcomes of chaser_syncs_total.
const (
	syncOK        = "ok"          // redirected with the existing uid
	syncNewUID    = "new_uid"     // redirected with a fresh uid, cookie set
	syncNoConsent = "no_consent"  // redirected with an empty uid, no cookie
	syncBad       = "bad_request" // 400 (see chaser_sync_bad_redirects_total)
	syncStored    = "stored"      // /setuid mapping stored
	syncUnknown   = "unknown_exchange"
	syncBadID     = "bad_id"
	syncError     = "error"
	syncMethod    = "method"
)

func syncCount(exchange, outcome string) {
	metrics.GetOrCreateCounter(`chaser_syncs_total{exchange="` + exchange + `",outcome="` + outcome + `"}`).Inc()
}

func syncBadRedirect(reason string) {
	metrics.GetOrCreateCounter(`chaser_sync_bad_redirects_total{reason="` + reason + `"}`).Inc()
}

var (
	syncBadCookie   = metrics.NewCounter(`chaser_sync_bad_cookies_total`)
	bidUIDRequests  = metrics.NewCounter(`chaser_bid_uid_requests_total`)
	bidUIDBuyerUID  = metrics.NewCounter(`chaser_bid_uid_resolved_total{via="buyeruid"}`)
	bidUIDExchange  = metrics.NewCounter(`chaser_bid_uid_resolved_total{via="exchange_id"}`)
	bidPathExchange = []byte("/openrtb2/bid/")
)

// exchangeLabel is name if it is a configured exchange, else "other".
func (s *Server) exchangeLabel(name []byte) string {
	if s.d.Exchanges.KnownBytes(name) {
		return string(name)
	}
	return "other"
}

// validateRedirect checks a /sync redirect target against the allow-list
// hosts. It returns "" and the reason on refusal.
func validateRedirect(raw []byte, hosts []string) (string, string) {
	switch {
	case len(raw) == 0:
		return "", "missing"
	case len(raw) > MaxRedirectLen:
		return "", "too_long"
	}
	for _, c := range raw {
		if c <= ' ' || c >= 0x7f || c == '\\' {
			return "", "bad_char" // control, space, non-ASCII, backslash (browsers read it as '/')
		}
	}
	s := string(raw)
	u, err := url.Parse(s)
	if err != nil {
		return "", "unparsable"
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", "scheme"
	}
	if u.User != nil || u.Opaque != "" || !strings.HasPrefix(s[len(u.Scheme):], "://") {
		return "", "form"
	}
	h := strings.ToLower(u.Hostname())
	if h == "" {
		return "", "no_host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return "", "port"
		}
	}
	if !hostAllowed(h, hosts) {
		return "", "host_not_allowed"
	}
	return s, ""
}

// hostAllowed reports whether h (lower-case) is on the allow-list: an exact
// host, or "*.suffix" for any subdomain of suffix.
func hostAllowed(h string, hosts []string) bool {
	for _, a := range hosts {
		if suf, ok := strings.CutPrefix(a, "*."); ok {
			if len(h) > len(suf)+1 && strings.HasSuffix(h, suf) && h[len(h)-len(suf)-1] == '.' {
				return true
			}
		} else if h == a {
			return true
		}
	}
	return false
}

var uidMacros = strings.NewReplacer("${UID}", "", "$UID", "", "{UID}", "")

// substituteUID puts uid (URL-encoded) in place of the UID macros of target.
func substituteUID(target, uid string) string {
	if uid == "" {
		return uidMacros.Replace(target)
	}
	e := url.QueryEscape(uid)
	return strings.NewReplacer("${UID}", e, "$UID", e, "{UID}", e).Replace(target)
}

// syncConsent reads the sync's privacy parameters as a bid request's would
// be read (consent.go) and returns the reason there is no consent, or "".
func (s *Server) syncConsent(args *fasthttp.Args) (reason string) {
	defer func() {
		if v := recover(); v != nil {
			consentPanics.Inc()
			reason = reasonConsentPanic
		}
	}()
	gdpr := args.Peek("gdpr")
	tcfChecked := false
	if string(gdpr) == "1" {
		if r := tcfReason(string(args.Peek("gdpr_consent")), s.d.GDPRVendorID); r != "" {
			return r
		}
		tcfChecked = true
	}
	if usp := args.Peek("us_privacy"); len(usp) > 0 {
		if r := uspReason(string(usp)); r != "" {
			return r
		}
	}
	sig := signals{gdpr: -1, gpp: string(args.Peek("gpp"))}
	if sid := args.Peek("gpp_sid"); len(sid) > 0 {
		for _, f := range bytes.Split(sid, []byte(",")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(f)))
			if err != nil || n < -128 || n > 127 {
				return reasonGPPInvalid
			}
			sig.gppSID = append(sig.gppSID, int8(n))
		}
	}
	if sig.gpp != "" || len(sig.gppSID) > 0 {
		return gppReason(&sig, tcfChecked, s.d.GDPRVendorID)
	}
	return ""
}

// handleSync answers GET /sync.
func (s *Server) handleSync(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	ex := s.exchangeLabel(args.Peek("exchange"))
	if !ctx.IsGet() && !ctx.IsHead() {
		syncCount(ex, syncMethod)
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return
	}
	target, why := validateRedirect(args.Peek("redirect"), s.d.SyncHosts)
	if why != "" {
		syncCount(ex, syncBad)
		syncBadRedirect(why)
		ctx.Error("bad redirect: "+why, fasthttp.StatusBadRequest)
		return
	}
	uid, outcome := "", syncNoConsent
	if s.syncConsent(args) == "" {
		var ok bool
		uid, ok = cookieUID(ctx)
		if !ok {
			syncBadCookie.Inc()
		}
		outcome = syncOK
		if uid == "" {
			uid = newUID()
			s.setCookieUID(ctx, uid)
			outcome = syncNewUID
		}
	}
	syncCount(ex, outcome)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("Location", substituteUID(target, uid))
	ctx.SetStatusCode(fasthttp.StatusFound)
}

// handleSetUID answers GET /setuid: a 1×1 GIF, whatever happens (but for
// a chained sync, sync=1: see syncpixel.go).
func (s *Server) handleSetUID(ctx *fasthttp.RequestCtx) {
	redirected := false
	defer func() {
		if !redirected {
			writeGIF(ctx)
		}
	}()
	args := ctx.QueryArgs()
	name := args.Peek("exchange")
	ex := s.exchangeLabel(name)
	if ctx.IsGet() && s.wantsChain(args) {
		// Continue the chain whatever happens to the mapping: the cookie,
		// not this call, records what was synced.
		// The uid is the one the browser sent, never one minted here.
		defer func() {
			if s.syncConsent(args) != "" {
				chainCount(chainNoConsent)
				return
			}
			uid, _ := cookieUID(ctx)
			redirected = s.chainSync(ctx, uid, string(name))
		}()
	}
	switch {
	case !ctx.IsGet():
		syncCount(ex, syncMethod)
		return
	case ex == "other":
		syncCount(ex, syncUnknown)
		return
	case s.syncConsent(args) != "":
		syncCount(ex, syncNoConsent)
		return
	}
	euid := args.Peek("euid")
	if len(euid) == 0 || len(euid) > audience.MaxExchangeIDLen {
		syncCount(ex, syncBadID)
		return
	}
	uid, ok := cookieUID(ctx)
	if !ok {
		syncBadCookie.Inc()
	}
	if uid == "" {
		uid = newUID()
		s.setCookieUID(ctx, uid)
	}
	k, v, err := audience.Normalize(audience.IDUID, uid, "")
	if err != nil {
		syncCount(ex, syncError)
		return
	}
	p := s.d.Audiences.Pseudonymizer().Of(k, v)
	if err := s.d.Exchanges.Set(ex, string(euid), p); err != nil {
		if errors.Is(err, audience.ErrBadExchangeID) {
			syncCount(ex, syncBadID)
		} else {
			syncCount(ex, syncError)
			s.d.Logger.Error("setuid: store mapping", "exchange", ex, "err", err)
		}
		return
	}
	syncCount(ex, syncStored)
}

// bidExchange returns the exchange name of a /openrtb2/bid/NAME path, or nil.
func bidExchange(path []byte) []byte {
	if bytes.HasPrefix(path, bidPathExchange) {
		return path[len(bidPathExchange):]
	}
	return nil
}

// syncedIDs counts whether the request's user resolves to a Chaser uid and,
// for a request from a configured exchange, adds the Chaser uid its user.id
// maps to.
func (s *Server) syncedIDs(req *openrtb2.BidRequest, exchange []byte, dst []audience.Pseudonym) []audience.Pseudonym {
	bidUIDRequests.Inc()
	u := req.User
	if u == nil {
		return dst
	}
	if isChaserUID(u.BuyerUID) {
		bidUIDBuyerUID.Inc()
		return dst
	}
	if len(exchange) == 0 || u.ID == "" || s.d.Exchanges == nil {
		return dst
	}
	var b [audience.MaxExchangeIDLen]byte
	if len(u.ID) > len(b) {
		return dst
	}
	n := copy(b[:], u.ID)
	if p, ok := s.d.Exchanges.Lookup(exchange, b[:n]); ok {
		bidUIDExchange.Inc()
		dst = append(dst, p)
	}
	return dst
}

// isChaserUID reports whether v has the form of Chaser's cookie id.
func isChaserUID(v string) bool {
	if len(v) != 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
