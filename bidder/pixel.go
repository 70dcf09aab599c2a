package bidder

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/chaser-dsp/chaser/audience"
)

// The retargeting pixel: GET /px?adv=&ev=&uid=&em=&maid=&pid=&val=&cur=&evid=
//
//	adv   advertiser id (required)
//	ev    event type: page_view, product_view, add_to_cart, purchase, login, or the advertiser's own (required)
//	uid   the advertiser's user id for this browser (optional: Chaser's cookie is used, or set, otherwise)
//	em    SHA-256 hex of the normalised (trimmed, lower-case) e-mail, on login (optional)
//	maid  mobile advertising id (optional)
//	pid   product id; repeat the parameter or separate ids by commas (at most 20)
//	val   value in currency units, e.g. 12.50 (optional)
//	cur   ISO 4217 currency (optional)
//	evid  event id: a repeat with the same type and id is ignored (optional, e.g. the order id)
//
//	sync  1: chain a cookie sync to an exchange (syncpixel.go): the answer may
//	      then be a 302 to the exchange's sync URL instead of the GIF
//	gdpr, gdpr_consent, us_privacy, gpp, gpp_sid: read as /sync reads them;
//	      without consent Chaser sets no cookie and chains no sync
//
// The answer is a 1×1 GIF that no cache keeps (or, with sync=1, a 302): a
// browser never sees an error. Bad parameters are dropped and counted by name; an event without an
// advertiser Chaser knows, an event type or a user is dropped and counted.

// CookieName is Chaser's own cookie: a random 128-bit id (32 hex characters),
// the id exchanges send back as user.buyeruid after cookie sync.
const CookieName = "chaser_uid"

// DefaultCookieMaxAge is the cookie's lifetime when Deps.CookieMaxAge is 0.
const DefaultCookieMaxAge = 365 * 24 * time.Hour

// Pixel parameter limits (longer values are dropped).
const (
	maxPixelParam = 256
	maxPixelValue = 32
)

var (
	pixelStored    = metrics.NewCounter(`chaser_pixel_events_total{outcome="stored"}`)
	pixelDuplicate = metrics.NewCounter(`chaser_pixel_events_total{outcome="duplicate"}`)
	pixelCookieSet = metrics.NewCounter(`chaser_pixel_cookies_set_total`)
)

// pixelDropped counts events the pixel could not store, by reason.
func pixelDropped(reason string) {
	metrics.GetOrCreateCounter(`chaser_pixel_events_total{outcome="dropped",reason="` + reason + `"}`).Inc()
}

// Pixel parameters, as bits of a "dropped" mask and metric labels.
const (
	paramAdv = iota
	paramEv
	paramUID
	paramEm
	paramMAID
	paramPID
	paramVal
	paramCur
	paramEvID
	paramCookie
	numParams
)

var paramNames = [numParams]string{"adv", "ev", "uid", "em", "maid", "pid", "val", "cur", "evid", "cookie"}

var badParamCounters = func() (c [numParams]*metrics.Counter) {
	for i, n := range paramNames {
		c[i] = metrics.NewCounter(`chaser_pixel_bad_params_total{param="` + n + `"}`)
	}
	return
}()

// parsePixelQuery reads the pixel's query parameters into an event input.
// Malformed, oversized or repeated parameters are left out and reported as
// bits of bad (by param index); the rest of the event is kept.
func parsePixelQuery(args *fasthttp.Args) (in audience.EventInput, bad uint32) {
	seen := uint32(0)
	once := func(p int) bool {
		if seen&(1<<p) != 0 {
			bad |= 1 << p
			return false
		}
		seen |= 1 << p
		return true
	}
	for k, v := range args.All() {
		switch string(k) {
		case "adv":
			if once(paramAdv) {
				if len(v) == 0 || len(v) > 64 {
					bad |= 1 << paramAdv
				} else {
					in.AdvertiserID = string(v)
				}
			}
		case "ev":
			if once(paramEv) {
				if len(v) == 0 || len(v) > 64 {
					bad |= 1 << paramEv
				} else {
					in.Event = string(v)
				}
			}
		case "uid":
			if once(paramUID) {
				if _, _, err := audience.Normalize(audience.IDUID, string(v), ""); err != nil {
					bad |= 1 << paramUID
				} else {
					in.UID = string(v)
				}
			}
		case "em":
			if once(paramEm) {
				if !isHex64(v) {
					bad |= 1 << paramEm // a plain e-mail is dropped, never kept
				} else {
					in.EmailSHA256 = string(v)
				}
			}
		case "maid":
			if once(paramMAID) {
				if len(v) > 64 {
					bad |= 1 << paramMAID
				} else if _, _, err := audience.Normalize(audience.IDMAID, string(v), ""); err != nil {
					bad |= 1 << paramMAID
				} else {
					in.MAID = string(v)
				}
			}
		case "pid":
			if len(v) > maxPixelParam*4 {
				bad |= 1 << paramPID
				continue
			}
			for len(v) > 0 {
				id := v
				if i := bytes.IndexByte(v, ','); i >= 0 {
					id, v = v[:i], v[i+1:]
				} else {
					v = nil
				}
				id = bytes.TrimSpace(id)
				if len(id) == 0 {
					continue
				}
				s := string(id)
				if !audience.ValidProductID(s) || len(in.Products) >= audience.MaxEventProducts {
					bad |= 1 << paramPID
					continue
				}
				dup := false
				for _, q := range in.Products {
					dup = dup || q == s
				}
				if !dup {
					in.Products = append(in.Products, s)
				}
			}
		case "val":
			if once(paramVal) {
				f, ok := parseValue(v)
				if !ok {
					bad |= 1 << paramVal
				} else {
					in.Value = f
				}
			}
		case "cur":
			if once(paramCur) {
				if len(v) != 3 || !isLetters(v) {
					bad |= 1 << paramCur
				} else {
					in.Currency = string(v)
				}
			}
		case "evid":
			if once(paramEvID) {
				if len(v) == 0 || len(v) > audience.MaxEventIDLen {
					bad |= 1 << paramEvID
				} else {
					in.ID = string(v)
				}
			}
		}
	}
	return in, bad
}

func parseValue(v []byte) (float64, bool) {
	if len(v) == 0 || len(v) > maxPixelValue {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > audience.MaxEventValue {
		return 0, false
	}
	return f, true
}

func isHex64(v []byte) bool {
	if len(v) != 64 {
		return false
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func isLetters(v []byte) bool {
	for _, c := range v {
		if c|0x20 < 'a' || c|0x20 > 'z' {
			return false
		}
	}
	return true
}

// handlePixel records one site event and answers a 1×1 GIF, whatever
// happens.
func (s *Server) handlePixel(ctx *fasthttp.RequestCtx) {
	redirected := false // to an exchange's sync URL (syncpixel.go)
	defer func() {
		if !redirected {
			writeGIF(ctx)
		}
	}()
	if !ctx.IsGet() { // HEAD (link checkers, prefetch) and others record nothing
		pixelDropped("method")
		return
	}
	args := ctx.QueryArgs()
	in, bad := parsePixelQuery(args)
	uid, ok := cookieUID(ctx)
	if !ok {
		bad |= 1 << paramCookie
	}
	// Consent signals, when the page passes them, are read as /sync reads
	// them: without consent no cookie is set and no sync chained.
	consent := s.syncConsent(args) == ""
	chain := s.wantsChain(args)
	if uid == "" && consent && (in.UID == "" || chain) {
		uid = newUID()
		s.setCookieUID(ctx, uid)
	}
	if uid != "" {
		if in.UID != "" && in.UID != uid {
			in.LinkUID = in.UID // the advertiser's id for the same browser
		}
		in.UID = uid
	}
	if chain {
		if consent {
			redirected = s.chainSync(ctx, uid, "")
		} else {
			chainCount(chainNoConsent)
		}
	}
	for p := 0; p < numParams; p++ {
		if bad&(1<<p) != 0 {
			badParamCounters[p].Inc()
		}
	}
	switch {
	case in.UID == "" && in.MAID == "" && in.EmailSHA256 == "" && !consent:
		pixelDropped("no_consent") // no id but a cookie it may not set
		return
	case in.AdvertiserID == "":
		pixelDropped("no_advertiser")
		return
	case in.Event == "":
		pixelDropped("no_event")
		return
	}
	if s.d.Campaigns.Snapshot().Advertisers[in.AdvertiserID] == nil {
		pixelDropped("unknown_advertiser")
		return
	}
	ev, err := s.d.Audiences.Resolve(in, s.d.Now())
	if err != nil {
		var fe *audience.FieldError
		if errors.As(err, &fe) && fe.Field == "event" {
			pixelDropped("bad_event")
		} else {
			pixelDropped("invalid")
		}
		return
	}
	switch err := s.d.Audiences.RecordEvent(ev); {
	case err == nil:
		pixelStored.Inc()
	case errors.Is(err, audience.ErrDuplicateEvent):
		pixelDuplicate.Inc()
	case errors.Is(err, audience.ErrTooManyTypes):
		pixelDropped("too_many_event_types")
	default:
		pixelDropped("store_error")
		s.logPixelError(err)
	}
}

var pixelErrLogged atomic.Int64 // unix second of the last logged store error

// logPixelError logs a store failure at most once a second.
func (s *Server) logPixelError(err error) {
	now := time.Now().Unix()
	if last := pixelErrLogged.Load(); now != last && pixelErrLogged.CompareAndSwap(last, now) {
		s.d.Logger.Error("pixel: record event", "err", err)
	}
}

// cookieUID returns Chaser's cookie id from the request: "" and true when
// there is none, "" and false when there is one that is not a well-formed id
// (it is then replaced).
func cookieUID(ctx *fasthttp.RequestCtx) (string, bool) {
	v := ctx.Request.Header.Cookie(CookieName)
	if len(v) == 0 {
		return "", true
	}
	if len(v) != 32 {
		return "", false
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return string(v), true
}

// newUID returns a fresh random 128-bit cookie id in hex.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestIsHTTPS reports whether the browser reached Chaser over https:
// directly, or through a proxy that says so in X-Forwarded-Proto.
func requestIsHTTPS(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsTLS() {
		return true
	}
	p := ctx.Request.Header.Peek("X-Forwarded-Proto")
	if i := bytes.IndexByte(p, ','); i >= 0 {
		p = p[:i]
	}
	return bytes.EqualFold(bytes.TrimSpace(p), []byte("https"))
}

// setBrowserCookie sets one of Chaser's first-party cookies for age: on
// https SameSite=None; Secure (so it is sent on the exchanges' third-party
// requests), else SameSite=Lax; HttpOnly, path /.
func setBrowserCookie(ctx *fasthttp.RequestCtx, key string, value []byte, age time.Duration) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(key)
	c.SetValueBytes(value)
	c.SetPath("/")
	c.SetMaxAge(int(age / time.Second))
	c.SetHTTPOnly(true)
	if requestIsHTTPS(ctx) {
		c.SetSameSite(fasthttp.CookieSameSiteNoneMode) // also sets Secure
	} else {
		c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	}
	ctx.Response.Header.SetCookie(c)
}

// setCookieUID sets Chaser's cookie to uid for Deps.CookieMaxAge: on https
// SameSite=None; Secure (so it is sent on the exchanges' third-party
// requests), else SameSite=Lax.
func (s *Server) setCookieUID(ctx *fasthttp.RequestCtx, uid string) {
	age := s.d.CookieMaxAge
	if age <= 0 {
		age = DefaultCookieMaxAge
	}
	setBrowserCookie(ctx, CookieName, []byte(uid), age)
	pixelCookieSet.Inc()
}
