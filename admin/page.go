package admin

import (
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
)

// Pagination of list endpoints: ?limit=N (default DefaultPageLimit, at most
// MaxPageLimit) and ?cursor=C, where C is the next_cursor of the previous
// page. Lists are ordered by id; a cursor is the last id of its page
// (base64url), so a page stays correct when items are added or removed
// between requests. The last page has no next_cursor.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// pageReq is a parsed ?limit=&cursor=.
type pageReq struct {
	limit int
	after string // the last id of the previous page; "" for the first
}

// parsePage reads the pagination parameters, answering 400 on bad ones.
func parsePage(w http.ResponseWriter, r *http.Request) (pageReq, bool) {
	q := r.URL.Query()
	pr := pageReq{limit: DefaultPageLimit}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageLimit {
			writeError(w, http.StatusBadRequest, "must be an integer from 1 to "+strconv.Itoa(MaxPageLimit), "limit")
			return pr, false
		}
		pr.limit = n
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) == 0 || len(b) > 512 {
			writeError(w, http.StatusBadRequest, "not a cursor this API returned", "cursor")
			return pr, false
		}
		pr.after = string(b)
	}
	return pr, true
}

// paginate returns the page of items (sorted by id) after pr.after and the
// cursor of the next page ("" when this is the last).
func paginate[T any](items []T, pr pageReq, id func(*T) string) ([]T, string) {
	start := 0
	if pr.after != "" {
		start = sort.Search(len(items), func(i int) bool { return id(&items[i]) > pr.after })
	}
	end := min(start+pr.limit, len(items))
	page := items[start:end]
	if end == len(items) || len(page) == 0 {
		return page, ""
	}
	return page, base64.RawURLEncoding.EncodeToString([]byte(id(&page[len(page)-1])))
}

// sortByID orders items by id.
func sortByID[T any](items []T, id func(*T) string) {
	sort.Slice(items, func(i, j int) bool { return id(&items[i]) < id(&items[j]) })
}

// listPage writes {"<name>": page, "next_cursor": c}.
func listPage[T any](w http.ResponseWriter, r *http.Request, name string, items []T, id func(*T) string) {
	pr, ok := parsePage(w, r)
	if !ok {
		return
	}
	sortByID(items, id)
	page, next := paginate(items, pr, id)
	if page == nil {
		page = []T{}
	}
	out := map[string]any{name: page}
	if next != "" {
		out["next_cursor"] = next
	}
	writeJSON(w, http.StatusOK, out)
}
