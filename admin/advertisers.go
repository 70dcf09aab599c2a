package admin

import (
	"net/http"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/campaign"
)

func advertiserID(a *campaign.Advertiser) string { return a.ID }

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

// listAdvertisers lists every advertiser for the admin key, and only its
// own for an advertiser key.
func (a *API) listAdvertisers(w http.ResponseWriter, r *http.Request, p principal) {
	var advs []campaign.Advertiser
	if p.admin {
		advs = a.d.Campaigns.Advertisers()
	} else if adv, err := a.d.Campaigns.Advertiser(p.advertiser); err == nil {
		advs = []campaign.Advertiser{adv}
	}
	listPage(w, r, "advertisers", advs, advertiserID)
}

func (a *API) getAdvertiser(w http.ResponseWriter, r *http.Request, _ principal) {
	adv, err := a.d.Campaigns.Advertiser(r.PathValue("adv"))
	if err != nil {
		writeError(w, http.StatusNotFound, "advertiser not found", "")
		return
	}
	writeJSON(w, http.StatusOK, adv)
}

// patchAdvertiser changes name, domain or country (a merge patch: absent
// fields keep their values).
func (a *API) patchAdvertiser(w http.ResponseWriter, r *http.Request, _ principal) {
	adv, err := a.d.Campaigns.Advertiser(r.PathValue("adv"))
	if err != nil {
		writeError(w, http.StatusNotFound, "advertiser not found", "")
		return
	}
	var in struct {
		Name    *string `json:"name"`
		Domain  *string `json:"domain"`
		Country *string `json:"country"`
	}
	if !decodeMergePatch(w, r, &in) {
		return
	}
	for _, f := range []struct {
		v   *string
		dst *string
	}{{in.Name, &adv.Name}, {in.Domain, &adv.Domain}, {in.Country, &adv.Country}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	out, err := a.d.Campaigns.UpdateAdvertiser(adv)
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// keyView is what the API shows of a key: never the key or its hash.
type keyView struct {
	ID           string `json:"id"`
	AdvertiserID string `json:"advertiser_id"`
	CreatedAt    string `json:"created_at"`
	RevokedAt    string `json:"revoked_at,omitempty"`
}

func viewKey(k *storedKey) keyView {
	v := keyView{ID: k.keyID(), AdvertiserID: k.Advertiser, CreatedAt: k.Created.UTC().Format(timeFormat)}
	if k.Revoked {
		v.RevokedAt = "unknown"
		if k.RevokedAt != nil {
			v.RevokedAt = k.RevokedAt.UTC().Format(timeFormat)
		}
	}
	return v
}

const timeFormat = "2006-01-02T15:04:05Z07:00"

// createKey makes an advertiser-scoped API key. The key is returned once;
// only its hash is stored, with a public id to list and revoke it by.
func (a *API) createKey(w http.ResponseWriter, r *http.Request, _ principal) {
	adv := r.PathValue("adv")
	if _, err := a.d.Campaigns.Advertiser(adv); err != nil {
		writeError(w, http.StatusNotFound, "advertiser not found", "")
		return
	}
	key := newSecret("chk_", 24)
	k := storedKey{ID: newSecret("key_", 6), Advertiser: adv, Created: a.d.Now().UTC()}
	if err := a.putKey(hashKey(key), k, pebble.Sync); err != nil {
		a.writeDomainError(w, err)
		return
	}
	a.d.Logger.Info("admin: key created", "advertiser", adv, "key_id", k.ID)
	writeJSON(w, http.StatusCreated, map[string]string{"id": k.ID, "advertiser_id": adv, "key": key,
		"created_at": k.Created.Format(timeFormat), "note": "store this key now: it is shown only once"})
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, _ principal) {
	adv := r.PathValue("adv")
	if _, err := a.d.Campaigns.Advertiser(adv); err != nil {
		writeError(w, http.StatusNotFound, "advertiser not found", "")
		return
	}
	keys, err := a.keysOf(adv)
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	views := make([]keyView, len(keys))
	for i := range keys {
		views[i] = viewKey(&keys[i])
	}
	listPage(w, r, "keys", views, func(k *keyView) string { return k.ID })
}

// revokeKey revokes a key at once; revoking a revoked key is a no-op. The
// record stays (without the key) so the list shows when it was revoked.
func (a *API) revokeKey(w http.ResponseWriter, r *http.Request, _ principal) {
	adv, id := r.PathValue("adv"), r.PathValue("key_id")
	keys, err := a.keysOf(adv)
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	for _, k := range keys {
		if k.keyID() != id {
			continue
		}
		if !k.Revoked {
			now := a.d.Now().UTC()
			k.Revoked, k.RevokedAt = true, &now
			if err := a.putKey(k.hash, k, pebble.Sync); err != nil {
				a.writeDomainError(w, err)
				return
			}
			a.d.Logger.Info("admin: key revoked", "advertiser", adv, "key_id", id)
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeError(w, http.StatusNotFound, "key not found", "")
}
