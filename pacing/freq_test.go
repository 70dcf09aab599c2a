package pacing

import (
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/campaign"
)

// TestFrequencyCap: 3 impressions per 24 h, counted on the first win or
// imp notice of each auction, enforced at bid time, surviving a restart.
func TestFrequencyCap(t *testing.T) {
	c := testCampaign("cmp_f", campaign.PacingASAP)
	c.FrequencyCap = campaign.FrequencyCap{Impressions: 3, Per: 24 * time.Hour}
	e := newEnv(t, t0, Options{}, c)
	const alice, bob = 1, 2
	show := func(user byte, auction string, kinds ...string) {
		t.Helper()
		tok, _, why := e.bid(c.ID, user, Quote{}, auction)
		if why != "" {
			t.Fatalf("%s: no bid: %s", auction, why)
		}
		for _, k := range kinds {
			if _, err := e.p.Notice(k, []byte(tok), 1_000_000, -1); err != nil {
				t.Fatalf("%s %s: %v", auction, k, err)
			}
		}
	}
	show(alice, "a1", NoticeWin, NoticeImp, NoticeBill) // one impression, however many notices
	show(alice, "a2", NoticeImp)                        // an imp pixel alone counts
	show(alice, "a3")                                   // lost: not counted
	e.clock.Advance(time.Hour)
	show(alice, "a4", NoticeBill)
	if _, _, why := e.bid(c.ID, alice, Quote{}, "a5"); why != ReasonFrequency {
		t.Fatalf("4th impression in 24h: %q, want frequency_cap", why)
	}
	show(bob, "b1", NoticeWin) // others are unaffected

	e.restart()
	if _, _, why := e.bid(c.ID, alice, Quote{}, "a6"); why != ReasonFrequency {
		t.Fatalf("after restart: %q, want frequency_cap", why)
	}
	// 24 h after the first two impressions, two slots free up.
	e.clock.Set(t0.Add(24*time.Hour + time.Second))
	show(alice, "a7", NoticeWin)
	show(alice, "a8", NoticeWin)
	if _, _, why := e.bid(c.ID, alice, Quote{}, "a8b"); why != ReasonFrequency {
		t.Fatalf("after the freed slots were used: %q", why)
	}
	// Raising the cap takes effect at once.
	c2 := *e.camps.get(c.ID)
	c2.FrequencyCap.Impressions = 4
	e.camps.put(&c2)
	if _, _, why := e.bid(c.ID, alice, Quote{}, "a9"); why != "" {
		t.Fatalf("cap raised to 4: %q", why)
	}
	// Forgetting: once no window can see them, counts leave memory and disk.
	e.clock.Advance(48 * time.Hour)
	e.p.Tick(e.clock.Now())
	f := e.p.freq.(*PebbleFrequency)
	n := 0
	for _, fc := range *f.camps.Load() {
		for i := range fc.shards {
			n += len(fc.shards[i].m)
		}
	}
	if n != 0 {
		t.Fatalf("%d expired frequency entries kept", n)
	}
	e.restart()
	f = e.p.freq.(*PebbleFrequency)
	for _, fc := range *f.camps.Load() {
		for i := range fc.shards {
			n += len(fc.shards[i].m)
		}
	}
	if n != 0 {
		t.Fatalf("%d expired frequency entries reloaded", n)
	}
}

func TestFrequencyOutOfOrderAndBounded(t *testing.T) {
	e := newEnv(t, t0, Options{})
	f := e.p.freq
	u := [16]byte{7}
	for _, ago := range []time.Duration{time.Minute, 3 * time.Hour, 2 * time.Minute, 30 * time.Hour} {
		if err := f.Record("c", u, t0.Add(-ago)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Count("c", u, 24*time.Hour, t0); n != 3 {
		t.Fatalf("count in 24h = %d, want 3", n)
	}
	if n := f.Count("c", u, 150*time.Second, t0); n != 2 {
		t.Fatalf("count in 150s = %d, want 2", n)
	}
	for i := 0; i < MaxFrequencyCap+50; i++ {
		f.Record("c", u, t0.Add(time.Duration(i)*time.Second))
	}
	if n := f.Count("c", u, 24*time.Hour, t0.Add(time.Hour)); n != MaxFrequencyCap {
		t.Fatalf("count saturates at %d, got %d", MaxFrequencyCap, n)
	}
	if n := f.Count("other", u, 24*time.Hour, t0); n != 0 {
		t.Fatalf("unknown campaign counted %d", n)
	}
}

// TestEraseUser: a person's frequency counts go, in memory and on disk;
// other people's stay.
func TestEraseUser(t *testing.T) {
	e := newEnv(t, t0, Options{})
	alice, bob := [16]byte{1}, [16]byte{2}
	for _, cmp := range []string{"c1", "c2"} {
		e.p.freq.Record(cmp, alice, t0)
		e.p.freq.Record(cmp, bob, t0)
	}
	if err := e.p.EraseUser(alice); err != nil {
		t.Fatal(err)
	}
	if err := e.p.EraseUser(alice); err != nil {
		t.Fatalf("erasing twice: %v", err)
	}
	check := func(when string) {
		t.Helper()
		for _, cmp := range []string{"c1", "c2"} {
			if n := e.p.freq.Count(cmp, alice, time.Hour, t0); n != 0 {
				t.Fatalf("%s: erased user still counted %d in %s", when, n, cmp)
			}
			if n := e.p.freq.Count(cmp, bob, time.Hour, t0); n != 1 {
				t.Fatalf("%s: other user counted %d in %s", when, n, cmp)
			}
		}
	}
	check("live")
	e.restart()
	check("after restart")
}
