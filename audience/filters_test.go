package audience

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bits-and-blooms/bloom/v3"
)

// randomPseudonyms returns n pseudonyms from a seeded generator (pseudonyms
// are keyed hashes: uniformly distributed, like these).
func randomPseudonyms(seed uint64, n int) []Pseudonym {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]Pseudonym, n)
	for i := range out {
		binary.LittleEndian.PutUint64(out[i][0:8], r.Uint64())
		binary.LittleEndian.PutUint64(out[i][8:16], r.Uint64())
	}
	return out
}

// TestFalsePositiveRate builds a filter at its capacity and measures its
// false positives on 1 M random non-members against the target, next to
// bits-and-blooms/bloom/v3 with the same parameters.
func TestFalsePositiveRate(t *testing.T) {
	members, probes, tolerance := 1_000_000, 1_000_000, 1.1
	if raceEnabled {
		members, probes, tolerance = 100_000, 100_000, 1.25 // atomics are slow under -race
	}
	for _, rate := range []float64{FalsePositiveTarget, KnownFalsePositiveTarget} {
		f := newBloom(uint64(members), rate)
		in := randomPseudonyms(1, members)
		f.addAll(in)
		for i := range in {
			if !f.test(&in[i]) {
				t.Fatalf("member %d not found: a bloom filter has no false negatives", i)
			}
		}
		ref := bloom.NewWithEstimates(uint(members), rate) // the classic layout, for reference
		for i := range in {
			ref.Add(in[i][:])
		}
		var fp, refFP int
		for _, p := range randomPseudonyms(2, probes) {
			if f.test(&p) {
				fp++
			}
			if ref.Test(p[:]) {
				refFP++
			}
		}
		got, refRate := float64(fp)/float64(probes), float64(refFP)/float64(probes)
		bytesPer := float64(f.bytes()) / float64(members)
		t.Logf("target %.3f: measured %.4f, fill estimate %.4f, %.2f bytes/member, k=%d; bloom/v3 classic: %.4f, %.2f bytes/member",
			rate, got, f.fillRate(), bytesPer, f.k, refRate, float64(ref.Cap())/8/float64(members))
		if got > rate*tolerance {
			t.Errorf("target %.3f: measured false-positive rate %.4f", rate, got)
		}
		if fr := f.fillRate(); fr > rate*1.1 || fr < got/tolerance {
			t.Errorf("fill-based estimate %.4f disagrees with measured %.4f", fr, got)
		}
		if rate == FalsePositiveTarget && bytesPer*headroom > 2 {
			t.Errorf("%.2f bytes a member at capacity, %.2f with headroom: over 2", bytesPer, bytesPer*headroom)
		}
	}
}

// TestFilterConcurrentAddTest runs adds, tests and rebuild swaps at once
// (meaningful under -race): nothing added is ever missed.
func TestFilterConcurrentAddTest(t *testing.T) {
	s := newMemberSet(1000, FalsePositiveTarget)
	batches := make([][]Pseudonym, 40)
	for i := range batches {
		batches[i] = randomPseudonyms(uint64(100+i), 500)
	}
	// committed counts batches in the "store" (what a rebuild reads), bumped
	// before they are added to the filter, as the Manager commits to Pebble
	// before it adds; added counts batches fully added (what readers check).
	var committed, added atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := int(added.Load())
				for i := 0; i < n; i++ {
					for j := range batches[i] {
						if !s.test(&batches[i][j]) {
							t.Errorf("batch %d member %d missed", i, j)
							return
						}
					}
				}
			}
		}()
	}
	// A rebuilder that swaps in a bigger filter holding everything added so far.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < 5; k++ {
			s.rebuild.Lock()
			f := newBloom(uint64(40*500*2), FalsePositiveTarget)
			s.beginRebuild(f)
			n := int(committed.Load())
			for i := 0; i < n; i++ {
				f.addAll(batches[i])
			}
			s.endRebuild(f)
			s.rebuild.Unlock()
		}
	}()
	for i := range batches {
		committed.Add(1)
		s.add(batches[i])
		added.Add(1)
	}
	close(stop)
	wg.Wait()
	for i := range batches {
		for j := range batches[i] {
			if !s.test(&batches[i][j]) {
				t.Fatalf("after all: batch %d member %d missed", i, j)
			}
		}
	}
}

func TestSnapshotErased(t *testing.T) {
	ps := randomPseudonyms(7, 10)
	set := newMemberSet(100, FalsePositiveTarget)
	set.add(ps)
	snap := &Snapshot{sets: map[string]*memberSet{"a": set}, known: set, erased: map[Pseudonym]struct{}{ps[0]: {}}}
	if snap.Contains("a", ps[0]) || snap.Known(ps[0]) {
		t.Error("an erased user matched")
	}
	if !snap.Contains("a", ps[1]) || !snap.Known(ps[1]) {
		t.Error("a member did not match")
	}
	if snap.Contains("b", ps[1]) || snap.Has("b") {
		t.Error("an unknown audience matched")
	}
}
