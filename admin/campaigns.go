package admin

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/chaser-dsp/chaser/campaign"
)

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
	for field, ids := range map[string][]string{"targeting.audiences": c.Targeting.Audiences, "targeting.exclude_audiences": c.Targeting.ExcludeAudiences} {
		for _, id := range ids {
			au, err := a.d.Audiences.Get(id)
			if err != nil || au.AdvertiserID != c.AdvertiserID {
				writeError(w, http.StatusBadRequest, "no such audience for this advertiser: "+id, field)
				return false
			}
		}
	}
	return true
}

func (a *API) createCampaign(w http.ResponseWriter, r *http.Request, p principal) {
	var c campaign.Campaign
	if !decodeJSON(w, r, &c) {
		return
	}
	if !p.admin {
		if c.AdvertiserID == "" {
			c.AdvertiserID = p.advertiser
		}
		if c.AdvertiserID != p.advertiser {
			writeError(w, http.StatusNotFound, "advertiser not found", "advertiser_id")
			return
		}
	}
	c.ID = ""
	if c.AdvertiserID == "" {
		writeError(w, http.StatusBadRequest, "required", "advertiser_id")
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

func (a *API) listCampaigns(w http.ResponseWriter, r *http.Request, p principal) {
	adv := r.URL.Query().Get("advertiser_id")
	if !p.admin {
		if adv != "" && adv != p.advertiser {
			writeJSON(w, http.StatusOK, map[string]any{"campaigns": []campaign.Campaign{}})
			return
		}
		adv = p.advertiser
	}
	writeJSON(w, http.StatusOK, map[string]any{"campaigns": a.d.Campaigns.List(adv)})
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
	today, total := a.d.Ledger.Spend(&c)
	writeJSON(w, http.StatusOK, campaignView{c, campaign.Units(today), campaign.Units(total)})
}

// patchCampaign merges a JSON object into the campaign (RFC 7396 merge patch).
func (a *API) patchCampaign(w http.ResponseWriter, r *http.Request, p principal) {
	c, ok := a.campaignFor(w, r.PathValue("id"), p)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body larger than 1 MiB", "")
		return
	}
	var patch map[string]any
	if err := json.Unmarshal(body, &patch); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON: want an object", "")
		return
	}
	for _, k := range []string{"id", "advertiser_id", "created_at", "updated_at"} {
		if _, ok := patch[k]; ok {
			writeError(w, http.StatusBadRequest, "cannot be changed", k)
			return
		}
	}
	cur, _ := json.Marshal(c)
	var doc map[string]any
	_ = json.Unmarshal(cur, &doc)
	merged, _ := json.Marshal(mergePatch(doc, patch))
	var next campaign.Campaign
	if err := json.Unmarshal(merged, &next); err != nil {
		a.writeDomainError(w, err)
		return
	}
	next.ID = c.ID
	next.AdvertiserID = c.AdvertiserID
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

func mergePatch(doc, patch map[string]any) map[string]any {
	for k, v := range patch {
		if v == nil {
			delete(doc, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			if dm, ok := doc[k].(map[string]any); ok {
				doc[k] = mergePatch(dm, pm)
				continue
			}
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
