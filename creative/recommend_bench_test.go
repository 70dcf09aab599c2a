package creative

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"testing"
)

// A synthetic advertiser: 50,000 products in 500 categories, browsed by
// 60,000 users whose sessions mostly stay in one category and favour its
// popular products (Zipf), with carts and purchases.
const (
	recBenchItems      = 50_000
	recBenchCategories = 500
	recBenchUsers      = 60_000
)

type recBenchModel struct {
	rec       *Recommender
	histories [][]ItemEvent // sample user histories, 1–20 events
	observe   [][]ItemEvent // further sessions, for BenchmarkObserve
	now       int64
}

var (
	recBenchOnce sync.Once
	recBenchM    recBenchModel
)

func recBenchItem(i int) string { return fmt.Sprintf("sku-%05d", i) }

// recBenchSession draws one user's session.
func recBenchSession(rng *rand.Rand, catZipf, itemZipf *rand.Zipf, names []string, ts int64) []ItemEvent {
	per := recBenchItems / recBenchCategories
	cat := int(catZipf.Uint64())
	n := 1 + rng.IntN(20)
	s := make([]ItemEvent, 0, n)
	for range n {
		var it int
		if rng.IntN(10) < 8 {
			it = cat*per + int(itemZipf.Uint64())
		} else {
			it = rng.IntN(recBenchItems)
		}
		kind := ItemView
		switch r := rng.IntN(100); {
		case r < 3:
			kind = ItemPurchase
		case r < 12:
			kind = ItemCart
		}
		ts += int64(10 + rng.IntN(300))
		s = append(s, ItemEvent{Item: names[it], Kind: kind, TS: ts})
	}
	return s
}

func recLoadBenchModel(tb testing.TB) *recBenchModel {
	recBenchOnce.Do(func() {
		rng := rand.New(rand.NewPCG(42, 1))
		catZipf := rand.NewZipf(rng, 1.1, 10, recBenchCategories-1)
		itemZipf := rand.NewZipf(rng, 1.2, 5, recBenchItems/recBenchCategories-1)
		names := make([]string, recBenchItems)
		for i := range names {
			names[i] = recBenchItem(i)
		}
		r := NewRecommender(RecommenderOptions{})
		for i := range names {
			r.SetCategory(names[i], fmt.Sprintf("cat-%03d", i/(recBenchItems/recBenchCategories)))
		}
		ts := recT0 - 30*recDay
		for u := range recBenchUsers {
			s := recBenchSession(rng, catZipf, itemZipf, names, ts+int64(u)*40)
			for i := range s {
				r.Observe(s[:i], s[i], "")
			}
			if len(recBenchM.histories) < 4096 {
				recBenchM.histories = append(recBenchM.histories, s)
			}
		}
		for range 4096 {
			recBenchM.observe = append(recBenchM.observe, recBenchSession(rng, catZipf, itemZipf, names, recT0))
		}
		r.Rebuild()
		recBenchM.rec = r
		recBenchM.now = ts + recBenchUsers*40 + recDay
	})
	return &recBenchM
}

// recBenchEligible says 95 % of products are in stock, without allocating.
var recBenchSeed = maphash.MakeSeed()

func recBenchEligible(item string) bool { return maphash.String(recBenchSeed, item)%20 != 0 }

// BenchmarkRecommend is one recommendation of 5 products on the bid path.
func BenchmarkRecommend(b *testing.B) {
	m := recLoadBenchModel(b)
	st := m.rec.Stats()
	b.Logf("model: %d items, %d categories, %d pair counters, %d neighbour entries", st.Items, st.Categories, st.Pairs, st.Neighbours)
	for _, tc := range []struct {
		name string
		hist func(i int) []ItemEvent
	}{
		{"history", func(i int) []ItemEvent { return m.histories[i%len(m.histories)] }},
		{"cold", func(int) []ItemEvent { return nil }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dst := make([]string, 0, 8)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				dst = m.rec.Recommend(dst[:0], tc.hist(i), 5, m.now, recBenchEligible)
				i++
			}
			if len(dst) == 0 {
				b.Fatal("no recommendation")
			}
		})
	}
}

// BenchmarkRecommendParallel is BenchmarkRecommend on every core.
func BenchmarkRecommendParallel(b *testing.B) {
	m := recLoadBenchModel(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]string, 0, 8)
		i := 0
		for pb.Next() {
			dst = m.rec.Recommend(dst[:0], m.histories[i%len(m.histories)], 5, m.now, recBenchEligible)
			i++
		}
	})
}

// BenchmarkObserve is learning from one event (the pixel path).
func BenchmarkObserve(b *testing.B) {
	m := recLoadBenchModel(b)
	r := NewRecommender(RecommenderOptions{})
	for _, s := range m.histories {
		for i := range s {
			r.Observe(s[:i], s[i], "")
		}
	}
	b.ReportAllocs()
	i, j := 0, 0
	for b.Loop() {
		s := m.observe[i%len(m.observe)]
		r.Observe(s[:j], s[j], "")
		if j++; j == len(s) {
			i, j = i+1, 0
		}
	}
}

// BenchmarkRebuild is recomputing the snapshot of the 50,000-product model.
func BenchmarkRebuild(b *testing.B) {
	m := recLoadBenchModel(b)
	b.ReportAllocs()
	for b.Loop() {
		m.rec.Rebuild()
	}
}

// BenchmarkRecommendYooChoose recommends for YooChoose test session prefixes
// from a model trained on train_full, when the data is present.
func BenchmarkRecommendYooChoose(b *testing.B) {
	dir := evalDataDir(b)
	train, err := evalReadSessions(dir+"/yoochoose-clicks-100k", "train_full", 0)
	if err != nil {
		b.Fatal(err)
	}
	test, err := evalReadSessions(dir+"/yoochoose-clicks-100k", "test", 0)
	if err != nil {
		b.Fatal(err)
	}
	rec := evalTrainSessions(train, RecommenderOptions{})
	dst := make([]string, 0, 8)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := test[i%len(test)]
		dst = rec.Recommend(dst[:0], s[:len(s)-1], 5, s[len(s)-1].TS, nil)
		i++
	}
}
