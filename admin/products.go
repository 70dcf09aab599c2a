package admin

import (
	"net/http"
	"strings"
)

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

func (a *API) getProducts(w http.ResponseWriter, r *http.Request, _ principal) {
	f := a.d.Catalog.Feed(r.PathValue("adv"))
	if f == nil {
		writeJSON(w, http.StatusOK, map[string]any{"products": []any{}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"products": f.Products, "in_stock": len(f.InStock)})
}
