package admin

import (
	"net/http"
	"strings"

	"github.com/chaser-dsp/chaser/creative"
)

// putProducts replaces the advertiser's product feed (CSV with a header row,
// or JSON lines). Invalid rows are reported and skipped; a feed without one
// valid row is refused and the current feed stays.
func (a *API) putProducts(w http.ResponseWriter, r *http.Request, _ principal) {
	adv := r.PathValue("adv")
	if _, err := a.d.Campaigns.Advertiser(adv); err != nil {
		writeError(w, http.StatusNotFound, "advertiser not found", "")
		return
	}
	format := ""
	switch ct := r.Header.Get("Content-Type"); {
	case strings.HasPrefix(ct, "text/csv"):
		format = "csv"
	case strings.HasPrefix(ct, "application/x-ndjson"), strings.HasPrefix(ct, "application/jsonl"),
		strings.HasPrefix(ct, "application/json"):
		format = "jsonl"
	case ct == "" || strings.HasPrefix(ct, "text/plain") || strings.HasPrefix(ct, "application/octet-stream"):
	default:
		writeError(w, http.StatusUnsupportedMediaType, "content type must be text/csv or application/x-ndjson", "")
		return
	}
	rep, err := a.d.Catalog.Replace(adv, http.MaxBytesReader(w, r.Body, MaxUploadBody), format)
	if err != nil {
		if rep.Rows > 0 || rep.Errors != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "field": "body", "report": rep})
			return
		}
		a.writeDomainError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func productID(p **creative.Product) string { return (*p).ID }

// getProducts lists the feed's products by id, paginated.
func (a *API) getProducts(w http.ResponseWriter, r *http.Request, _ principal) {
	adv := r.PathValue("adv")
	if _, err := a.d.Campaigns.Advertiser(adv); err != nil {
		writeError(w, http.StatusNotFound, "advertiser not found", "")
		return
	}
	var ps []*creative.Product
	if f := a.d.Catalog.Feed(adv); f != nil {
		ps = append(ps, f.Products...)
	}
	listPage(w, r, "products", ps, productID)
}

func (a *API) getProduct(w http.ResponseWriter, r *http.Request, _ principal) {
	f := a.d.Catalog.Feed(r.PathValue("adv"))
	if f == nil || f.ByID[r.PathValue("pid")] == nil {
		writeError(w, http.StatusNotFound, "product not found", "")
		return
	}
	writeJSON(w, http.StatusOK, f.ByID[r.PathValue("pid")])
}
