package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chaser-dsp/chaser/admin"
	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/bidder"
	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/creative"
	"github.com/chaser-dsp/chaser/lookalike"
	"github.com/chaser-dsp/chaser/pacing"
	"github.com/chaser-dsp/chaser/store"
)

// serveConfig is the configuration of `chaser serve`. Every flag may also be
// set by a CHASER_* environment variable (flag name upper-cased, dashes to
// underscores); a flag on the command line wins.
type serveConfig struct {
	DataDir   string // default ./data
	BidAddr   string // default 127.0.0.1:8080
	AdminAddr string // default 127.0.0.1:8081
	PublicURL string // default http://<bid-addr>
	Demo      bool   // seed demo data on first start
	LogLevel  string // debug, info, warn, error; default info
	// GDPRVendorID is Chaser's IAB Global Vendor List id; default 0 (not
	// registered: no bid on requests under GDPR). See bidder/consent.go.
	GDPRVendorID uint16
	// FXRates are exchange rates for bid floors in other currencies, units
	// per USD ("EUR=0.92,KRW=1380"); default pacing.DefaultRates.
	FXRates string
	// Cookie sync (bidder/sync.go): hosts /sync may redirect to (exact or
	// "*.suffix"), exchange names /setuid and /openrtb2/bid/NAME accept,
	// and the lifetime of Chaser's cookie in days (default 365).
	SyncHosts     []string
	SyncExchanges []string
	CookieDays    int
	// SyncPixels are the exchange sync URLs GET /px?sync=1 chains to
	// ("name=URL,…", hosts on SyncHosts; default none), SyncInterval how
	// long a browser is not re-synced with one (default 7 days).
	SyncPixels   []bidder.SyncPixel
	SyncInterval time.Duration
	// MaxInFlight is the most bid requests handled at once; beyond it the
	// bid endpoint answers a fast 204 (bidder/shed.go). Default
	// bidder.DefaultMaxInFlight.
	MaxInFlight int

	settings []setting // every flag's value and where it came from, for the start-up log
}

// setting is one configuration value as printed at start.
type setting struct{ name, value, source string }

func parseServeFlags(args []string) (serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.DataDir, "data-dir", "./data", "data directory (Pebble DB and generated secrets)")
	fs.StringVar(&c.BidAddr, "bid-addr", "127.0.0.1:8080", "public address: bid requests, notices, pixel")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:8081", "admin API address")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL of the public port in notices and clicks (default http://<bid-addr>)")
	fs.BoolVar(&c.Demo, "demo", false, "seed a demo advertiser, feed, audience and campaign on first start")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.FXRates, "fx-rates", "", "exchange rates for bid floors, units per USD, e.g. EUR=0.92,KRW=1380 (default: built-in table)")
	syncHosts := fs.String("sync-hosts", "", "hosts GET /sync may redirect to, comma-separated: exact host or *.suffix (default none: /sync refuses every redirect)")
	syncExchanges := fs.String("sync-exchanges", "", "exchange names for GET /setuid and POST /openrtb2/bid/NAME, comma-separated (a-z, 0-9, _, -)")
	fs.IntVar(&c.CookieDays, "cookie-days", 365, "lifetime of Chaser's uid cookie in days")
	syncPixels := fs.String("sync-pixels", "", "exchange sync URLs GET /px?sync=1 chains to, name=URL comma-separated, URL with ${UID} and its host on --sync-hosts (default none)")
	fs.DurationVar(&c.SyncInterval, "sync-interval", bidder.DefaultSyncInterval, "how long a browser is not re-synced with a --sync-pixels exchange")
	fs.IntVar(&c.MaxInFlight, "max-inflight", bidder.DefaultMaxInFlight, "most bid requests handled at once; beyond it a fast 204 (load shedding)")
	vendor := fs.Uint("gdpr-vendor-id", 0, "Chaser's IAB Global Vendor List id, whose TCF consent requests under GDPR must carry (0: not registered, no bid under GDPR)")
	// Environment first, so command-line flags override it.
	var envErr error
	source := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		env := "CHASER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %w", env, err)
			}
			source[f.Name] = "env " + env
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	fs.Visit(func(f *flag.Flag) { source[f.Name] = "flag" })
	fs.VisitAll(func(f *flag.Flag) {
		src := source[f.Name]
		if src == "" {
			src = "default"
		}
		c.settings = append(c.settings, setting{f.Name, maskSetting(f.Name, f.Value.String()), src})
	})
	if *vendor > 65535 {
		return c, fmt.Errorf("--gdpr-vendor-id %d: at most 65535", *vendor)
	}
	c.GDPRVendorID = uint16(*vendor)
	if c.MaxInFlight < 1 {
		return c, fmt.Errorf("--max-inflight %d: want at least 1", c.MaxInFlight)
	}
	if c.CookieDays < 1 || c.CookieDays > 400 { // browsers cap cookies at 400 days
		return c, fmt.Errorf("--cookie-days %d: want 1 to 400", c.CookieDays)
	}
	c.SyncHosts, c.SyncExchanges = splitList(strings.ToLower(*syncHosts)), splitList(*syncExchanges)
	for _, n := range c.SyncExchanges {
		if !audience.ValidExchangeName(n) {
			return c, fmt.Errorf("--sync-exchanges: bad name %q (a-z, 0-9, _, -; at most 32)", n)
		}
	}
	pixels, err := bidder.ParseSyncPixels(*syncPixels, c.SyncHosts)
	if err != nil {
		return c, fmt.Errorf("--sync-pixels: %w", err)
	}
	c.SyncPixels = pixels
	if c.SyncInterval < time.Minute || c.SyncInterval > 400*24*time.Hour {
		return c, fmt.Errorf("--sync-interval %s: want 1m to 400 days", c.SyncInterval)
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.BidAddr
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	for i := range c.settings {
		if c.settings[i].name == "public-url" && c.settings[i].source == "default" {
			c.settings[i].value = maskSetting("public-url", c.PublicURL)
		}
	}
	if !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		return c, fmt.Errorf("--public-url must start with http:// or https://")
	}
	return c, nil
}

// maskSetting hides secrets in a printed setting: values of flags named like
// secrets, and passwords in URLs.
func maskSetting(name, v string) string {
	if v == "" {
		return v
	}
	for _, s := range []string{"secret", "token", "password", "key"} {
		if strings.Contains(name, s) {
			return "***"
		}
	}
	if u, err := url.Parse(v); err == nil && u.User != nil {
		u.User = url.User("***")
		return u.String()
	}
	return v
}

// logConfig prints the configuration at start: every flag with its source
// (default, env CHASER_…, flag), and where the secrets come from, masked.
func logConfig(log *slog.Logger, c serveConfig, secrets ...setting) {
	attrs := make([]any, 0, len(c.settings)+len(secrets))
	for _, s := range append(append([]setting{}, c.settings...), secrets...) {
		attrs = append(attrs, slog.Group(strings.ReplaceAll(s.name, "-", "_"), "value", s.value, "from", s.source))
	}
	log.Info("config", attrs...)
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// secretSetting says, masked, where a secret comes from.
func secretSetting(env, dataDir, file string) setting {
	if os.Getenv(env) != "" {
		return setting{env, "***", "env " + env}
	}
	return setting{env, "***", "file " + filepath.Join(dataDir, file)}
}

// loadSecret returns the secret from env, or from file under dataDir,
// generating it (mode 0600) on first start.
func loadSecret(log *slog.Logger, env, dataDir, file string) (string, error) {
	if v := os.Getenv(env); v != "" {
		if len(v) < 16 {
			return "", fmt.Errorf("%s must be at least 16 characters", env)
		}
		log.Info("secret from environment", "name", env)
		return v, nil
	}
	path := filepath.Join(dataDir, file)
	if b, err := os.ReadFile(path); err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) >= 16 {
			log.Info("secret loaded", "name", env, "file", path)
			return s, nil
		}
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	s := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	log.Info("secret generated", "name", env, "file", path)
	return s, nil
}

func runServe(args []string) error {
	cfg, err := parseServeFlags(args)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel)
	slog.SetDefault(log)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	secret, err := loadSecret(log, "CHASER_SECRET", cfg.DataDir, "secret")
	if err != nil {
		return err
	}
	adminToken, err := loadSecret(log, "CHASER_ADMIN_TOKEN", cfg.DataDir, "admin_token")
	if err != nil {
		return err
	}
	logConfig(log, cfg, secretSetting("CHASER_SECRET", cfg.DataDir, "secret"), secretSetting("CHASER_ADMIN_TOKEN", cfg.DataDir, "admin_token"))
	app, err := openApp(cfg.DataDir, []byte(secret), adminToken, cfg.PublicURL, log, time.Now, withGDPRVendor(cfg.GDPRVendorID),
		withSync(cfg.SyncHosts, cfg.SyncExchanges, time.Duration(cfg.CookieDays)*24*time.Hour),
		withSyncPixels(cfg.SyncPixels, cfg.SyncInterval), withMaxInFlight(cfg.MaxInFlight))
	if err != nil {
		return err
	}
	defer app.Close()
	if cfg.FXRates != "" {
		rates, err := pacing.ParseRates(cfg.FXRates)
		if err != nil {
			return fmt.Errorf("--fx-rates: %w", err)
		}
		app.pacer.SetRates(rates)
	}
	if cfg.Demo {
		if err := seedDemo(app, log); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Serve(ctx, cfg.BidAddr, cfg.AdminAddr)
}

// appOptions are optional settings of openApp.
type appOptions struct {
	gdprVendorID  uint16
	syncHosts     []string
	syncExchanges []string
	cookieMaxAge  time.Duration
	syncPixels    []bidder.SyncPixel
	syncInterval  time.Duration
	population    lookalike.PopulationOptions
	maxInFlight   int // 0: bidder.DefaultMaxInFlight
}

// appOption sets an appOptions field.
type appOption func(*appOptions)

// withGDPRVendor sets Chaser's IAB vendor id for TCF consent checks.
func withGDPRVendor(id uint16) appOption { return func(o *appOptions) { o.gdprVendorID = id } }

// withSync sets the cookie sync allow-list, exchange names and cookie lifetime.
func withSync(hosts, exchanges []string, cookieMaxAge time.Duration) appOption {
	return func(o *appOptions) { o.syncHosts, o.syncExchanges, o.cookieMaxAge = hosts, exchanges, cookieMaxAge }
}

// withSyncPixels sets the sync pixels /px?sync=1 chains to and the re-sync interval.
func withSyncPixels(p []bidder.SyncPixel, interval time.Duration) appOption {
	return func(o *appOptions) { o.syncPixels, o.syncInterval = p, interval }
}

// withMaxInFlight sets the bid endpoint's in-flight limit (load shedding).
func withMaxInFlight(n int) appOption { return func(o *appOptions) { o.maxInFlight = n } }

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// withPopulation sets the lookalike population's options (tests: sample every call).
func withPopulation(po lookalike.PopulationOptions) appOption {
	return func(o *appOptions) { o.population = po }
}

// app is the wired program: one DB, the domain services, both servers.
type app struct {
	// ready is set once the program can serve (filters loaded, listening)
	// and cleared when shutdown starts; /readyz on both ports reports it.
	ready      atomic.Bool
	log        *slog.Logger
	closeDB    func() error
	campaigns  *campaign.Store
	audiences  *audience.Manager
	exchIDs    *audience.ExchangeIDs
	population *lookalike.Population
	lookalikes *audience.Lookalikes
	catalog    *creative.Catalog
	recs       *creative.Recommenders
	pacer      *pacing.Pacer
	public     *bidder.Server
	admin      *admin.API
}

func openApp(dataDir string, secret []byte, adminToken, publicURL string, log *slog.Logger, now func() time.Time, opts ...appOption) (*app, error) {
	var o appOptions
	for _, opt := range opts {
		opt(&o)
	}
	db, err := store.Open(filepath.Join(dataDir, "db"))
	if err != nil {
		return nil, err
	}
	a := &app{log: log, closeDB: db.Close}
	fail := func(err error) (*app, error) { a.closeLookalikes(); db.Close(); return nil, err }
	if a.campaigns, err = campaign.Open(db, now); err != nil {
		return fail(err)
	}
	if a.catalog, err = creative.OpenCatalog(db); err != nil {
		return fail(err)
	}
	a.recs = creative.NewRecommenders(creative.RecommenderOptions{})
	for _, adv := range a.catalog.Advertisers() {
		a.recs.SetFeed(a.catalog.Feed(adv))
	}
	a.catalog.OnReplace(a.recs.SetFeed)
	t0 := time.Now()
	if a.audiences, err = audience.NewManager(db, audience.Options{Secret: secret, Now: now, Logger: log,
		Events: audience.EventOptions{CategoryOf: a.categoryOf, OnEvent: a.observeEvent}}); err != nil {
		return fail(err)
	}
	// Category leaves of rule audiences read the feed: re-evaluate on a new one.
	a.catalog.OnReplace(func(f *creative.Feed) { a.audiences.RefreshRulesAsync(f.AdvertiserID) })
	log.Info("audience filters loaded", "audiences", len(a.audiences.List("")), "took", time.Since(t0).Round(time.Millisecond))
	if err := a.warmRecommenders(); err != nil { // recwarm.go: before anything listens
		return fail(err)
	}
	if err := a.openLookalikes(db, now, o.population); err != nil {
		return fail(err)
	}
	signer := pacing.NewSigner(secret)
	if a.pacer, err = pacing.New(db, signer, a.campaigns, pacing.Options{Now: now, Logger: log}); err != nil {
		return fail(err)
	}
	if a.exchIDs, err = audience.NewExchangeIDs(db, a.audiences.Pseudonymizer(), o.syncExchanges, 0, now); err != nil {
		return fail(err)
	}
	a.public = bidder.New(bidder.Deps{SyncHosts: o.syncHosts, Exchanges: a.exchIDs, CookieMaxAge: o.cookieMaxAge,
		SyncPixels: o.syncPixels, SyncInterval: o.syncInterval, Campaigns: a.campaigns, Audiences: a.audiences, Catalog: a.catalog,
		Pacer: a.pacer, Notices: signer, Clicks: creative.NewClickSigner(secret), Recommenders: a.recs, BaseURL: publicURL, Now: now, Logger: log,
		GDPRVendorID: o.gdprVendorID, Ready: a.ready.Load, Population: a.population, MaxInFlight: o.maxInFlight})
	a.admin = admin.New(admin.Deps{DB: db, Campaigns: a.campaigns, Audiences: a.audiences, Catalog: a.catalog,
		Pacer: a.pacer, AdminToken: adminToken, Now: now, Logger: log,
		Erasers: erasers(a, log), Ready: a.ready.Load, Lookalikes: a.lookalikes})
	return a, nil
}

// erasers are the stores POST /v1/privacy/erase must clear of a person, in
// order: audiences and profiles, then pacing's frequency counters.
func erasers(a *app, log *slog.Logger) []admin.Eraser {
	var out []admin.Eraser
	if e, ok := any(a.audiences).(admin.Eraser); ok {
		out = append(out, e)
	} else {
		log.Warn("audience.Manager has no Erase method in this build: POST /v1/privacy/erase answers 503")
	}
	out = append(out, eraseFunc(func(p audience.Pseudonym) error { return a.exchIDs.Erase(p) })) // cookie sync mappings
	if a.population != nil {
		out = append(out, eraseFunc(func(p audience.Pseudonym) error { return a.population.Erase(lookalike.UserID(p)) }))
	}
	return append(out, eraseFunc(func(p audience.Pseudonym) error { return a.pacer.EraseUser(p) }))
}

// eraseFunc adapts a function to admin.Eraser.
type eraseFunc func(audience.Pseudonym) error

func (f eraseFunc) Erase(p audience.Pseudonym) error { return f(p) }

// maintain runs the periodic upkeep of the domain services until ctx ends:
// audience expiry (ttl_days), filter rebuilds after removals or erasure,
// rule-audience members whose time window passed.
func (a *app) maintain(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := a.audiences.Maintain(now); err != nil {
				a.log.Error("audience maintenance", "err", err)
			}
			if _, err := a.audiences.SweepRules(now); err != nil { // rule windows that passed
				a.log.Error("rule audience sweep", "err", err)
			}
			a.maintainLookalikes(now)
			a.recs.RebuildAll()
		}
	}
}

// categoryOf is a product's category in its advertiser's feed (rule
// audiences' category leaves).
func (a *app) categoryOf(adv, product string) string {
	if f := a.catalog.Feed(adv); f != nil {
		if p := f.ByID[product]; p != nil {
			return p.Category
		}
	}
	return ""
}

// historyKinds maps event types to the recommender's kinds of history.
var historyKinds = map[string]uint8{
	audience.EventProductView: creative.KindView,
	audience.EventAddToCart:   creative.KindCart,
	audience.EventPurchase:    creative.KindPurchase,
}

// observeEvent feeds a stored site event to the lookalike population and to
// the advertiser's recommender (co-views, co-carts, co-purchases), with the
// user's history before it.
func (a *app) observeEvent(ev audience.Event, before *audience.Profile) {
	if a.lookalikes != nil {
		// Advertiser-site behaviour is a lookalike feature too (categories viewed, carts, purchases).
		cat := ""
		if len(ev.Products) > 0 {
			cat = a.categoryOf(ev.AdvertiserID, ev.Products[0])
		}
		a.lookalikes.ObserveSiteEvent(ev.User, ev.AdvertiserID, ev.Type, cat)
	}
	kind, ok := historyKinds[ev.Type]
	if !ok || len(ev.Products) == 0 {
		return
	}
	hist := make([]creative.HistoryItem, 0, len(before.Events))
	for _, e := range before.Events {
		if k, ok := historyKinds[e.Type]; ok {
			for _, p := range e.Products {
				hist = append(hist, creative.HistoryItem{Product: p, Kind: k, Unix: e.Unix})
			}
		}
	}
	for _, p := range ev.Products {
		a.recs.Observe(ev.AdvertiserID, hist, creative.HistoryItem{Product: p, Kind: kind, Unix: ev.Time.Unix()},
			a.categoryOf(ev.AdvertiserID, p))
	}
}

// Close flushes and closes the store.
func (a *app) Close() error {
	if a.closeDB == nil {
		return nil
	}
	a.closeLookalikes()
	a.audiences.Close() // also stops rule back-fills
	err := a.closeDB()
	a.closeDB = nil
	return err
}

// Serve runs both servers until ctx ends, then shuts down gracefully: stop
// accepting, finish in-flight requests, then the caller closes the store.
func (a *app) Serve(ctx context.Context, bidAddr, adminAddr string) error {
	bl, err := net.Listen("tcp", bidAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", bidAddr, err)
	}
	al, err := net.Listen("tcp", adminAddr)
	if err != nil {
		bl.Close()
		return fmt.Errorf("listen %s: %w", adminAddr, err)
	}
	return a.ServeListeners(ctx, bl, al)
}

// ServeListeners is Serve on given listeners (tests use port 0).
func (a *app) ServeListeners(ctx context.Context, bl, al net.Listener) error {
	adminSrv := &http.Server{Handler: a.admin, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 2)
	go func() { errc <- a.public.Serve(bl) }()
	go func() {
		if err := adminSrv.Serve(al); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
			return
		}
		errc <- nil
	}()
	a.ready.Store(true)
	pctx, pstop := context.WithCancel(context.Background())
	pdone := make(chan struct{})
	go func() { a.pacer.Run(pctx); close(pdone) }() // pacing controller, reservations, reports
	mdone := make(chan struct{})
	go func() { a.maintain(pctx, time.Minute); close(mdone) }() // audience expiry, rebuilds
	sdone := make(chan struct{})
	go func() { a.exchIDs.RunSweeper(pctx, audience.DefaultExchangeIDSweepEvery, a.log); close(sdone) }() // expired cookie sync mappings
	a.log.Info("chaser serving", "bid_addr", bl.Addr().String(), "admin_addr", al.Addr().String())
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	a.ready.Store(false)
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.public.Shutdown(sctx); err != nil {
		a.log.Warn("public shutdown", "err", err)
	}
	if err := adminSrv.Shutdown(sctx); err != nil {
		a.log.Warn("admin shutdown", "err", err)
	}
	pstop()
	<-pdone // flushed before the caller closes the store
	<-mdone
	<-sdone
	return serveErr
}
