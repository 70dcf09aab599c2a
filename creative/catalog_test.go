package creative

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chaser-dsp/chaser/store"
)

func newTestCatalog(t testing.TB) *Catalog {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := OpenCatalog(db)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFeedFormats(t *testing.T) {
	cases := []struct {
		name, format, body string
		valid, invalid     int
		inStock            int
		wantErr            bool
	}{
		{"csv with quotes and BOM", "", "\uFEFFid,title,price,currency,image_url,landing_url,category,brand,in_stock\n" +
			`a,"Shoe, red ""classic""",12.5,usd,https://c.example/a.jpg,https://s.example/a,shoes,Acme,true` + "\n" +
			"b,Hat,3,USD,,https://s.example/b,hats,,false\n", 2, 0, 1, false},
		{"csv bad rows", "csv", "id,title,price,landing_url\n,No id,1,https://s.example/\nx,,1,https://s.example/\ny,Bad price,abc,https://s.example/\nz,Ok,1,https://s.example/z\n", 1, 3, 1, false},
		{"csv missing column", "csv", "id,title\na,b\n", 0, 0, 0, true},
		{"jsonl", "", `{"id":"a","title":"Shoe","price":12.5,"landing_url":"https://s.example/a","in_stock":true}` + "\n" +
			`{"id":7,"title":"Numeric id","price":"3.00","landing_url":"https://s.example/7","in_stock":false}` + "\n" +
			`{"id":"bad json"` + "\n", 2, 1, 1, false},
		{"empty", "csv", "", 0, 0, 0, true},
		{"duplicate ids keep last", "csv", "id,title,price,landing_url\na,First,1,https://s.example/a\na,Second,2,https://s.example/a\n", 2, 0, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCatalog(t)
			rep, err := c.Replace("adv", strings.NewReader(tc.body), tc.format)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if c.Feed("adv") != nil {
					t.Fatal("a failed upload replaced the feed")
				}
				return
			}
			if rep.Valid != tc.valid || rep.Invalid != tc.invalid || rep.InStock != tc.inStock {
				t.Fatalf("report %+v", rep)
			}
			if len(rep.Errors) != tc.invalid {
				t.Fatalf("errors %+v", rep.Errors)
			}
		})
	}
}

func TestFeedReplaceIsAtomicAndPersistent(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := OpenCatalog(db)
	if _, err := c.Replace("adv", strings.NewReader("id,title,price,landing_url\na,A,1,https://s.example/a\nb,B,1,https://s.example/b\n"), "csv"); err != nil {
		t.Fatal(err)
	}
	// A feed with no valid row is refused and leaves the old one in place.
	if _, err := c.Replace("adv", strings.NewReader("id,title,price,landing_url\n,,,\n"), "csv"); err == nil {
		t.Fatal("feed without valid rows accepted")
	}
	if _, err := c.Replace("adv", strings.NewReader("id,title,price,landing_url,in_stock\nc,C,1,https://s.example/c,false\nd,D,1,https://s.example/d,true\n"), "csv"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = store.Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err = OpenCatalog(db)
	if err != nil {
		t.Fatal(err)
	}
	f := c.Feed("adv")
	if f == nil || len(f.Products) != 2 || f.ByID["a"] != nil || len(f.InStock) != 1 || f.InStock[0].ID != "d" {
		t.Fatalf("feed after reopen: %+v", f)
	}
}

func TestPick(t *testing.T) {
	c := newTestCatalog(t)
	c.Replace("adv", strings.NewReader("id,title,price,landing_url,in_stock\n"+
		"a,A,1,https://s.example/a,true\nb,B,1,https://s.example/b,true\nc,C,1,https://s.example/c,false\nd,D,1,https://s.example/d,true\n"), "csv")
	f := c.Feed("adv")
	ids := func(ps []*Product) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.ID)
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		name string
		hist []HistoryItem
		n    int
		want string
	}{
		{"cold user gets in-stock feed order", nil, 2, "a,b"},
		{"viewed first, newest first", []HistoryItem{{"b", KindView, 1}, {"d", KindView, 2}}, 3, "d,b,a"},
		{"cart before views", []HistoryItem{{"d", KindCart, 1}, {"b", KindView, 2}}, 2, "d,b"},
		{"out of stock skipped", []HistoryItem{{"c", KindView, 1}}, 1, "a"},
		{"bought excluded", []HistoryItem{{"a", KindView, 1}, {"a", KindPurchase, 2}}, 2, "b,d"},
	}
	for _, tc := range cases {
		if got := ids(Pick(nil, f, tc.hist, tc.n)); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}
