package audience

import (
	"slices"

	"github.com/chaser-dsp/chaser/memo"
)

// MaxProbeIDs is the most ids of one user Probe.Test takes: a hit is a bit
// per id in a uint32.
const MaxProbeIDs = 32

// Probe tests one user against a fixed list of audiences in one pass. The
// bid path asks, for every live campaign, whether the user is in one of its
// audiences: asked one Contains at a time (a map lookup, a filter probe, a
// rule-registry lookup on a miss) the filter probes, each a cache miss in
// tens of MB of filters, run one after another. A Probe resolves the list's
// filters and rule sets once, and Test then probes every filter with no
// lookup and no data-dependent branch in between, so the processor overlaps
// the misses.
//
// A Probe answers for the snapshot it was built from and the rule
// audiences registered then; Current says whether it still does. It is safe
// to share between goroutines.
//
// For a user of one id (the common case once the known filter has dropped
// the others) it remembers which filters held the id (probeAnswer): the same
// user comes back within seconds, on every ad slot of a page and through
// every exchange that resells the impression. Rule audiences and erasures
// are always asked afresh.
type Probe struct {
	snap  *Snapshot
	rules *map[string]*exactSet // the rule registry's sets it resolved
	auds  []string
	sets  []*memberSet                        // sets[j]: audience auds[j]'s filter; nil when it has none
	exact []*exactSet                         // exact[j]: rule audience auds[j]'s members; nil when no rule audience
	memo  *memo.Table[Pseudonym, probeAnswer] // single-id users' filter answers
}

// probeAnswer is what a Probe's memo keeps for one id: which of its
// filters held the id (hits[j]: 1 when audience j's filter does), good only
// while filterGen is still gen. Every change to any filter's bits (an add,
// a rebuild swapped in) moves filterGen after the bits are in place, so an
// answer is never staler than the filters. Uploads are rare next to bid
// requests; a lost race or two ids sharing a slot cost a probe.
type probeAnswer struct {
	gen  uint64
	hits []uint32
}

// probeMemoSlots bounds a Probe's memo (entries of about 250 bytes for 50
// audiences).
const probeMemoSlots = 4096

// Probe returns a Probe of audiences (their order is the order of
// Test's hits). The slice is kept: do not change it afterwards.
func (s *Snapshot) Probe(audiences []string) *Probe {
	pr := &Probe{
		snap:  s,
		auds:  audiences,
		sets:  make([]*memberSet, len(audiences)),
		exact: make([]*exactSet, len(audiences)),
		memo:  memo.New[Pseudonym, probeAnswer](probeMemoSlots),
	}
	if s.rules != nil {
		pr.rules = s.rules.sets.Load()
	}
	for j, a := range audiences {
		pr.sets[j] = s.sets[a]
		if pr.rules != nil {
			pr.exact[j] = (*pr.rules)[a]
		}
	}
	return pr
}

// Current reports whether pr answers for s: built from s, and no rule
// audience came or went since (those change the rule registry, not the
// snapshot).
func (pr *Probe) Current(s *Snapshot) bool {
	return pr.snap == s && (s.rules == nil || s.rules.sets.Load() == pr.rules)
}

// filterHits sets hits[j] to the bits i of the ids ids[i] that audience
// j's filter holds (0 for an audience without one).
func (pr *Probe) filterHits(ids []Pseudonym, hits []uint32) {
	// First touch every line the tests will read: loads with nothing
	// depending on them but a sum, so the processor keeps many misses in
	// flight at once; the tests that follow then read from the cache.
	// (Atomic loads are never optimised away, even with their values unused.)
	for _, set := range pr.sets {
		if set != nil {
			f := set.cur.Load()
			for i := range ids {
				f.line(&ids[i])
			}
		}
	}
	for j, set := range pr.sets {
		var h uint32
		if set != nil {
			f := set.cur.Load()
			for i := range ids {
				h |= f.hit(&ids[i]) << i
			}
		}
		hits[j] = h
	}
}

// Len is the number of audiences pr tests.
func (pr *Probe) Len() int { return len(pr.auds) }

// Test sets, for each audience j of pr, hits[j] to the bits i of the ids
// ids[i] that audience j contains, as Contains answers (FalsePositiveTarget
// odds of a false positive for a filter, exact for a rule audience; erased
// ids never), and reports whether any bit is set. hits must hold Len()
// entries; ids beyond MaxProbeIDs are not tested.
func (pr *Probe) Test(ids []Pseudonym, hits []uint32) bool {
	if len(ids) > MaxProbeIDs {
		ids = ids[:MaxProbeIDs]
	}
	hits = hits[:len(pr.auds)]
	if len(ids) == 1 {
		gen := filterGen.Load()
		if a, ok := pr.memo.Get(ids[0]); ok && a.gen == gen {
			copy(hits, a.hits)
		} else {
			pr.filterHits(ids, hits)
			pr.memo.Put(ids[0], probeAnswer{gen: gen, hits: slices.Clone(hits)})
		}
	} else {
		pr.filterHits(ids, hits)
	}
	var all uint32
	for j, rs := range pr.exact {
		if rs != nil {
			for i := range ids {
				if rs.has(ids[i]) {
					hits[j] |= 1 << i
				}
			}
		}
		all |= hits[j]
	}
	if all == 0 || len(pr.snap.erased) == 0 {
		return all != 0
	}
	var gone uint32
	for i := range ids {
		if pr.snap.Erased(ids[i]) {
			gone |= 1 << i
		}
	}
	if gone == 0 {
		return true
	}
	all = 0
	for j := range hits {
		hits[j] &^= gone
		all |= hits[j]
	}
	return all != 0
}
