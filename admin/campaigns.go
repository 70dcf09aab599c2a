package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/chaser-dsp/chaser/campaign"
)

func campaignID(c *campaign.Campaign) string { return c.ID }

// campaignFor returns the campaign if p may see it; otherwise it writes 404.
func (a *API) campaignFor(w http.ResponseWriter, id string, p principal) (campaign.Campaign, bool) {
	c, err := a.d.Campaigns.Get(id)
	if err != nil || !p.may(c.AdvertiserID) {
		writeError(w, http.StatusNotFound, "campaign not found", "")
		return campaign.Campaign{}, false
	}
	return c, true
}

// checkAudiences verifies the campaign's audiences exist and belong to its advertiser.
func (a *API) checkAudiences(w http.ResponseWriter, c *campaign.Campaign) bool {
	for _, f := range []struct {
		field string
		ids   []string
	}{{"targeting.audiences", c.Targeting.Audiences}, {"targeting.exclude_audiences", c.Targeting.ExcludeAudiences}} {
		for _, id := range f.ids {
			au, err := a.d.Audiences.Get(id)
			if err != nil || au.AdvertiserID != c.AdvertiserID {
				writeError(w, http.StatusBadRequest, "no such audience for this advertiser: "+id, f.field)
				return false
			}
		}
	}
	return true
}

func (a *API) createCampaign(w http.ResponseWriter, r *http.Request, p principal) {
	body, ok := readJSON(w, r)
	if !ok {
		return
	}
	c, err := campaign.ParseStrict(body)
	if err != nil {
		writeJSONError(w, err)
		return
	}
	c.ID = ""
	if !a.bodyAdvertiser(w, p, &c.AdvertiserID) {
		return
	}
	if !a.checkAudiences(w, &c) {
		return
	}
	out, err := a.d.Campaigns.Create(c)
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// listCampaigns lists campaigns, paginated; ?advertiser_id= and ?status=
// filter. An advertiser key sees only its own.
func (a *API) listCampaigns(w http.ResponseWriter, r *http.Request, p principal) {
	q := r.URL.Query()
	adv, status := q.Get("advertiser_id"), q.Get("status")
	if status != "" && status != campaign.StatusActive && status != campaign.StatusPaused {
		writeError(w, http.StatusBadRequest, "must be active or paused", "status")
		return
	}
	var list []campaign.Campaign
	if p.admin || adv == "" || adv == p.advertiser {
		if !p.admin {
			adv = p.advertiser
		}
		list = a.d.Campaigns.List(adv)
	}
	if status != "" {
		kept := list[:0]
		for _, c := range list {
			if c.Status == status {
				kept = append(kept, c)
			}
		}
		list = kept
	}
	listPage(w, r, "campaigns", list, campaignID)
}

type campaignView struct {
	campaign.Campaign
	SpendToday float64 `json:"spend_today"`
	SpendTotal float64 `json:"spend_total"`
}

func (v campaignView) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(v.Campaign)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["spend_today"], m["spend_total"] = v.SpendToday, v.SpendTotal
	return json.Marshal(m)
}

func (a *API) getCampaign(w http.ResponseWriter, r *http.Request, p principal) {
	c, ok := a.campaignFor(w, r.PathValue("id"), p)
	if !ok {
		return
	}
	today, total := a.d.Pacer.Spend(&c)
	writeJSON(w, http.StatusOK, campaignView{c, campaign.Units(today), campaign.Units(total)})
}

// readOnlyCampaignFields may not appear in a campaign patch.
var readOnlyCampaignFields = []string{"id", "advertiser_id", "created_at", "updated_at", "spend_today", "spend_total"}

// patchCampaign merges a JSON object into the campaign (RFC 7396 merge
// patch): {"status":"paused"} pauses it, {"end":null} removes its end.
func (a *API) patchCampaign(w http.ResponseWriter, r *http.Request, p principal) {
	c, ok := a.campaignFor(w, r.PathValue("id"), p)
	if !ok {
		return
	}
	var patch map[string]any
	if !decodeMergePatch(w, r, &patch) {
		return
	}
	for _, k := range readOnlyCampaignFields {
		if _, ok := patch[k]; ok {
			writeError(w, http.StatusBadRequest, "read-only: cannot be changed", k)
			return
		}
	}
	next, err := applyCampaignPatch(c, patch)
	if err != nil {
		writeJSONError(w, err)
		return
	}
	if !a.checkAudiences(w, &next) {
		return
	}
	out, err := a.d.Campaigns.Update(next)
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// applyCampaignPatch merges patch into c's JSON form and decodes the result.
func applyCampaignPatch(c campaign.Campaign, patch map[string]any) (campaign.Campaign, error) {
	cur, err := json.Marshal(c)
	if err != nil {
		return campaign.Campaign{}, err
	}
	var doc map[string]any
	if err := json.Unmarshal(cur, &doc); err != nil {
		return campaign.Campaign{}, err
	}
	merged, err := json.Marshal(mergePatch(doc, patch))
	if err != nil {
		return campaign.Campaign{}, err
	}
	next, err := campaign.ParseStrict(merged)
	if err != nil {
		return campaign.Campaign{}, err
	}
	next.ID, next.AdvertiserID = c.ID, c.AdvertiserID
	return next, nil
}

// mergePatch applies an RFC 7396 merge patch to doc.
func mergePatch(doc, patch map[string]any) map[string]any {
	if doc == nil {
		doc = map[string]any{}
	}
	for k, v := range patch {
		if v == nil {
			delete(doc, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			dm, _ := doc[k].(map[string]any)
			doc[k] = mergePatch(dm, pm)
			continue
		}
		doc[k] = v
	}
	return doc
}

func (a *API) deleteCampaign(w http.ResponseWriter, r *http.Request, p principal) {
	c, ok := a.campaignFor(w, r.PathValue("id"), p)
	if !ok {
		return
	}
	if err := a.d.Campaigns.Delete(c.ID); err != nil {
		a.writeDomainError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decodeMergePatch reads a bounded JSON object (application/json or
// application/merge-patch+json) into v.
func decodeMergePatch(w http.ResponseWriter, r *http.Request, v any) bool {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/merge-patch+json") {
		writeError(w, http.StatusUnsupportedMediaType, "content type must be application/merge-patch+json or application/json", "")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	if err != nil {
		writeJSONError(w, err)
		return false
	}
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		writeJSONError(w, errors.New("want a JSON object"))
		return false
	}
	return decodeBody(w, bytes.NewReader(body), v)
}
