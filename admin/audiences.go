package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"github.com/chaser-dsp/chaser/audience"
)

// audienceTypes are the audience types this server creates through
// POST /v1/audiences. Rule and lookalike support add themselves here.
var audienceTypes = map[string]bool{audience.TypeList: true, audience.TypeRule: true}

// maxContainsIDs bounds one membership check.
const maxContainsIDs = 1000

func (a *API) audienceFor(w http.ResponseWriter, id string, p principal) (audience.Audience, bool) {
	au, err := a.d.Audiences.Get(id)
	if err != nil || !p.may(au.AdvertiserID) {
		writeError(w, http.StatusNotFound, "audience not found", "")
		return audience.Audience{}, false
	}
	return au, true
}

func (a *API) createAudience(w http.ResponseWriter, r *http.Request, p principal) {
	var in struct {
		AdvertiserID string          `json:"advertiser_id"`
		Name         string          `json:"name"`
		Type         string          `json:"type"`
		TTLDays      int             `json:"ttl_days"`
		Rule         json.RawMessage `json:"rule"`
		Lookalike    json.RawMessage `json:"lookalike"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if !a.bodyAdvertiser(w, p, &in.AdvertiserID) {
		return
	}
	if in.Type == "" {
		in.Type = audience.TypeList
	}
	if in.Type == audience.TypeLookalike && a.d.Lookalikes != nil {
		a.createLookalike(w, audience.Audience{AdvertiserID: in.AdvertiserID, Name: in.Name, Type: in.Type,
			TTLDays: in.TTLDays, Lookalike: in.Lookalike})
		return
	}
	if !audienceTypes[in.Type] {
		writeError(w, http.StatusBadRequest, "unsupported audience type "+truncateForError(in.Type), "type")
		return
	}
	au, err := a.d.Audiences.Create(audience.Audience{AdvertiserID: in.AdvertiserID, Name: in.Name, Type: in.Type,
		TTLDays: in.TTLDays, Rule: in.Rule, Lookalike: in.Lookalike})
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, au)
}

func truncateForError(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func (a *API) listAudiences(w http.ResponseWriter, r *http.Request, p principal) {
	adv := r.URL.Query().Get("advertiser_id")
	if !p.admin {
		if adv != "" && adv != p.advertiser {
			writeJSON(w, http.StatusOK, map[string]any{"audiences": []audience.Audience{}})
			return
		}
		adv = p.advertiser
	}
	listPage(w, r, "audiences", a.d.Audiences.List(adv), func(au *audience.Audience) string { return au.ID })
}

func (a *API) getAudience(w http.ResponseWriter, r *http.Request, p principal) {
	if au, ok := a.audienceFor(w, r.PathValue("id"), p); ok {
		writeJSON(w, http.StatusOK, au)
	}
}

// listUploads answers GET /v1/audiences/{id}/uploads: the audience's upload
// jobs, newest first, the running one with its live progress.
func (a *API) listUploads(w http.ResponseWriter, r *http.Request, p principal) {
	au, ok := a.audienceFor(w, r.PathValue("id"), p)
	if !ok {
		return
	}
	jobs, err := a.d.Audiences.Jobs(au.ID)
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	if jobs == nil {
		jobs = []audience.Job{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"uploads": jobs})
}

func (a *API) deleteAudience(w http.ResponseWriter, r *http.Request, p principal) {
	au, ok := a.audienceFor(w, r.PathValue("id"), p)
	if !ok {
		return
	}
	for _, c := range a.d.Campaigns.List(au.AdvertiserID) {
		for _, id := range append(append([]string{}, c.Targeting.Audiences...), c.Targeting.ExcludeAudiences...) {
			if id == au.ID {
				writeError(w, http.StatusConflict, "audience is used by campaign "+c.ID, "")
				return
			}
		}
	}
	if err := a.d.Audiences.Delete(au.ID); err != nil {
		a.writeDomainError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) uploadMembers(w http.ResponseWriter, r *http.Request, p principal) {
	a.members(w, r, p, false)
}

func (a *API) removeMembers(w http.ResponseWriter, r *http.Request, p principal) {
	a.members(w, r, p, true)
}

// members runs an upload (or removal) job synchronously: the answer is the
// finished job. While it runs, GET /v1/audiences/{id} shows its progress; a
// client that goes away leaves a failed job with what it applied.
func (a *API) members(w http.ResponseWriter, r *http.Request, p principal, remove bool) {
	au, ok := a.audienceFor(w, r.PathValue("id"), p)
	if !ok {
		return
	}
	if au.Type != audience.TypeList {
		writeError(w, http.StatusBadRequest, "members can only be uploaded to a list audience", "type")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/csv") &&
		!strings.HasPrefix(ct, "text/plain") && !strings.HasPrefix(ct, "application/gzip") &&
		!strings.HasPrefix(ct, "application/x-gzip") && !strings.HasPrefix(ct, "application/octet-stream") {
		writeError(w, http.StatusUnsupportedMediaType, "content type must be text/csv (plain or gzip)", "")
		return
	}
	var t audience.IDType
	if s := r.URL.Query().Get("id_type"); s != "" {
		var err error
		if t, err = audience.ParseIDType(s); err != nil {
			writeError(w, http.StatusBadRequest, err.Error(), "id_type")
			return
		}
	}
	job, err := a.d.Audiences.Upload(r.Context(), au.ID, http.MaxBytesReader(w, r.Body, MaxUploadBody),
		audience.UploadOptions{Type: t, Remove: remove, DefaultCountry: a.advertiserCountry(au.AdvertiserID),
			SizeHint: r.ContentLength})
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeJSON(w, http.StatusRequestEntityTooLarge, uploadError{Error: "body larger than the upload limit", Field: "body", Job: jobOrNil(job)})
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			// The client is gone (nobody reads this answer; it sets the status
			// the request metrics count); the job is recorded as failed.
			metrics.GetOrCreateCounter(`chaser_admin_uploads_abandoned_total`).Inc()
			writeJSON(w, http.StatusBadRequest, uploadError{Error: "upload interrupted: client disconnected", Job: jobOrNil(job)})
		default:
			var fe *audience.FieldError
			if errors.As(err, &fe) && job.ID != "" {
				writeJSON(w, http.StatusBadRequest, uploadError{Error: fe.Msg, Field: fe.Field, Job: &job})
				return
			}
			a.writeDomainError(w, err)
		}
		return
	}
	writeJSON(w, http.StatusOK, job)
}

// uploadError is an error answer that carries the failed job.
type uploadError struct {
	Error string        `json:"error"`
	Field string        `json:"field,omitempty"`
	Job   *audience.Job `json:"upload,omitempty"`
}

func jobOrNil(j audience.Job) *audience.Job {
	if j.ID == "" {
		return nil
	}
	return &j
}

// advertiserCountry is the calling code national phone numbers of adv's
// lists belong to.
func (a *API) advertiserCountry(adv string) string {
	if ad, err := a.d.Campaigns.Advertiser(adv); err == nil {
		return ad.Country
	}
	return ""
}

func (a *API) containsMembers(w http.ResponseWriter, r *http.Request, p principal) {
	au, ok := a.audienceFor(w, r.PathValue("id"), p)
	if !ok {
		return
	}
	var in struct {
		IDs []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"ids"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if len(in.IDs) > maxContainsIDs {
		writeError(w, http.StatusBadRequest, "at most 1000 ids per request", "ids")
		return
	}
	country := a.advertiserCountry(au.AdvertiserID)
	res := make([]bool, len(in.IDs))
	for i, id := range in.IDs {
		t, err := audience.ParseIDType(id.Type)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error(), "ids.type")
			return
		}
		ok, err := a.d.Audiences.Contains(au.ID, t, id.Value, country)
		if err != nil {
			a.writeDomainError(w, err)
			return
		}
		res[i] = ok
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": res})
}

// createLookalike creates a lookalike audience (status building) and queues
// its build; GET /v1/audiences/{id} shows the build's progress and quality.
func (a *API) createLookalike(w http.ResponseWriter, in audience.Audience) {
	au, err := a.d.Lookalikes.Create(in)
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, au)
}

// estimateAudience sizes a rule audience before it is saved: how many users
// with events at the advertiser the rule holds now.
func (a *API) estimateAudience(w http.ResponseWriter, r *http.Request, p principal) {
	var in struct {
		AdvertiserID string          `json:"advertiser_id"`
		Rule         json.RawMessage `json:"rule"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if !a.bodyAdvertiser(w, p, &in.AdvertiserID) {
		return
	}
	n, err := a.d.Audiences.Estimate(r.Context(), in.AdvertiserID, in.Rule)
	if err != nil {
		if r.Context().Err() != nil {
			return // the caller went away
		}
		a.writeDomainError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"size": n})
}
