package bidder

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/creative"
	"github.com/chaser-dsp/chaser/lookalike"
	"github.com/chaser-dsp/chaser/pacing"
)

// Limits of the public port.
const (
	// MaxBodyBytes bounds a request body (compressed or not).
	MaxBodyBytes = 1 << 20
	// MaxImps bounds the imps of one bid request.
	MaxImps = 32
	// MaxEIDs bounds the extended ids read from one request.
	MaxEIDs = 16
)

// Deps are what the bidder reads and writes. All are required.
type Deps struct {
	Campaigns *campaign.Store
	Audiences *audience.Manager
	Catalog   *creative.Catalog
	Pacer     *pacing.Pacer
	Notices   *pacing.Signer
	Clicks    *creative.ClickSigner
	// Recommenders picks products per advertiser; nil falls back to the
	// user's own recent products and the feed order (creative.Pick).
	Recommenders *creative.Recommenders
	// BaseURL is the public base URL notices and clicks point at, e.g.
	// "https://bid.example.com". No trailing slash.
	BaseURL string
	// CookieMaxAge is the lifetime of Chaser's cookie (pixel.go); default
	// DefaultCookieMaxAge.
	CookieMaxAge time.Duration
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// GDPRVendorID is Chaser's IAB Global Vendor List id, whose TCF consent
	// a request under GDPR must carry (see consent.go). 0, the default,
	// means not registered: no request under GDPR gets a bid.
	GDPRVendorID uint16
	// Ready reports whether the program is ready to bid (filters loaded);
	// GET /readyz answers 503 until it is. Nil means always ready.
	Ready func() bool
	// Population, if set, is fed the context of requests from users with
	// consent (see population.go).
	Population *lookalike.Population
	// MaxInFlight bounds the bid requests handled at once; beyond it the
	// bidder sheds load with a fast 204 (see shed.go). 0 means
	// DefaultMaxInFlight.
	MaxInFlight int
	// SyncHosts are the hosts GET /sync may redirect to: exact, or
	// "*.suffix" for any subdomain (sync.go). Empty: every /sync is a 400.
	SyncHosts []string
	// Exchanges maps exchanges' user ids to Chaser uids (GET /setuid,
	// POST /openrtb2/bid/NAME); nil: /setuid stores nothing.
	Exchanges *audience.ExchangeIDs
	// SyncPixels are the exchange user-sync URLs GET /px?sync=1 chains to
	// (syncpixel.go); SyncInterval is how long a browser is not re-synced
	// with one of them (default DefaultSyncInterval).
	SyncPixels   []SyncPixel
	SyncInterval time.Duration
}

// Server is the public-port server.
type Server struct {
	d     Deps
	srv   *fasthttp.Server
	ak    kindCache // audience types for pricing (pace.go)
	lim   limiter   // in-flight bid requests (shed.go)
	plans planCache // audiences of the campaigns, resolved (match.go)
}

// New returns a Server for deps.
func New(d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.MaxInFlight <= 0 {
		d.MaxInFlight = DefaultMaxInFlight
	}
	s := &Server{d: d}
	s.lim.max = int64(d.MaxInFlight)
	s.srv = &fasthttp.Server{
		Handler:               s.Handle,
		Name:                  "chaser",
		MaxRequestBodySize:    MaxBodyBytes,
		ReadBufferSize:        16 << 10,
		WriteBufferSize:       16 << 10, // a multi-imp answer in one write(2)
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           60 * time.Second,
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		ErrorHandler:          s.transportError,
		Logger:                fasthttpLogger{d.Logger},
	}
	return s
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp", "msg", format)
}

var transportErrors = metrics.NewCounter(`chaser_public_transport_errors_total`)

// transportError answers requests fasthttp could not read (too large, bad
// headers): a 4xx, counted.
func (s *Server) transportError(ctx *fasthttp.RequestCtx, err error) {
	transportErrors.Inc()
	if _, ok := err.(*fasthttp.ErrSmallBuffer); ok {
		ctx.Error("request header too large", fasthttp.StatusRequestHeaderFieldsTooLarge)
		return
	}
	if err == fasthttp.ErrBodyTooLarge {
		bidBad("body_too_large").Inc()
		ctx.Error("request body larger than 1 MiB", fasthttp.StatusRequestEntityTooLarge)
		return
	}
	ctx.Error("bad request: "+err.Error(), fasthttp.StatusBadRequest)
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting connections and waits for in-flight requests.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

// Handle routes one request.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch string(path) {
	case "/openrtb2/bid":
		s.handleBid(ctx)
	case "/notice/win":
		s.handleWin(ctx, pacing.NoticeWin)
	case "/notice/bill":
		s.handleWin(ctx, pacing.NoticeBill)
	case "/notice/loss":
		s.handleLoss(ctx)
	case "/notice/imp":
		s.handleImp(ctx)
	case "/click":
		s.handleClick(ctx)
	case "/px":
		s.handlePixel(ctx)
	case "/sync":
		s.handleSync(ctx)
	case "/setuid":
		s.handleSetUID(ctx)
	case "/healthz":
		ctx.SetContentType("text/plain")
		ctx.SetBodyString("ok\n")
	case "/readyz":
		ctx.SetContentType("text/plain")
		if s.d.Ready != nil && !s.d.Ready() {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("not ready\n")
			return
		}
		ctx.SetBodyString("ready\n")
	default:
		if bidExchange(path) != nil { // /openrtb2/bid/NAME: see sync.go
			s.handleBid(ctx)
			return
		}
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}
