package audience

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestForEachProfile: the walk visits every stored profile once, in key
// order (advertiser, then pseudonym), or one advertiser's only; it skips
// erased users (their profiles are deleted) and unreadable profiles, and an
// error from the callback stops it.
func TestForEachProfile(t *testing.T) {
	clk := newClock()
	db := openTestDB(t, t.TempDir())
	m := newEventsManager(t, db, clk, EventOptions{})
	pz := m.Pseudonymizer()
	users := map[string]Pseudonym{}
	for i := range 5 {
		name := fmt.Sprintf("u-%d", i)
		users[name] = pz.Of(IDUID, name)
	}
	record := func(adv, user string, at time.Duration, typ string, products ...string) {
		t.Helper()
		if err := m.RecordEvent(Event{AdvertiserID: adv, Type: typ, User: users[user], Products: products, Time: clk.Now().Add(at)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		u := fmt.Sprintf("u-%d", i)
		record("adv_b", u, -2*time.Hour, EventProductView, "sku-1")
		record("adv_b", u, -3*time.Hour, EventAddToCart, "sku-2") // out of order: stored in time order
	}
	record("adv_a", "u-0", -time.Hour, EventPurchase, "sku-9")
	record("adv_a", "u-1", -time.Hour, EventPageView)
	record("adv_ab", "u-2", -time.Hour, EventProductView, "sku-7") // a prefix of no other id
	// An unreadable profile is skipped, not fatal.
	if err := db.Set(profileKey("adv_b", pz.Of(IDUID, "garbage")), []byte{0x7f, 1, 2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Erase(users["u-3"]); err != nil {
		t.Fatal(err)
	}

	type visit struct {
		adv  string
		user Pseudonym
		p    *Profile
	}
	walk := func(adv string) []visit {
		t.Helper()
		var out []visit
		if err := m.ForEachProfile(adv, func(adv string, u Pseudonym, p *Profile) error {
			out = append(out, visit{adv, u, p})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	all := walk("")
	if len(all) != 2+4+1 { // adv_a: 2, adv_b: 4 (u-3 erased), adv_ab: 1
		t.Fatalf("visited %d profiles, want 7: %+v", len(all), all)
	}
	if !slices.IsSortedFunc(all, func(a, b visit) int {
		if c := bytes.Compare([]byte(a.adv+"/"), []byte(b.adv+"/")); c != 0 {
			return c
		}
		return bytes.Compare(a.user[:], b.user[:])
	}) {
		t.Errorf("not in key order")
	}
	for _, v := range all {
		if v.user == users["u-3"] {
			t.Errorf("erased user visited at %s", v.adv)
		}
		want, err := m.Profile(v.adv, v.user)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(v.p.Events) != fmt.Sprint(want.Events) || len(v.p.Events) == 0 {
			t.Errorf("%s: events %+v, want %+v", v.adv, v.p.Events, want.Events)
		}
		if v.adv == "adv_b" && (v.p.Events[0].Type != EventAddToCart || v.p.Events[1].Type != EventProductView) {
			t.Errorf("events not oldest first: %+v", v.p.Events)
		}
	}
	if got := walk("adv_b"); len(got) != 4 || got[0].adv != "adv_b" || got[3].adv != "adv_b" {
		t.Errorf("adv_b walk: %+v", got)
	}
	if got := walk("adv_a"); len(got) != 2 || got[0].adv != "adv_a" || got[1].adv != "adv_a" {
		t.Errorf("adv_a walk (must not reach adv_ab): %+v", got)
	}
	if got := walk("adv_none"); len(got) != 0 {
		t.Errorf("unknown advertiser: %+v", got)
	}

	stop := errors.New("stop")
	n := 0
	err := m.ForEachProfile("", func(string, Pseudonym, *Profile) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("stopping walk: err %v after %d", err, n)
	}
}
