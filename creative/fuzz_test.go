package creative

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzFeed feeds arbitrary bodies to the product feed parser (CSV and JSON
// lines): it must never panic, its report must add up, a refused feed must
// leave the previous one in place, and every accepted product must be safe
// to render (http(s) URLs, bounded fields).
func FuzzFeed(f *testing.F) {
	f.Add([]byte("id,title,price,currency,image_url,landing_url,category,brand,in_stock\nsku-1,Shoe,1.5,USD,https://c.example/1.jpg,https://s.example/1,shoes,Acme,true\n"), "")
	f.Add([]byte("id,title,price,landing_url\n\"a\",\"multi\nline\",2,https://s.example/a\n"), "csv")
	f.Add([]byte(`{"id":"a","title":"T","price":1,"landing_url":"https://s.example/a"}`+"\n"+`{"id":`), "jsonl")
	f.Add([]byte("id,title,price,landing_url\nx,<script>,1,javascript:alert(1)\n"), "csv")
	f.Add([]byte("\xef\xbb\xbfid;title\n"), "")
	c := newTestCatalog(f)
	if _, err := c.Replace("adv", strings.NewReader("id,title,price,landing_url\nkeep,Keep,1,https://s.example/k\n"), "csv"); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, format string) {
		before := c.Feed("adv")
		rep, err := c.Replace("adv", bytes.NewReader(body), format)
		if rep.Valid+rep.Invalid != rep.Rows {
			t.Fatalf("report does not add up: %+v", rep)
		}
		if err != nil {
			if c.Feed("adv") != before {
				t.Fatal("a refused feed replaced the previous one")
			}
			return
		}
		for _, p := range c.Feed("adv").Products {
			if !httpURL(p.LandingURL) || (p.ImageURL != "" && !httpURL(p.ImageURL)) {
				t.Fatalf("unsafe URL accepted: %+v", p)
			}
			if len(p.Title) > MaxFieldLen || p.ID == "" || p.PriceMicros < 0 {
				t.Fatalf("bad product accepted: %+v", p)
			}
		}
	})
}
