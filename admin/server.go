package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
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
	"github.com/chaser-dsp/chaser/store"
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
	Ledger     *pacing.Ledger
	AdminToken string
	Now        func() time.Time
	Logger     *slog.Logger
}

// API is the admin HTTP handler.
type API struct {
	d   Deps
	mux *http.ServeMux
}

// New returns the admin API handler.
func New(d Deps) *API {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	a := &API{d: d, mux: http.NewServeMux()}
	a.routes()
	return a
}

func (a *API) routes() {
	m := a.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	m.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		metrics.WritePrometheus(w, true)
	})
	m.HandleFunc("POST /v1/advertisers", a.auth(adminOnly, a.createAdvertiser))
	m.HandleFunc("GET /v1/advertisers", a.auth(adminOnly, a.listAdvertisers))
	m.HandleFunc("GET /v1/advertisers/{adv}", a.auth(ownAdvertiser, a.getAdvertiser))
	m.HandleFunc("POST /v1/advertisers/{adv}/keys", a.auth(adminOnly, a.createKey))
	m.HandleFunc("PUT /v1/advertisers/{adv}/products", a.auth(ownAdvertiser, a.putProducts))
	m.HandleFunc("GET /v1/advertisers/{adv}/products", a.auth(ownAdvertiser, a.getProducts))

	m.HandleFunc("POST /v1/campaigns", a.auth(anyKey, a.createCampaign))
	m.HandleFunc("GET /v1/campaigns", a.auth(anyKey, a.listCampaigns))
	m.HandleFunc("GET /v1/campaigns/{id}", a.auth(anyKey, a.getCampaign))
	m.HandleFunc("PATCH /v1/campaigns/{id}", a.auth(anyKey, a.patchCampaign))
	m.HandleFunc("DELETE /v1/campaigns/{id}", a.auth(anyKey, a.deleteCampaign))

	m.HandleFunc("POST /v1/audiences", a.auth(anyKey, a.createAudience))
	m.HandleFunc("GET /v1/audiences", a.auth(anyKey, a.listAudiences))
	m.HandleFunc("GET /v1/audiences/{id}", a.auth(anyKey, a.getAudience))
	m.HandleFunc("DELETE /v1/audiences/{id}", a.auth(anyKey, a.deleteAudience))
	m.HandleFunc("POST /v1/audiences/{id}/members", a.auth(anyKey, a.uploadMembers))
	m.HandleFunc("DELETE /v1/audiences/{id}/members", a.auth(anyKey, a.removeMembers))
	m.HandleFunc("POST /v1/audiences/{id}/contains", a.auth(anyKey, a.containsMembers))
}

// ServeHTTP implements http.Handler; it recovers and counts panics.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			metrics.GetOrCreateCounter(`chaser_admin_panics_total`).Inc()
			a.d.Logger.Error("admin: panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeError(w, http.StatusInternalServerError, "internal error", "")
		}
	}()
	a.mux.ServeHTTP(w, r)
}

// principal is who a request acts as.
type principal struct {
	admin      bool
	advertiser string
}

// may reports whether p may see advertiser adv's resources.
func (p principal) may(adv string) bool { return p.admin || (adv != "" && p.advertiser == adv) }

type access int

const (
	anyKey access = iota
	adminOnly
	ownAdvertiser // path {adv} must be the key's advertiser
)

type handler func(w http.ResponseWriter, r *http.Request, p principal)

func hashKey(k string) string {
	s := sha256.Sum256([]byte(k))
	return hex.EncodeToString(s[:])
}

type storedKey struct {
	Advertiser string    `json:"advertiser_id"`
	Created    time.Time `json:"created_at"`
	Revoked    bool      `json:"revoked,omitempty"`
}

func (a *API) authenticate(r *http.Request) (principal, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" || len(tok) > 256 {
		return principal{}, false
	}
	if a.d.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.d.AdminToken)) == 1 {
		return principal{admin: true}, true
	}
	v, err := store.Get(a.d.DB, []byte(store.PrefixAPIKey+hashKey(tok)))
	if err != nil {
		return principal{}, false
	}
	var k storedKey
	if json.Unmarshal(v, &k) != nil || k.Revoked {
		return principal{}, false
	}
	return principal{advertiser: k.Advertiser}, true
}

func (a *API) auth(acc access, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := a.authenticate(r)
		if !ok {
			metrics.GetOrCreateCounter(`chaser_admin_auth_failures_total`).Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="chaser"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid API key", "")
			return
		}
		switch acc {
		case adminOnly:
			if !p.admin {
				writeError(w, http.StatusForbidden, "this needs the admin key", "")
				return
			}
		case ownAdvertiser:
			if !p.may(r.PathValue("adv")) {
				writeError(w, http.StatusNotFound, "advertiser not found", "")
				return
			}
		}
		h(w, r, p)
	}
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

func writeError(w http.ResponseWriter, status int, msg, field string) {
	metrics.GetOrCreateCounter(fmt.Sprintf(`chaser_admin_errors_total{status="%d"}`, status)).Inc()
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

// decodeJSON reads a bounded JSON body into v, rejecting unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "content type must be application/json", "")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var fe *campaign.FieldError
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "body larger than 1 MiB", "")
		case errors.As(err, &fe):
			writeError(w, http.StatusBadRequest, fe.Msg, fe.Field)
		default:
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				writeError(w, http.StatusBadRequest, "wrong type: want "+ute.Type.String(), ute.Field)
			} else {
				writeError(w, http.StatusBadRequest, "malformed JSON: "+err.Error(), "")
			}
		}
		return false
	}
	return true
}

func newKey() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "chk_" + hex.EncodeToString(b[:])
}
