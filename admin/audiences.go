package admin

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/chaser-dsp/chaser/audience"
)

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
	if !p.admin {
		if in.AdvertiserID == "" {
			in.AdvertiserID = p.advertiser
		}
		if in.AdvertiserID != p.advertiser {
			writeError(w, http.StatusNotFound, "advertiser not found", "advertiser_id")
			return
		}
	}
	if in.AdvertiserID == "" {
		writeError(w, http.StatusBadRequest, "required", "advertiser_id")
		return
	}
	if _, err := a.d.Campaigns.Advertiser(in.AdvertiserID); err != nil {
		writeError(w, http.StatusBadRequest, "no such advertiser", "advertiser_id")
		return
	}
	if in.Type != "" && in.Type != audience.TypeList {
		writeError(w, http.StatusBadRequest, "only list audiences are supported by this server version", "type")
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

func (a *API) members(w http.ResponseWriter, r *http.Request, p principal, remove bool) {
	au, ok := a.audienceFor(w, r.PathValue("id"), p)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/csv") &&
		!strings.HasPrefix(ct, "text/plain") && !strings.HasPrefix(ct, "application/gzip") &&
		!strings.HasPrefix(ct, "application/octet-stream") {
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
	country := ""
	if adv, err := a.d.Campaigns.Advertiser(au.AdvertiserID); err == nil {
		country = adv.Country
	}
	st, err := a.d.Audiences.Upload(r.Context(), au.ID, http.MaxBytesReader(w, r.Body, MaxUploadBody),
		audience.UploadOptions{Type: t, Remove: remove, DefaultCountry: country})
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
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
	if len(in.IDs) > 1000 {
		writeError(w, http.StatusBadRequest, "at most 1000 ids per request", "ids")
		return
	}
	res := make([]bool, len(in.IDs))
	for i, id := range in.IDs {
		t, err := audience.ParseIDType(id.Type)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error(), "ids.type")
			return
		}
		ok, err := a.d.Audiences.Contains(au.ID, t, id.Value)
		if err != nil {
			a.writeDomainError(w, err)
			return
		}
		res[i] = ok
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": res})
}
