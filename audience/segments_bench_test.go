package audience

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// benchRules are 50 rules of one advertiser, a mix of what campaign managers
// write: cart abandoners, category viewers, RFM buckets, nested any/not.
func benchRules() []string {
	cats := []string{"shoes", "hats", "bags", "socks", "coats"}
	var out []string
	for i := 0; len(out) < 50; i++ {
		c := cats[i%len(cats)]
		d := 3 + i%12
		switch i % 5 {
		case 0:
			out = append(out, fmt.Sprintf(`{"all":[{"event":"add_to_cart","within_days":%d},{"not":{"event":"purchase","within_days":%d}}]}`, d, d))
		case 1:
			out = append(out, fmt.Sprintf(`{"event":"product_view","category":%q,"min_count":%d,"within_days":%d}`, c, 1+i%3, d))
		case 2:
			out = append(out, fmt.Sprintf(`{"rfm":{"recency_days_max":%d,"frequency_min":%d,"monetary_min":%d}}`, 10*d, 1+i%3, 20*(i%4)))
		case 3:
			out = append(out, fmt.Sprintf(`{"any":[{"event":"purchase","product":"sku-%d"},{"all":[{"event":"product_view","within_days":%d},{"not":{"event":"add_to_cart"}}]}]}`, i, d))
		case 4:
			out = append(out, fmt.Sprintf(`{"all":[{"event":"page_view","min_count":%d},{"not":{"rfm":{"recency_days_max":%d}}}]}`, 2+i%4, 5*d))
		}
	}
	return out
}

func benchCategory(_, p string) string {
	cats := [...]string{"shoes", "hats", "bags", "socks", "coats"}
	n, _ := strconv.Atoi(p[4:])
	return cats[n%len(cats)]
}

// BenchmarkRecordEvent50Rules ingests site events (profile read-modify-write
// in Pebble, 50 rules of the advertiser re-evaluated, memberships updated)
// for 100 k users.
func BenchmarkRecordEvent50Rules(b *testing.B) {
	clk := newClock()
	m := newEventsManager(b, openTestDB(b, b.TempDir()), clk, EventOptions{CategoryOf: benchCategory})
	for _, r := range benchRules() {
		if _, err := m.Create(Audience{AdvertiserID: "adv_1", Name: "r", Type: TypeRule, Rule: []byte(r)}); err != nil {
			b.Fatal(err)
		}
	}
	m.WaitRules()
	types := []string{EventPageView, EventProductView, EventProductView, EventProductView, EventAddToCart, EventPurchase}
	const users = 100_000
	uids := make([]Pseudonym, users)
	for i := range uids {
		uids[i] = m.Pseudonymizer().Of(IDUID, fmt.Sprint("u-", i))
	}
	skus := make([]string, 1000)
	for i := range skus {
		skus[i] = fmt.Sprint("sku-", i)
	}
	now := clk.Now()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 2))
		for pb.Next() {
			ev := Event{AdvertiserID: "adv_1", Type: types[r.IntN(len(types))], User: uids[r.IntN(users)], UserKind: IDUID,
				Products: []string{skus[r.IntN(len(skus))]}, ValueMicros: 25e6, Time: now}
			if err := m.RecordEvent(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
}

// fillProfiles writes n synthetic profiles for adv straight into the store
// (1–15 events each over the last 30 days, 1000 products).
func fillProfiles(b *testing.B, m *Manager, adv string, n int, now time.Time) {
	types := []string{EventPageView, EventProductView, EventProductView, EventProductView, EventAddToCart, EventPurchase}
	r := rand.New(rand.NewPCG(1, 2))
	batch := m.db.NewBatch()
	var buf []byte
	for i := 0; i < n; i++ {
		var v profView
		k := 1 + r.IntN(15)
		for j := 0; j < k; j++ {
			e := Event{Type: types[r.IntN(len(types))], Products: []string{"sku-" + strconv.Itoa(r.IntN(1000))},
				ValueMicros: int64(r.IntN(100)) * 1e6, Time: now.Add(-time.Duration(r.IntN(30*24*3600)) * time.Second)}
			_, _ = v.add(&e, now.Unix())
		}
		buf = v.encode(buf[:0])
		_ = batch.Set(profileKey(adv, m.Pseudonymizer().Of(IDUID, strconv.Itoa(i))), buf, nil)
		if batch.Len() > 4<<20 {
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			batch = m.db.NewBatch()
		}
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		b.Fatal(err)
	}
	// Settle the LSM so background compactions do not share the cores
	// with the measurement.
	pre := profilePrefix(adv)
	if err := m.db.Compact(context.Background(), pre, store.PrefixEnd(pre), true); err != nil {
		b.Fatal(err)
	}
	for m.db.Metrics().Compact.NumInProgress > 0 {
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkEstimate1M sizes an unsaved rule over 1 M stored profiles of one
// advertiser.
func BenchmarkEstimate1M(b *testing.B) {
	clk := newClock()
	m := newEventsManager(b, openTestDB(b, b.TempDir()), clk, EventOptions{CategoryOf: benchCategory})
	fillProfiles(b, m, "adv_1", 1_000_000, clk.Now())
	for _, tc := range []struct{ name, rule string }{
		{"abandoners", abandonerRule},
		{"category3in14d", `{"event":"product_view","category":"shoes","min_count":3,"within_days":14}`},
		{"rfm", `{"rfm":{"recency_days_max":30,"frequency_min":2,"monetary_min":100}}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int64
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				var err error
				if n, err = m.Estimate(context.Background(), "adv_1", []byte(tc.rule)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "members")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/estimate")
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/estimate")
		})
	}
}

// BenchmarkSnapshotContainsRule is the bid path's cost of asking a rule
// audience (members and non-members alike).
func BenchmarkSnapshotContainsRule(b *testing.B) {
	clk := newClock()
	m := newEventsManager(b, openTestDB(b, b.TempDir()), clk, EventOptions{})
	a, err := m.Create(Audience{AdvertiserID: "adv_1", Name: "r", Type: TypeRule, Rule: []byte(`{"event":"page_view"}`)})
	if err != nil {
		b.Fatal(err)
	}
	m.WaitRules()
	set := (*m.seg.reg.sets.Load())[a.ID]
	ps := make([]Pseudonym, 1<<16)
	for i := range ps {
		ps[i] = m.Pseudonymizer().Of(IDUID, strconv.Itoa(i))
		if i%2 == 0 {
			set.insert(ps[i])
		}
	}
	snap := m.Snapshot()
	b.ReportAllocs()
	b.ResetTimer()
	hits := 0
	for i := 0; i < b.N; i++ {
		if snap.Contains(a.ID, ps[i&(len(ps)-1)]) {
			hits++
		}
	}
	if hits == 0 {
		b.Fatal("no hits")
	}
}

// cpuTime is the process's user+system CPU time: on a shared, loaded machine
// it measures the work done better than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
