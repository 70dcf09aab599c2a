package admin

import (
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/chaser-dsp/chaser/audience"
)

// Privacy: erasing a person.
//
// POST /v1/privacy/erase {"type": T, "value": V} (admin key) normalises and
// pseudonymises the identifier exactly as uploads and the bid path do, then
// calls every Deps.Erasers with the pseudonym. Erasure is global — every
// advertiser's memberships and profiles, identity links, frequency counters —
// because a person is one person across tenants; that is why it needs the
// admin key (the operator handles data-subject requests). An advertiser that
// only wants someone out of its own lists removes them with
// DELETE /v1/audiences/{id}/members.
//
// The erase log (the audience package's "ers/" keys) keeps only the
// pseudonym and the time; the bid path and later uploads and events never
// match an erased pseudonym again, though bloom filters cannot delete.

// Eraser forgets everything a store holds about one pseudonymous person.
// Erase must be idempotent: a retried erase succeeds.
//
// Implementations: audience.Manager (memberships in every audience,
// profiles, identity links, the erase log). Hook for pacing: the frequency
// counters ("frq/" keys hold per-user impression counts) must implement
// Eraser and be appended to Deps.Erasers in cmd/chaser.
type Eraser interface {
	Erase(p audience.Pseudonym) error
}

var erasures = metrics.NewCounter(`chaser_privacy_erasures_total`)

func (a *API) erase(w http.ResponseWriter, r *http.Request, _ principal) {
	var in struct {
		Type  string `json:"type"`
		Value string `json:"value"`
		// Country is the calling code for a national phone number ("82").
		Country string `json:"country"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	t, err := audience.ParseIDType(in.Type)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "type")
		return
	}
	p, err := a.d.Audiences.Pseudonymizer().Raw(t, in.Value, in.Country)
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot normalise this "+t.String()+": "+err.Error(), "value")
		return
	}
	if len(a.d.Erasers) == 0 {
		a.d.Logger.Error("admin: erase requested but no eraser is wired", "pseudonym", p.String())
		writeError(w, http.StatusServiceUnavailable, "erasure is not available in this build", "")
		return
	}
	for _, e := range a.d.Erasers {
		if err := e.Erase(p); err != nil {
			a.d.Logger.Error("admin: erase failed", "pseudonym", p.String(), "err", err)
			writeError(w, http.StatusInternalServerError, "erase failed; it is safe to retry", "")
			return
		}
	}
	erasures.Inc()
	now := a.d.Now().UTC()
	a.d.Logger.Info("admin: person erased", "pseudonym", p.String())
	writeJSON(w, http.StatusOK, map[string]string{"pseudonym": p.String(), "erased_at": now.Format(time.RFC3339)})
}
