package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/admin"
	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/store"
)

// TestErase: after POST /v1/privacy/erase the person is not a member, a bid
// request for them gets no bid, and no key of the store holds their
// pseudonym except the erase log, also after a restart.
func TestErase(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	if _, ok := any(s.app.audiences).(admin.Eraser); !ok {
		t.Skip("audience.Manager has no Erase method in this build (it comes with the list-audience work)")
	}
	adv := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Acme","domain":"shop.example"}`, 201)["id"].(string)
	s.admin("PUT", "/v1/advertisers/"+adv+"/products", "text/csv", feedCSV, 200)
	aud := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+adv+`","name":"v","type":"list"}`, 201)["id"].(string)
	s.admin("POST", "/v1/audiences/"+aud+"/members?id_type=uid", "text/csv", "cookie-a\ncookie-b\n", 200)
	s.admin("POST", "/v1/audiences/"+aud+"/members?id_type=email", "text/csv", "Erase.Me@Example.com\nkeep@example.com\n", 200)
	s.admin("POST", "/v1/campaigns", "application/json", `{"advertiser_id":"`+adv+`","name":"c","budget":{"daily":100},"pacing":"asap",
		"bid":{"base_cpm":2,"max_cpm":5},"targeting":{"audiences":["`+aud+`"]},"creative":{"sizes":["300x250"]}}`, 201)

	pz := s.app.audiences.Pseudonymizer()
	cookie, _ := pz.Raw(audience.IDUID, "cookie-a", "")
	email, _ := pz.Raw(audience.IDEmail, "erase.me@example.com", "")
	// A site event links the cookie and the e-mail and builds a profile.
	if err := s.app.audiences.RecordEvent(audience.Event{AdvertiserID: adv, Type: audience.EventProductView, User: cookie,
		Links: []audience.LinkedID{{ID: email, Kind: audience.IDEmailSHA256}}, Products: []string{"sku-1"}, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if code, _ := s.bid(bidRequest("e1", "cookie-a", 1)); code != 200 {
		t.Fatalf("before erase: status %d", code)
	}

	for _, id := range []struct{ typ, value string }{{"uid", "cookie-a"}, {"email", " ERASE.me@example.com"}} {
		out := s.admin("POST", "/v1/privacy/erase", "application/json", `{"type":"`+id.typ+`","value":"`+id.value+`"}`, 200)
		if out["pseudonym"] == "" {
			t.Fatalf("erase answer %v", out)
		}
		// Erasing twice is fine.
		s.admin("POST", "/v1/privacy/erase", "application/json", `{"type":"`+id.typ+`","value":"`+id.value+`"}`, 200)
	}
	contains := func(s *server) []bool {
		got := s.admin("POST", "/v1/audiences/"+aud+"/contains", "application/json",
			`{"ids":[{"type":"uid","value":"cookie-a"},{"type":"email","value":"erase.me@example.com"},{"type":"uid","value":"cookie-b"},{"type":"email","value":"keep@example.com"}]}`, 200)
		var out []bool
		for _, v := range got["results"].([]any) {
			out = append(out, v.(bool))
		}
		return out
	}
	check := func(s *server) {
		t.Helper()
		if got := contains(s); got[0] || got[1] || !got[2] || !got[3] {
			t.Fatalf("contains after erase = %v, want [false false true true]", got)
		}
		if code, _ := s.bid(bidRequest("e2", "cookie-a", 1)); code != 204 {
			t.Fatalf("bid for an erased user: status %d, want 204", code)
		}
		if code, _ := s.bid(bidRequest("e3", "cookie-b", 1)); code != 200 {
			t.Fatalf("bid for another member: status %d, want 200", code)
		}
	}
	check(s)
	s.stop()
	s2 := startServer(t, dir)
	check(s2)
	s2.stop()

	// Every key of the store, after a flush: only the erase log may name
	// the erased pseudonyms.
	db, err := store.Open(dir + "/db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	it, err := db.NewIter(&pebble.IterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	logged := map[audience.Pseudonym]bool{}
	keys := 0
	for ok := it.First(); ok; ok = it.Next() {
		keys++
		k := it.Key()
		for _, p := range []audience.Pseudonym{cookie, email} {
			for _, form := range [][]byte{p[:], []byte(p.String())} {
				if !bytes.Contains(k, form) {
					continue
				}
				if bytes.Equal(k, []byte(store.PrefixErase+string(p[:]))) {
					logged[p] = true
					if v := it.Value(); len(v) > 16 {
						t.Fatalf("erase log value holds more than a time: %q", v)
					}
					continue
				}
				t.Errorf("key %q still holds an erased pseudonym", k)
			}
		}
	}
	if !logged[cookie] || !logged[email] || keys < 10 {
		t.Fatalf("erase log entries %v over %d keys", logged, keys)
	}
}

// TestEraseNeedsTheAdminKey: an advertiser key may not erase (erasure is
// global across advertisers).
func TestEraseNeedsTheAdminKey(t *testing.T) {
	s := startServer(t, t.TempDir())
	adv := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Acme"}`, 201)["id"].(string)
	key := s.admin("POST", "/v1/advertisers/"+adv+"/keys", "", "", 201)["key"].(string)
	t.Setenv("CHASER_API_KEY", key)
	_, _, err := s.chaser("erase", "--type", "email", "--value", "a@b.example")
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("advertiser erase: %v", err)
	}
}
