package audience

import (
	"sync"
	"testing"
)

// TestProbeMatchesContains: Probe.Test answers, bit for bit, what Contains
// answers for every audience and id: list audiences (members, strangers and
// false positives alike), rule audiences, an audience with no filter, erased
// users; and a Probe stops being Current when the snapshot or the rule
// audiences change.
func TestProbeMatchesContains(t *testing.T) {
	members := randomPseudonyms(11, 4000)
	strangers := randomPseudonyms(12, 4000)
	rules := newRuleRegistry()
	snap := &Snapshot{sets: map[string]*memberSet{}, known: newMemberSet(8000, KnownFalsePositiveTarget), rules: rules}
	auds := []string{"l0", "l1", "l2", "l3", "rule", "missing", "l0"} // a repeat answers the same
	for k := 0; k < 4; k++ {
		// Small filters (1 024 capacity, 1 000 members each) so false
		// positives occur and must agree too.
		set := newMemberSet(minCapacity, FalsePositiveTarget)
		set.add(members[k*1000 : (k+1)*1000])
		snap.sets[auds[k]] = set
	}
	snap.sets["rule"] = newMemberSet(minCapacity, FalsePositiveTarget) // a rule audience's (empty) filter
	exact := newExactSet()
	for _, p := range members[:1500] { // overlaps l0 and l1
		exact.insert(p)
	}
	rules.sets.Store(&map[string]*exactSet{"rule": exact})
	snap.erased = map[Pseudonym]struct{}{members[5]: {}, members[1200]: {}, strangers[3]: {}}

	pr := snap.Probe(auds)
	if pr.Len() != len(auds) || !pr.Current(snap) {
		t.Fatalf("Len %d Current %v", pr.Len(), pr.Current(snap))
	}
	hits := make([]uint32, pr.Len())
	fp := 0
	for u := 0; u < 4000; u++ {
		ids := []Pseudonym{strangers[u], members[(u*7)%4000], members[u]}
		if u%5 == 0 {
			ids = ids[:1]
		}
		anyHit := pr.Test(ids, hits)
		want := false
		for j, a := range auds {
			for i, p := range ids {
				c := snap.Contains(a, p)
				want = want || c
				if got := hits[j]>>i&1 == 1; got != c {
					t.Fatalf("user %d audience %s id %d: probe %v, Contains %v", u, a, i, got, c)
				}
				if c && i == 0 {
					fp++ // a stranger that a filter lets through
				}
			}
		}
		if anyHit != want {
			t.Fatalf("user %d: Test says %v, Contains any %v", u, anyHit, want)
		}
	}
	if fp == 0 {
		t.Log("no false positive among strangers (filters at capacity should give a few)")
	}

	// More ids than a hit holds: the first MaxProbeIDs are tested.
	many := append(append([]Pseudonym{}, strangers[:MaxProbeIDs]...), members[0])
	if pr.Test(many, hits) {
		for j, a := range auds {
			var want uint32
			for i, p := range many[:MaxProbeIDs] {
				if snap.Contains(a, p) {
					want |= 1 << i
				}
			}
			if hits[j] != want {
				t.Fatalf("%d ids, audience %s: hits %b, want %b", len(many), a, hits[j], want)
			}
		}
	}

	rules.sets.Store(&map[string]*exactSet{"rule": exact, "other": newExactSet()})
	if pr.Current(snap) {
		t.Error("still Current after a rule audience came")
	}
	if pr.Current(snap.clone()) {
		t.Error("Current for another snapshot")
	}
}

// TestProbeMemo: a single-id user's filter answers are remembered, and
// every change to a filter's bits (an add, a rebuilt filter swapped in)
// shows at once, also while requests probe concurrently.
func TestProbeMemo(t *testing.T) {
	members := randomPseudonyms(21, 200)
	strangers := randomPseudonyms(22, 200)
	snap := &Snapshot{sets: map[string]*memberSet{}, known: newMemberSet(1000, KnownFalsePositiveTarget)}
	auds := []string{"a", "b"}
	for _, a := range auds {
		snap.sets[a] = newMemberSet(minCapacity, FalsePositiveTarget)
	}
	snap.sets["a"].add(members[:100])
	pr := snap.Probe(auds)
	hits := make([]uint32, pr.Len())
	check := func(p Pseudonym, want ...bool) {
		t.Helper()
		for round := 0; round < 2; round++ { // the first fills the memo, the second reads it
			pr.Test([]Pseudonym{p}, hits)
			for j, a := range auds {
				if got := hits[j] == 1; got != want[j] || got != snap.Contains(a, p) {
					t.Fatalf("round %d audience %s: hit %v, want %v (Contains %v)", round, a, got, want[j], snap.Contains(a, p))
				}
			}
		}
	}
	u := members[150]
	check(u, false, false)
	snap.sets["b"].add([]Pseudonym{u}) // in place: no new snapshot, no new Probe
	check(u, false, true)
	check(members[5], true, false)

	// A rebuild of "a" without members[5] (a removal) swaps a new filter in.
	set := snap.sets["a"]
	f := newBloom(minCapacity, FalsePositiveTarget)
	set.beginRebuild(f)
	f.addAll(members[6:100])
	check(members[5], true, false) // the old filter still answers, and is remembered
	set.endRebuild(f)
	if set.test(&members[5]) {
		t.Skip("members[5] is a false positive of the rebuilt filter")
	}
	check(members[5], false, false)

	// Concurrent probes while members arrive: once the adds are done, every
	// one of them is seen (no answer remembered from before its add).
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			h := make([]uint32, pr.Len())
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				pr.Test([]Pseudonym{strangers[(i*7+g)%len(strangers)]}, h)
			}
		}(g)
	}
	for i := range strangers {
		snap.sets["b"].add(strangers[i : i+1])
	}
	close(stop)
	wg.Wait()
	for i := range strangers {
		pr.Test([]Pseudonym{strangers[i]}, hits)
		if hits[1] != 1 {
			t.Fatalf("stranger %d added to b, probe says %b", i, hits[1])
		}
	}
}
