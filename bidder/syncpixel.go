package bidder

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/chaser-dsp/chaser/audience"
)

// Sync-pixel chaining: the pixel (and an exchange's call back to /setuid)
// can lead the browser on to an exchange's user-sync URL, as DSP pixels do,
// so exchanges learn Chaser's uid without a separate /sync call.
//
//	GET /px?…&sync=1
//	    records the event as usual; then, if Deps.SyncPixels is set, the
//	    request carries consent (as /sync), and an exchange of the list was
//	    not synced by this browser in the last Deps.SyncInterval, answers a
//	    302 to the first such exchange's URL with the uid in place of the
//	    UID macros, instead of the GIF. Otherwise (or without sync=1) the
//	    usual 1×1 GIF.
//	GET /setuid?exchange=NAME&euid=ID&sync=1
//	    as /setuid; then, if NAME is recorded as synced in the chaser_sync
//	    cookie the browser sent (so it keeps Chaser's cookies and the chain
//	    ends), continues the chain to the next exchange due, the same way.
//	    Point an exchange's redirect back at this URL to sync every
//	    exchange of the list from one page view.
//
// Which exchanges a browser synced and when is kept in the chaser_sync
// cookie ("name:unixtime" pairs joined by '.', one per exchange of the
// list, lasting SyncInterval); an exchange is skipped until its entry is
// SyncInterval old. A malformed cookie counts as empty and is replaced.

// SyncCookieName is the cookie that remembers recent chained syncs.
const SyncCookieName = "chaser_sync"

// DefaultSyncInterval is how long a browser is not re-synced with an
// exchange when Deps.SyncInterval is 0.
const DefaultSyncInterval = 7 * 24 * time.Hour

// MaxSyncPixels bounds the sync pixel list.
const MaxSyncPixels = 16

// maxSyncCookie bounds the chaser_sync cookie read (16 × "name:unixtime.").
const maxSyncCookie = MaxSyncPixels * (32 + 1 + 20 + 1)

// SyncPixel is one exchange's user-sync URL for chaining.
type SyncPixel struct {
	// Name labels the exchange in the cookie and metrics; for /setuid
	// chaining it is also the exchange's name in Deps.Exchanges.
	Name string
	// URL is the exchange's user-sync URL, with a ${UID}, $UID or {UID}
	// macro where Chaser's uid goes.
	URL string
}

// ParseSyncPixels reads a sync pixel list, "name=URL" items separated by
// commas (a comma inside a URL must be written %2C). Every URL must pass
// /sync's redirect checks against hosts and carry a UID macro; names are
// exchange names (a-z, 0-9, '_', '-'; at most 32), each at most once; at
// most MaxSyncPixels items. Empty spec: no list.
func ParseSyncPixels(spec string, hosts []string) ([]SyncPixel, error) {
	var out []SyncPixel
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, raw, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("sync pixel %q: want name=URL", truncateString(item, 60))
		}
		if !audience.ValidExchangeName(name) {
			return nil, fmt.Errorf("sync pixel name %q: want 1-32 of a-z, 0-9, '_', '-'", truncateString(name, 40))
		}
		for _, p := range out {
			if p.Name == name {
				return nil, fmt.Errorf("sync pixel %q: listed twice", name)
			}
		}
		if len(out) == MaxSyncPixels {
			return nil, fmt.Errorf("sync pixels: at most %d", MaxSyncPixels)
		}
		u, why := validateRedirect([]byte(raw), hosts)
		if why != "" {
			return nil, fmt.Errorf("sync pixel %q: %s", name, redirectProblem(raw, why))
		}
		if !strings.Contains(u, "${UID}") && !strings.Contains(u, "$UID") && !strings.Contains(u, "{UID}") {
			return nil, fmt.Errorf("sync pixel %q: URL has no ${UID}, $UID or {UID} macro for Chaser's uid", name)
		}
		out = append(out, SyncPixel{Name: name, URL: u})
	}
	return out, nil
}

// redirectProblem explains a validateRedirect refusal to an operator.
func redirectProblem(raw, why string) string {
	switch why {
	case "host_not_allowed":
		h := raw
		if i := strings.Index(h, "://"); i >= 0 {
			h = h[i+3:]
		}
		if i := strings.IndexAny(h, "/?#"); i >= 0 {
			h = h[:i]
		}
		return fmt.Sprintf("host %q is not on the sync host allow-list", truncateString(h, 80))
	case "missing":
		return "empty URL"
	case "too_long":
		return fmt.Sprintf("URL longer than %d bytes", MaxRedirectLen)
	case "bad_char":
		return "URL has spaces, control characters, non-ASCII or backslashes"
	case "scheme":
		return "URL must be http:// or https://"
	default:
		return "bad URL (" + why + ")"
	}
}

func truncateString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Outcomes of chaser_sync_chains_total.
const (
	chainRedirect  = "redirect"   // 302 to an exchange's sync URL
	chainRecent    = "all_recent" // every exchange synced within the interval
	chainNoConsent = "no_consent"
	chainNoUID     = "no_uid"     // no Chaser uid to send
	chainNotSynced = "not_synced" // /setuid&sync=1 from an exchange the cookie does not record
)

// syncChained is chaser_syncs_total's outcome for a chained sync.
const syncChained = "chained"

func chainCount(outcome string) {
	metrics.GetOrCreateCounter(`chaser_sync_chains_total{outcome="` + outcome + `"}`).Inc()
}

var syncBadChainCookie = metrics.NewCounter(`chaser_sync_bad_chain_cookies_total`)

// syncTimes is when this browser last synced each of Deps.SyncPixels (unix
// seconds; 0: never or long ago).
type syncTimes [MaxSyncPixels]int64

var errSyncCookie = errors.New("malformed chaser_sync cookie")

// parseSyncCookie reads a chaser_sync cookie against pixels. Entries for
// exchanges no longer listed are dropped; entries in the future are
// malformed.
func parseSyncCookie(v []byte, pixels []SyncPixel, now int64) (t syncTimes, err error) {
	if len(v) > maxSyncCookie {
		return t, errSyncCookie
	}
	for len(v) > 0 {
		item := v
		if i := indexByte(v, '.'); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		c := indexByte(item, ':')
		if c <= 0 || c == len(item)-1 || len(item)-c-1 > 19 {
			return syncTimes{}, errSyncCookie
		}
		var ts int64
		for _, d := range item[c+1:] {
			if d < '0' || d > '9' {
				return syncTimes{}, errSyncCookie
			}
			ts = ts*10 + int64(d-'0')
		}
		if ts > now+3600 || ts < 0 {
			return syncTimes{}, errSyncCookie
		}
		for i := range pixels {
			if pixels[i].Name == string(item[:c]) {
				t[i] = ts
			}
		}
	}
	return t, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// appendSyncCookie appends the cookie value for t, leaving out entries
// older than interval.
func appendSyncCookie(dst []byte, t *syncTimes, pixels []SyncPixel, now, interval int64) []byte {
	first := true
	for i := range pixels {
		if t[i] == 0 || now-t[i] >= interval {
			continue
		}
		if !first {
			dst = append(dst, '.')
		}
		first = false
		dst = append(dst, pixels[i].Name...)
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, t[i], 10)
	}
	return dst
}

// syncInterval is Deps.SyncInterval or its default.
func (s *Server) syncInterval() time.Duration {
	if s.d.SyncInterval > 0 {
		return s.d.SyncInterval
	}
	return DefaultSyncInterval
}

// wantsChain reports whether the request asks to chain a sync and there is
// a list to chain.
func (s *Server) wantsChain(args *fasthttp.Args) bool {
	return len(s.d.SyncPixels) > 0 && string(args.Peek("sync")) == "1"
}

// chainSync answers a 302 to the first exchange of Deps.SyncPixels this
// browser did not sync within the interval, with uid, and records it in the
// chaser_sync cookie. after, if not "", must be an exchange the cookie
// records (the chain's previous hop). It reports whether it redirected; the
// caller checked consent and wantsChain.
func (s *Server) chainSync(ctx *fasthttp.RequestCtx, uid, after string) bool {
	if uid == "" {
		chainCount(chainNoUID)
		return false
	}
	pixels := s.d.SyncPixels
	now := s.d.Now().Unix()
	t, err := parseSyncCookie(ctx.Request.Header.Cookie(SyncCookieName), pixels, now)
	if err != nil {
		syncBadChainCookie.Inc()
	}
	interval := int64(s.syncInterval() / time.Second)
	if after != "" {
		recorded := false
		for i := range pixels {
			recorded = recorded || pixels[i].Name == after && t[i] != 0 && now-t[i] < interval
		}
		if !recorded {
			chainCount(chainNotSynced)
			return false
		}
	}
	next := -1
	for i := range pixels {
		if t[i] == 0 || now-t[i] >= interval {
			next = i
			break
		}
	}
	if next < 0 {
		chainCount(chainRecent)
		return false
	}
	t[next] = now
	var buf [maxSyncCookie]byte
	setBrowserCookie(ctx, SyncCookieName, appendSyncCookie(buf[:0], &t, pixels, now, interval), time.Duration(interval)*time.Second)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("Location", substituteUID(pixels[next].URL, uid))
	ctx.SetStatusCode(fasthttp.StatusFound)
	chainCount(chainRedirect)
	syncCount(pixels[next].Name, syncChained)
	return true
}
