package creative

// HistoryItem is one product a user interacted with, as the recommender
// sees it (newest last in a history).
type HistoryItem struct {
	Product string
	Kind    uint8 // 1 view, 2 cart, 3 purchase
	Unix    int64
}

// History kinds.
const (
	KindView     uint8 = 1
	KindCart     uint8 = 2
	KindPurchase uint8 = 3
)

// Pick appends up to n in-stock products of feed for a user with the given
// history (newest last): the user's own carted and viewed products first,
// newest first, never one they bought; then in-stock products in feed order.
// It returns dst.
func Pick(dst []*Product, feed *Feed, history []HistoryItem, n int) []*Product {
	if feed == nil || n <= 0 {
		return dst
	}
	start := len(dst)
	has := func(p *Product) bool {
		for _, q := range dst[start:] {
			if q == p {
				return true
			}
		}
		return false
	}
	bought := func(id string) bool { return boughtIn(history, id) }
	for pass := 0; pass < 2; pass++ {
		want := KindCart
		if pass == 1 {
			want = KindView
		}
		for i := len(history) - 1; i >= 0 && len(dst)-start < n; i-- {
			h := history[i]
			if h.Kind != want {
				continue
			}
			p := feed.ByID[h.Product]
			if p == nil || !p.InStock || has(p) || bought(p.ID) {
				continue
			}
			dst = append(dst, p)
		}
	}
	for _, p := range feed.InStock {
		if len(dst)-start >= n {
			break
		}
		if !has(p) && !bought(p.ID) {
			dst = append(dst, p)
		}
	}
	return dst
}
