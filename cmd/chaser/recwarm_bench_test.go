package main

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/creative"
)

// Synthetic shop for the warm-start benchmark: 20,000 products in 200
// categories; each user browses 1–20 products, 80 % in one category with a
// Zipf preference for its popular products, 9 % carts and 3 % purchases,
// over the last 25 days (as creative's recommender benchmarks).
const (
	warmBenchItems      = 20_000
	warmBenchCategories = 200
)

// warmBenchApp opens an app on a new data dir holding users profiles,
// recorded through RecordEvent as live traffic would.
func warmBenchApp(b *testing.B, users int) (*app, int) {
	b.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := openApp(b.TempDir(), []byte("0123456789abcdef0123456789abcdef"), testToken, "http://127.0.0.1:1", log, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	const adv = "adv_bench"
	var feed strings.Builder
	feed.WriteString("id,title,price,landing_url,category,in_stock\n")
	for i := range warmBenchItems {
		fmt.Fprintf(&feed, "sku-%05d,P,1,https://shop.example/%d,cat-%03d,true\n", i, i, i/(warmBenchItems/warmBenchCategories))
	}
	if _, err := a.catalog.Replace(adv, strings.NewReader(feed.String()), "csv"); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(42, 1))
	catZipf := rand.NewZipf(rng, 1.1, 10, warmBenchCategories-1)
	per := warmBenchItems / warmBenchCategories
	itemZipf := rand.NewZipf(rng, 1.2, 5, uint64(per-1))
	pz := a.audiences.Pseudonymizer()
	start := time.Now().Add(-25 * 24 * time.Hour)
	events := 0
	for u := range users {
		user := pz.Of(audience.IDUID, fmt.Sprintf("bench-user-%d", u))
		cat := int(catZipf.Uint64())
		ts := start.Add(time.Duration(rng.IntN(24*24*3600)) * time.Second)
		for range 1 + rng.IntN(20) {
			it := cat*per + int(itemZipf.Uint64())
			if rng.IntN(10) >= 8 {
				it = rng.IntN(warmBenchItems)
			}
			typ := audience.EventProductView
			switch r := rng.IntN(100); {
			case r < 3:
				typ = audience.EventPurchase
			case r < 12:
				typ = audience.EventAddToCart
			}
			ts = ts.Add(time.Duration(10+rng.IntN(300)) * time.Second)
			if err := a.audiences.RecordEvent(audience.Event{AdvertiserID: adv, Type: typ, User: user,
				Products: []string{fmt.Sprintf("sku-%05d", it)}, Time: ts}); err != nil {
				b.Fatal(err)
			}
			events++
		}
	}
	return a, events
}

// BenchmarkWarmStart is the warm start of `chaser serve`: replaying every
// stored profile into fresh recommenders and rebuilding their neighbour
// lists (openApp's warmRecommenders; the Pebble open is not counted).
func BenchmarkWarmStart(b *testing.B) {
	for _, users := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("profiles=%dk", users/1000), func(b *testing.B) {
			a, events := warmBenchApp(b, users)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				a.recs = creative.NewRecommenders(creative.RecommenderOptions{})
				for _, adv := range a.catalog.Advertisers() {
					a.recs.SetFeed(a.catalog.Feed(adv))
				}
				if err := a.warmRecommenders(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			st := a.recs.For("adv_bench").Stats()
			heap := func() uint64 {
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			with := heap()
			a.recs = creative.NewRecommenders(creative.RecommenderOptions{}) // drop the warmed one
			b.ReportMetric(float64(events), "events")
			b.ReportMetric(float64(st.Pairs), "pairs")
			b.ReportMetric(float64(int64(with)-int64(heap()))/(1<<20), "recs-MB")
		})
	}
}
