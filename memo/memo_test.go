package memo

import (
	"strconv"
	"sync"
	"testing"
)

// TestTable: Get answers only what Put stored for that very key, also when
// more keys than slots evict each other; Range sees what is stored; New
// rounds the slot count up to a power of two.
func TestTable(t *testing.T) {
	for _, c := range []struct{ ask, want int }{{0, 1}, {1, 1}, {2, 2}, {3, 4}, {1000, 1024}, {1024, 1024}} {
		if got := len(New[string, int](c.ask).slots); got != c.want {
			t.Errorf("New(%d): %d slots, want %d", c.ask, got, c.want)
		}
	}
	type key struct {
		s string
		n uint16
	}
	m := New[key, string](8)
	if _, ok := m.Get(key{"a", 1}); ok {
		t.Fatal("empty table answered")
	}
	for i := range 100 {
		k := key{strconv.Itoa(i % 37), uint16(i % 3)}
		want := k.s + "/" + strconv.Itoa(int(k.n))
		if v, ok := m.Get(k); ok && v != want {
			t.Fatalf("%v: %q, want %q", k, v, want)
		}
		m.Put(k, want)
		if v, ok := m.Get(k); !ok || v != want {
			t.Fatalf("%v right after Put: %q %v", k, v, ok)
		}
	}
	n := 0
	m.Range(func(k key, v string) bool {
		if v != k.s+"/"+strconv.Itoa(int(k.n)) {
			t.Errorf("Range: %v holds %q", k, v)
		}
		n++
		return true
	})
	if n == 0 || n > 8 {
		t.Errorf("Range saw %d entries in 8 slots", n)
	}
	stopped := 0
	m.Range(func(key, string) bool { stopped++; return false })
	if stopped != 1 {
		t.Errorf("Range went on after false: %d calls", stopped)
	}
}

// TestTableConcurrent: readers and writers at once (run with -race) never
// see a value stored for another key.
func TestTableConcurrent(t *testing.T) {
	m := New[int, int](16)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := (i*7 + g) % 100
				if v, ok := m.Get(k); ok && v != k*k {
					t.Errorf("%d: %d", k, v)
					return
				}
				m.Put(k, k*k)
			}
		}()
	}
	wg.Wait()
}

// BenchmarkGet: a hit for the key shapes the bid path uses.
func BenchmarkGet(b *testing.B) {
	b.Run("string", func(b *testing.B) {
		m := New[string, int](1024)
		k := "CQPXYZAQPXYZAAHABBENBMFsAP_gAEPgAAAAKgtV_G__bWlr-X73aftkeY1P9_h77sQxBhfJs-4FzLvW_JwX32EzNE36tqYKmRIAu3TBIQNlHJDURVCgaogVrTDMaEWoVTNJ6BkgFgRUSeQA"
		m.Put(k, 1)
		for b.Loop() {
			if _, ok := m.Get(k); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("three_strings", func(b *testing.B) {
		m := New[[3]string, int](4096)
		k := [3]string{"adv-7", "cmp-12", "sku-123456"}
		m.Put(k, 1)
		for b.Loop() {
			if _, ok := m.Get(k); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("pseudonym", func(b *testing.B) {
		m := New[[16]byte, int](4096)
		k := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
		m.Put(k, 1)
		for b.Loop() {
			if _, ok := m.Get(k); !ok {
				b.Fatal("miss")
			}
		}
	})
}
