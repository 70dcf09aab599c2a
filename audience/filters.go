package audience

import (
	"encoding/binary"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/bits-and-blooms/bloom/v3"
)

// FalsePositiveTarget is the false-positive rate audience filters are sized
// for and kept under: a filter is grown (rebuilt bigger from the store)
// before the members added to it pass its capacity at this rate.
const FalsePositiveTarget = 0.005

// KnownFalsePositiveTarget is the rate of the filter of every member of every
// audience, which the bid path asks first. A false "known" only costs the
// lookups in the campaigns' own audience filters (each at
// FalsePositiveTarget), so it trades a higher rate for about one byte a user
// instead of 1.4.
const KnownFalsePositiveTarget = 0.02

// headroom is the capacity a filter is built with, relative to the members
// it holds: room to grow before a rebuild, while staying under 2 bytes a
// member at FalsePositiveTarget (11 bits a member at capacity).
const headroom = 1.25

// minCapacity is the smallest filter capacity (a 1.4 KB filter).
const minCapacity = 1024

// bloomFilter is a bloom filter whose bit words are read and written with
// atomic operations, so the bid path tests it while uploads add to it, with
// no lock and no copy. Its parameters (m bits, k probes) are the ones
// bits-and-blooms/bloom/v3 estimates for a capacity and rate; its probes are
// derived from the pseudonym itself (already a keyed hash, uniformly
// distributed), by double hashing, so a test costs no hashing. bloom/v3's own
// BloomFilter is not safe for concurrent Add and Test, and copying it on
// every upload batch costs O(filter size) a batch; that is why Chaser keeps
// its own words.
type bloomFilter struct {
	words    []uint64
	m        uint64 // bits, a multiple of 64
	k        uint32
	capacity uint64  // members it holds at rate
	rate     float64 // the false-positive target it was sized for
	added    atomic.Uint64
}

func newBloom(capacity uint64, rate float64) *bloomFilter {
	if capacity < minCapacity {
		capacity = minCapacity
	}
	m, k := bloom.EstimateParameters(uint(capacity), rate)
	words := (uint64(m) + 63) / 64
	return &bloomFilter{words: make([]uint64, words), m: words * 64, k: uint32(k), capacity: capacity, rate: rate}
}

func probes(p *Pseudonym) (h1, h2 uint64) {
	return binary.LittleEndian.Uint64(p[0:8]), binary.LittleEndian.Uint64(p[8:16]) | 1
}

// test reports whether p may be in the filter (false: certainly not).
func (f *bloomFilter) test(p *Pseudonym) bool {
	h1, h2 := probes(p)
	for i := uint32(0); i < f.k; i++ {
		pos, _ := bits.Mul64(h1, f.m)
		if atomic.LoadUint64(&f.words[pos>>6])&(1<<(pos&63)) == 0 {
			return false
		}
		h1 += h2
	}
	return true
}

func (f *bloomFilter) set(p *Pseudonym) {
	h1, h2 := probes(p)
	for i := uint32(0); i < f.k; i++ {
		pos, _ := bits.Mul64(h1, f.m)
		w, b := &f.words[pos>>6], uint64(1)<<(pos&63)
		if atomic.LoadUint64(w)&b == 0 {
			atomic.OrUint64(w, b)
		}
		h1 += h2
	}
}

func (f *bloomFilter) addAll(ps []Pseudonym) {
	for i := range ps {
		f.set(&ps[i])
	}
	f.added.Add(uint64(len(ps)))
}

// full reports whether adding n more members would pass the capacity.
func (f *bloomFilter) full(n uint64) bool { return f.added.Load()+n > f.capacity }

// bytes is the filter's memory.
func (f *bloomFilter) bytes() uint64 { return f.m / 8 }

// fillRate is the measured false-positive rate of the filter as it is: the
// chance that k probes of a non-member all land on set bits, from the share
// of bits set (one pass over the words).
func (f *bloomFilter) fillRate() float64 {
	var ones uint64
	for i := range f.words {
		ones += uint64(bits.OnesCount64(atomic.LoadUint64(&f.words[i])))
	}
	return math.Pow(float64(ones)/float64(f.m), float64(f.k))
}

// memberSet is one audience's filter as the bid path sees it. Tests read cur;
// adds go to cur and, while a rebuild from the store is under way, to next,
// the filter that will replace cur, so nothing added during a rebuild is
// lost. The Manager holds one memberSet per audience for the audience's life.
type memberSet struct {
	cur  atomic.Pointer[bloomFilter]
	next atomic.Pointer[bloomFilter]
	rate float64
	// rebuild serialises rebuilds of this set; readers and adders never take it.
	rebuild sync.Mutex
	// removed counts members removed since cur was built: bits a rebuild would
	// clear (the known filter rebuilds when they grow too many).
	removed atomic.Int64
}

func newMemberSet(capacity uint64, rate float64) *memberSet {
	s := &memberSet{rate: rate}
	s.cur.Store(newBloom(capacity, rate))
	return s
}

func (s *memberSet) test(p *Pseudonym) bool { return s.cur.Load().test(p) }

// add adds ps to the set. It loads next before cur: a rebuild stores cur
// before clearing next, so an add racing with the end of a rebuild reaches the
// new filter through one of the two.
func (s *memberSet) add(ps []Pseudonym) {
	if len(ps) == 0 {
		return
	}
	n := s.next.Load()
	c := s.cur.Load()
	c.addAll(ps)
	if n != nil && n != c {
		n.addAll(ps)
	}
}

// beginRebuild publishes f as the filter under construction. The caller
// holds s.rebuild, and reads the store only after this call.
func (s *memberSet) beginRebuild(f *bloomFilter) { s.next.Store(f) }

// endRebuild swaps f in (when non-nil) and stops doubling adds.
func (s *memberSet) endRebuild(f *bloomFilter) {
	if f != nil {
		s.cur.Store(f)
		s.removed.Store(0)
	}
	s.next.Store(nil)
}

// FilterStats describe an audience's filter.
type FilterStats struct {
	Bytes    uint64 `json:"bytes"`
	Added    uint64 `json:"added"`    // ids added since it was built (members and linked ids)
	Capacity uint64 `json:"capacity"` // ids it holds under the target rate
	K        uint32 `json:"hashes"`
	// FalsePositiveRate is measured from the bits set.
	FalsePositiveRate float64 `json:"false_positive_rate"`
	Target            float64 `json:"false_positive_target"`
}

func (s *memberSet) stats() FilterStats {
	f := s.cur.Load()
	return FilterStats{Bytes: f.bytes(), Added: f.added.Load(), Capacity: f.capacity, K: f.k,
		FalsePositiveRate: f.fillRate(), Target: f.rate}
}

// Snapshot is the bid path's view of every audience's members. Readers load
// it from an atomic pointer and never lock; the Manager swaps in a new one
// when audiences come or go or a user is erased, and adds members to its
// filters in place (atomically).
type Snapshot struct {
	sets   map[string]*memberSet
	known  *memberSet // every member of every audience: most users are in none
	erased map[Pseudonym]struct{}
}

// Known reports whether p may be a member of any audience. False means
// certainly not; the bid path stops there for most users.
func (s *Snapshot) Known(p Pseudonym) bool {
	if !s.known.test(&p) {
		return false
	}
	if len(s.erased) > 0 {
		if _, gone := s.erased[p]; gone {
			return false
		}
	}
	return true
}

// Contains reports whether p is (with FalsePositiveTarget odds of a false
// positive) a member of audience id, directly or through an identity link.
// Erased users never match.
func (s *Snapshot) Contains(id string, p Pseudonym) bool {
	set := s.sets[id]
	if set == nil || !set.test(&p) {
		return false
	}
	if len(s.erased) > 0 {
		if _, gone := s.erased[p]; gone {
			return false
		}
	}
	return true
}

// Has reports whether the snapshot holds a filter for audience id.
func (s *Snapshot) Has(id string) bool { return s.sets[id] != nil }

// Erased reports whether p was erased.
func (s *Snapshot) Erased(p Pseudonym) bool {
	_, gone := s.erased[p]
	return gone
}

func (s *Snapshot) clone() *Snapshot {
	n := &Snapshot{sets: make(map[string]*memberSet, len(s.sets)+1), known: s.known, erased: s.erased}
	for k, v := range s.sets {
		n.sets[k] = v
	}
	return n
}
