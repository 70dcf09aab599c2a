package admin

import (
	"encoding/json"
	"net/http"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/store"
)

func (a *API) createAdvertiser(w http.ResponseWriter, r *http.Request, _ principal) {
	var in struct {
		Name    string `json:"name"`
		Domain  string `json:"domain"`
		Country string `json:"country"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	adv, err := a.d.Campaigns.CreateAdvertiser(campaign.Advertiser{Name: in.Name, Domain: in.Domain, Country: in.Country})
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, adv)
}

func (a *API) listAdvertisers(w http.ResponseWriter, _ *http.Request, _ principal) {
	writeJSON(w, http.StatusOK, map[string]any{"advertisers": a.d.Campaigns.Advertisers()})
}

func (a *API) getAdvertiser(w http.ResponseWriter, r *http.Request, _ principal) {
	adv, err := a.d.Campaigns.Advertiser(r.PathValue("adv"))
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, adv)
}

// createKey makes an advertiser-scoped API key. The key is returned once;
// only its hash is stored.
func (a *API) createKey(w http.ResponseWriter, r *http.Request, _ principal) {
	adv := r.PathValue("adv")
	if _, err := a.d.Campaigns.Advertiser(adv); err != nil {
		a.writeDomainError(w, err)
		return
	}
	key := newKey()
	b, _ := json.Marshal(storedKey{Advertiser: adv, Created: a.d.Now().UTC()})
	if err := a.d.DB.Set([]byte(store.PrefixAPIKey+hashKey(key)), b, pebble.Sync); err != nil {
		a.writeDomainError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"advertiser_id": adv, "key": key,
		"note": "store this key now: it is shown only once"})
}
