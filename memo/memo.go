package memo

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
)

// Table remembers one value per slot for recently seen keys (see the
// package doc). The zero Table is not usable: make one with New. A Table is
// safe for concurrent use.
type Table[K comparable, V any] struct {
	seed  maphash.Seed
	mask  uint64
	slots []atomic.Pointer[entry[K, V]]
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a Table of at least slots slots (a power of two).
func New[K comparable, V any](slots int) *Table[K, V] {
	n := 1
	if slots > 1 {
		n = 1 << bits.Len(uint(slots-1))
	}
	return &Table[K, V]{seed: maphash.MakeSeed(), mask: uint64(n - 1), slots: make([]atomic.Pointer[entry[K, V]], n)}
}

// Get returns the value remembered for k, if k's slot still holds it.
func (t *Table[K, V]) Get(k K) (V, bool) {
	if e := t.slot(k).Load(); e != nil && e.key == k {
		return e.val, true
	}
	var zero V
	return zero, false
}

// Put remembers v for k, replacing what k's slot held. The Table keeps k
// and v as they are: a key must not share memory its caller will change
// (strings.Clone a string that borrows a request's bytes), and a value must
// not be changed afterwards.
func (t *Table[K, V]) Put(k K, v V) {
	t.slot(k).Store(&entry[K, V]{key: k, val: v})
}

// Range calls f for each remembered key and value until f returns false.
func (t *Table[K, V]) Range(f func(k K, v V) bool) {
	for i := range t.slots {
		if e := t.slots[i].Load(); e != nil && !f(e.key, e.val) {
			return
		}
	}
}

func (t *Table[K, V]) slot(k K) *atomic.Pointer[entry[K, V]] {
	return &t.slots[maphash.Comparable(t.seed, k)&t.mask]
}
