package admin

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/creative"
	"github.com/chaser-dsp/chaser/pacing"
)

// MaxJSONBody bounds a JSON request body.
const MaxJSONBody = 1 << 20

// MaxUploadBody bounds an upload body (member lists, feeds).
const MaxUploadBody = 4 << 30

// Deps are the domain services the admin API drives.
type Deps struct {
	DB         *pebble.DB
	Campaigns  *campaign.Store
	Audiences  *audience.Manager
	Catalog    *creative.Catalog
	Pacer      *pacing.Pacer
	AdminToken string
	Now        func() time.Time
	Logger     *slog.Logger
	// Erasers are called in order by POST /v1/privacy/erase with the
	// pseudonym of the person to forget. Wire every store that keeps
	// per-person data: the audience manager (memberships, profiles, identity
	// links, the erase log that stops future matching) and pacing's
	// frequency counters. See privacy.go.
	Erasers []Eraser
	// Ready reports whether the program is ready to serve (audience filters
	// loaded); GET /readyz answers 503 until it is. Nil means always ready.
	Ready func() bool
	// AuthLimit bounds failed authentications per client IP; zero fields
	// take the defaults of DefaultAuthLimit.
	AuthLimit AuthLimit
	// Lookalikes, if set, builds lookalike audiences (type "lookalike" in
	// POST /v1/audiences).
	Lookalikes *audience.Lookalikes
}

// API is the admin HTTP handler.
type API struct {
	d      Deps
	mux    *http.ServeMux
	routes []route
	lim    *limiter
}

// New returns the admin API handler.
func New(d Deps) *API {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	a := &API{d: d, mux: http.NewServeMux(), lim: newLimiter(d.AuthLimit, d.Now)}
	a.routes = a.table()
	for _, rt := range a.routes {
		a.mux.Handle(rt.pattern(), a.wrap(rt))
	}
	return a
}

// access is who may call a route.
type access int

const (
	public        access = iota // no key
	anyKey                      // admin or advertiser key; handlers scope by advertiser
	adminOnly                   // the admin key; advertiser keys get 403
	ownAdvertiser               // path {adv} must be the key's advertiser (others: 404)
)

func (x access) String() string {
	return [...]string{"public", "any key", "admin key", "own advertiser"}[x]
}

// route is one entry of the route table.
type route struct {
	method string // GET, POST, PUT, PATCH, DELETE
	path   string // net/http pattern path, {name} for path values
	access access
	h      handler
	// upload names the kind of upload job the route runs (counted in
	// chaser_upload_jobs_total and chaser_upload_jobs_running), or "".
	upload string
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// table is the admin API's single route table: New registers it, the
// OpenAPI test checks it against openapi.yaml, the authorization test walks
// it. Add a route here and document it in openapi.yaml.
func (a *API) table() []route {
	return []route{
		{method: "GET", path: "/healthz", access: public, h: a.healthz},
		{method: "GET", path: "/readyz", access: public, h: a.readyz},
		{method: "GET", path: "/metrics", access: public, h: a.metrics},
		{method: "GET", path: "/openapi.yaml", access: public, h: a.openapi},
		{method: "GET", path: "/debug/pprof/{$}", access: adminOnly, h: a.pprof},
		{method: "GET", path: "/debug/pprof/{profile}", access: adminOnly, h: a.pprof},

		{method: "POST", path: "/v1/advertisers", access: adminOnly, h: a.createAdvertiser},
		{method: "GET", path: "/v1/advertisers", access: anyKey, h: a.listAdvertisers},
		{method: "GET", path: "/v1/advertisers/{adv}", access: ownAdvertiser, h: a.getAdvertiser},
		{method: "PATCH", path: "/v1/advertisers/{adv}", access: adminOnly, h: a.patchAdvertiser},
		{method: "POST", path: "/v1/advertisers/{adv}/keys", access: adminOnly, h: a.createKey},
		{method: "GET", path: "/v1/advertisers/{adv}/keys", access: ownAdvertiser, h: a.listKeys},
		{method: "DELETE", path: "/v1/advertisers/{adv}/keys/{key_id}", access: ownAdvertiser, h: a.revokeKey},
		{method: "PUT", path: "/v1/advertisers/{adv}/products", access: ownAdvertiser, h: a.putProducts, upload: "product_feed"},
		{method: "GET", path: "/v1/advertisers/{adv}/products", access: ownAdvertiser, h: a.getProducts},
		{method: "GET", path: "/v1/advertisers/{adv}/products/{pid}", access: ownAdvertiser, h: a.getProduct},

		{method: "POST", path: "/v1/campaigns", access: anyKey, h: a.createCampaign},
		{method: "GET", path: "/v1/campaigns", access: anyKey, h: a.listCampaigns},
		{method: "GET", path: "/v1/campaigns/{id}", access: anyKey, h: a.getCampaign},
		{method: "PATCH", path: "/v1/campaigns/{id}", access: anyKey, h: a.patchCampaign},
		{method: "DELETE", path: "/v1/campaigns/{id}", access: anyKey, h: a.deleteCampaign},
		{method: "GET", path: "/v1/campaigns/{id}/report", access: anyKey, h: a.campaignReport},

		{method: "POST", path: "/v1/audiences", access: anyKey, h: a.createAudience},
		{method: "GET", path: "/v1/audiences", access: anyKey, h: a.listAudiences},
		{method: "GET", path: "/v1/audiences/{id}", access: anyKey, h: a.getAudience},
		{method: "DELETE", path: "/v1/audiences/{id}", access: anyKey, h: a.deleteAudience},
		{method: "POST", path: "/v1/audiences/{id}/members", access: anyKey, h: a.uploadMembers, upload: "audience_members"},
		{method: "DELETE", path: "/v1/audiences/{id}/members", access: anyKey, h: a.removeMembers, upload: "audience_members_removal"},
		{method: "POST", path: "/v1/audiences/{id}/contains", access: anyKey, h: a.containsMembers},
		{method: "GET", path: "/v1/audiences/{id}/uploads", access: anyKey, h: a.listUploads},
		{method: "POST", path: "/v1/audiences/estimate", access: anyKey, h: a.estimateAudience},
		{method: "POST", path: "/v1/events", access: anyKey, h: a.postEvents},

		{method: "POST", path: "/v1/privacy/erase", access: adminOnly, h: a.erase},
	}
}

// ServeHTTP implements http.Handler; it recovers and counts panics and
// answers unknown paths and methods in the API's JSON error form.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			metrics.GetOrCreateCounter(`chaser_admin_panics_total`).Inc()
			a.d.Logger.Error("admin: panic", "method", r.Method, "pattern", r.Pattern, "panic", fmt.Sprint(v))
			writeError(w, http.StatusInternalServerError, "internal error", "")
		}
	}()
	h, pattern := a.mux.Handler(r)
	if pattern == "" {
		unmatched.Inc()
		h.ServeHTTP(&jsonErrorWriter{ResponseWriter: w}, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

var unmatched = metrics.NewCounter(`chaser_admin_requests_total{route="unmatched",code="4xx"}`)

// jsonErrorWriter turns the mux's plain-text 404 and 405 answers into the
// API's {"error": ...} form.
type jsonErrorWriter struct {
	http.ResponseWriter
	wrote bool
}

func (j *jsonErrorWriter) WriteHeader(code int) {
	if j.wrote {
		return
	}
	j.wrote = true
	msg := "no such path"
	if code == http.StatusMethodNotAllowed {
		msg = "method not allowed on this path (see Allow)"
	}
	writeError(j.ResponseWriter, code, msg, "")
}

func (j *jsonErrorWriter) Write(b []byte) (int, error) {
	if !j.wrote {
		j.WriteHeader(http.StatusOK)
	}
	return len(b), nil
}

// principal is who a request acts as.
type principal struct {
	admin      bool
	advertiser string
}

// may reports whether p may see advertiser adv's resources.
func (p principal) may(adv string) bool { return p.admin || (adv != "" && p.advertiser == adv) }

func (p principal) String() string {
	if p.admin {
		return "admin"
	}
	if p.advertiser != "" {
		return p.advertiser
	}
	return "anonymous"
}

type handler func(w http.ResponseWriter, r *http.Request, p principal)

var (
	authFailures  = metrics.NewCounter(`chaser_admin_auth_failures_total`)
	authThrottled = metrics.NewCounter(`chaser_admin_auth_throttled_total`)
)

// wrap turns a route into an http.Handler: rate limit of failed keys,
// authentication, access check, metrics and an audit log line.
func (a *API) wrap(rt route) http.Handler {
	rm := newRouteMetrics(rt)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var p principal
		defer func() {
			rm.observe(sw.code(), time.Since(start))
			lvl := slog.LevelDebug
			if r.Method != http.MethodGet || sw.code() >= 500 {
				lvl = slog.LevelInfo
			}
			a.d.Logger.Log(r.Context(), lvl, "admin request", "route", rt.pattern(), "status", sw.code(),
				"by", p.String(), "took", time.Since(start).Round(time.Microsecond))
		}()
		if rt.upload != "" {
			defer uploadJob(rt.upload)(sw)
		}
		if rt.access == public {
			rt.h(sw, r, p)
			return
		}
		ip := clientIP(r)
		if wait := a.lim.wait(ip); wait > 0 {
			authThrottled.Inc()
			sw.Header().Set("Retry-After", fmt.Sprint(int((wait+time.Second-1)/time.Second)))
			writeError(sw, http.StatusTooManyRequests, "too many failed authentications from this address; retry later", "")
			return
		}
		var ok bool
		if p, ok = a.authenticate(r); !ok {
			authFailures.Inc()
			a.lim.fail(ip)
			sw.Header().Set("WWW-Authenticate", `Bearer realm="chaser"`)
			writeError(sw, http.StatusUnauthorized, "missing or invalid API key", "")
			return
		}
		switch rt.access {
		case adminOnly:
			if !p.admin {
				writeError(sw, http.StatusForbidden, "this needs the admin key", "")
				return
			}
		case ownAdvertiser:
			if !p.may(r.PathValue("adv")) {
				writeError(sw, http.StatusNotFound, "advertiser not found", "")
				return
			}
		}
		rt.h(sw, r, p)
	})
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request, _ principal) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

func (a *API) readyz(w http.ResponseWriter, _ *http.Request, _ principal) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if a.d.Ready != nil && !a.d.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready\n")
		return
	}
	io.WriteString(w, "ready\n")
}

//go:embed openapi.yaml
var openapiYAML []byte

func (a *API) openapi(w http.ResponseWriter, _ *http.Request, _ principal) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(openapiYAML)
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

var errorCounters [600]*metrics.Counter

func init() {
	for code := 400; code < 600; code++ {
		if http.StatusText(code) != "" {
			errorCounters[code] = metrics.NewCounter(fmt.Sprintf(`chaser_admin_errors_total{status="%d"}`, code))
		}
	}
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	if status >= 0 && status < len(errorCounters) && errorCounters[status] != nil {
		errorCounters[status].Inc()
	}
	writeJSON(w, status, apiError{Error: msg, Field: field})
}

// writeDomainError maps a domain error to a status.
func (a *API) writeDomainError(w http.ResponseWriter, err error) {
	var cf *campaign.FieldError
	var af *audience.FieldError
	switch {
	case errors.As(err, &cf):
		writeError(w, http.StatusBadRequest, cf.Msg, cf.Field)
	case errors.As(err, &af):
		writeError(w, http.StatusBadRequest, af.Msg, af.Field)
	case errors.Is(err, campaign.ErrNotFound), errors.Is(err, audience.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found", "")
	case errors.Is(err, creative.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error(), "body")
	default:
		a.d.Logger.Error("admin: internal error", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error", "")
	}
}

// decodeJSON reads a bounded JSON body into v, rejecting unknown fields and
// trailing data.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "content type must be application/json", "")
		return false
	}
	return decodeBody(w, http.MaxBytesReader(w, r.Body, MaxJSONBody), v)
}

// readJSON reads a bounded application/json body.
func readJSON(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "content type must be application/json", "")
		return nil, false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	if err == nil && len(bytes.TrimSpace(b)) == 0 {
		err = io.EOF
	}
	if err != nil {
		writeJSONError(w, err)
		return nil, false
	}
	return b, true
}

func decodeBody(w http.ResponseWriter, body io.Reader, v any) bool {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON value")
		}
	}
	if err != nil {
		writeJSONError(w, err)
		return false
	}
	return true
}

// writeJSONError answers a body that did not decode, naming the field when
// the decoder knows it.
func writeJSONError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	var fe *campaign.FieldError
	var ute *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "body larger than 1 MiB", "")
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, fe.Msg, fe.Field)
	case errors.As(err, &ute):
		writeError(w, http.StatusBadRequest, "wrong type: want "+jsonKind(ute.Type.String()), ute.Field)
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "empty body: want a JSON object", "")
	default:
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			writeError(w, http.StatusBadRequest, "unknown field", strings.Trim(f, `"`))
			return
		}
		writeError(w, http.StatusBadRequest, "malformed JSON: "+msg, "")
	}
}

// jsonKind names a Go type the way an API user thinks of it.
func jsonKind(goType string) string {
	switch {
	case goType == "string":
		return "string"
	case goType == "bool":
		return "boolean"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case strings.HasPrefix(goType, "map[") || strings.HasPrefix(goType, "struct") || strings.Contains(goType, "."):
		return "object"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint") || strings.HasPrefix(goType, "float"):
		return "number"
	}
	return goType
}

func newSecret(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + fmt.Sprintf("%x", b)
}

// bodyAdvertiser settles which advertiser a request body acts for: an
// advertiser key defaults to, and may only name, its own (another one is
// 404, as if it did not exist); the advertiser must exist. It writes the
// error and returns false when the body cannot go on.
func (a *API) bodyAdvertiser(w http.ResponseWriter, p principal, id *string) bool {
	if !p.admin {
		if *id == "" {
			*id = p.advertiser
		}
		if *id != p.advertiser {
			writeError(w, http.StatusNotFound, "advertiser not found", "advertiser_id")
			return false
		}
	}
	if *id == "" {
		writeError(w, http.StatusBadRequest, "required", "advertiser_id")
		return false
	}
	if _, err := a.d.Campaigns.Advertiser(*id); err != nil {
		writeError(w, http.StatusBadRequest, "no such advertiser", "advertiser_id")
		return false
	}
	return true
}
