package creative

import (
	"strings"
	"testing"
)

// TestChooseUsesCoViews: after other users viewed a then b, a user who
// viewed only a is shown a first and then b (its neighbour), never c (bought),
// never d (out of stock).
func TestChooseUsesCoViews(t *testing.T) {
	c := newTestCatalog(t)
	c.Replace("adv", strings.NewReader("id,title,price,landing_url,category,in_stock\n"+
		"a,A,1,https://s.example/a,shoes,true\nb,B,1,https://s.example/b,shoes,true\n"+
		"c,C,1,https://s.example/c,hats,true\nd,D,1,https://s.example/d,shoes,false\ne,E,1,https://s.example/e,hats,true\n"), "csv")
	rs := NewRecommenders(RecommenderOptions{})
	rs.SetFeed(c.Feed("adv"))
	for u := 0; u < 20; u++ {
		h := []HistoryItem{{Product: "a", Kind: KindView, Unix: 100}}
		rs.Observe("adv", nil, h[0], "shoes")
		rs.Observe("adv", h, HistoryItem{Product: "b", Kind: KindView, Unix: 110}, "shoes")
		rs.Observe("adv", h, HistoryItem{Product: "d", Kind: KindView, Unix: 111}, "shoes")
	}
	rs.RebuildAll()
	hist := []HistoryItem{{Product: "c", Kind: KindPurchase, Unix: 90}, {Product: "a", Kind: KindView, Unix: 200}}
	got := rs.Choose(nil, c.Feed("adv"), hist, 3, 300)
	var ids []string
	for _, p := range got {
		ids = append(ids, p.ID)
	}
	if len(ids) != 3 || ids[0] != "a" || ids[1] != "b" {
		t.Fatalf("choose = %v, want a, b first", ids)
	}
	for _, id := range ids {
		if id == "c" || id == "d" {
			t.Fatalf("choose = %v shows a bought or out-of-stock product", ids)
		}
	}
	// A cold user gets best-sellers; an advertiser without a recommender gets Pick.
	if got := rs.Choose(nil, c.Feed("adv"), nil, 2, 300); len(got) != 2 {
		t.Fatalf("cold user got %d products", len(got))
	}
	if got := NewRecommenders(RecommenderOptions{}).Choose(nil, c.Feed("adv"), nil, 2, 300); len(got) != 2 || got[0].ID != "a" {
		t.Fatalf("fallback got %v", got)
	}
}
