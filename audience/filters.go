package audience

import (
	"github.com/bits-and-blooms/bloom/v3"
)

// FalsePositiveTarget is the false-positive rate filters are sized for.
const FalsePositiveTarget = 0.005

// overlayMax is how many recent additions an audience keeps outside its
// bloom filter before they are merged into a fresh copy of the filter.
const overlayMax = 4096

// memberSet is one audience's members as the bid path sees them: a bloom
// filter plus a small exact overlay of recent additions. It is immutable once
// published in a Snapshot.
type memberSet struct {
	filter   *bloom.BloomFilter
	capacity uint // members the filter was sized for
	added    uint // members added to filter
	overlay  map[Pseudonym]struct{}
	// previous holds the set this one outgrew until a rebuild from the store
	// replaces both: a grown bloom filter cannot take over old bits.
	previous *memberSet
}

func newMemberSet(capacity uint) *memberSet {
	if capacity < 1024 {
		capacity = 1024
	}
	return &memberSet{
		filter:   bloom.NewWithEstimates(capacity, FalsePositiveTarget),
		capacity: capacity,
		overlay:  map[Pseudonym]struct{}{},
	}
}

func (s *memberSet) test(p Pseudonym) bool {
	for ; s != nil; s = s.previous {
		if len(s.overlay) > 0 {
			if _, ok := s.overlay[p]; ok {
				return true
			}
		}
		if s.added > 0 && s.filter.Test(p[:]) {
			return true
		}
	}
	return false
}

// needsRebuild reports whether the set has outgrown its filter and should be
// rebuilt from the store to get back to one filter at the target rate.
func (s *memberSet) needsRebuild() bool { return s.previous != nil }

// withAdded returns a copy of s with ps added. Small additions go to the
// overlay; large ones (or a full overlay) produce a new filter. When the
// member count passes the filter's capacity the new filter is a bigger one
// chained to the old until the owner rebuilds from the store.
func (s *memberSet) withAdded(ps []Pseudonym) *memberSet {
	if len(ps) == 0 {
		return s
	}
	if len(s.overlay)+len(ps) <= overlayMax {
		n := &memberSet{filter: s.filter, capacity: s.capacity, added: s.added, previous: s.previous,
			overlay: make(map[Pseudonym]struct{}, len(s.overlay)+len(ps))}
		for p := range s.overlay {
			n.overlay[p] = struct{}{}
		}
		for _, p := range ps {
			n.overlay[p] = struct{}{}
		}
		return n
	}
	var n *memberSet
	if total := s.added + uint(len(s.overlay)) + uint(len(ps)); total > s.capacity {
		n = newMemberSet(uint(len(s.overlay)+len(ps)) + s.capacity)
		n.previous = &memberSet{filter: s.filter, capacity: s.capacity, added: s.added, previous: s.previous}
	} else {
		n = &memberSet{filter: s.filter.Copy(), capacity: s.capacity, added: s.added, previous: s.previous,
			overlay: map[Pseudonym]struct{}{}}
	}
	for p := range s.overlay {
		n.filter.Add(p[:])
		n.added++
	}
	for _, p := range ps {
		n.filter.Add(p[:])
		n.added++
	}
	return n
}

// Snapshot is an immutable view of every audience's members for the bid path.
type Snapshot struct {
	sets   map[string]*memberSet
	known  *memberSet // every member of every audience: most users are in none
	erased map[Pseudonym]struct{}
}

// Known reports whether p may be a member of any audience. False means
// certainly not; the bid path stops there for most users.
func (s *Snapshot) Known(p Pseudonym) bool {
	return s.known.test(p)
}

// Contains reports whether p is (with FalsePositiveTarget odds of a false
// positive) a member of audience id. Erased users never match.
func (s *Snapshot) Contains(id string, p Pseudonym) bool {
	set := s.sets[id]
	if set == nil || !set.test(p) {
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
