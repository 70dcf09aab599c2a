package bidder

import (
	"sync/atomic"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/pacing"
)

// matchPlan is the audience side of a campaign snapshot: every audience any
// campaign targets or excludes, resolved once into an audience.Probe, and
// for each campaign (by its index in the snapshot) the probe indices of its
// audiences. A request then tests its user against all of them in one pass
// (the filter probes overlap in memory) instead of one Contains per
// campaign audience and id.
type matchPlan struct {
	csnap *campaign.Snapshot
	probe *audience.Probe
	auds  []string  // the probe's audiences, by probe index
	incl  [][]int32 // incl[c]: probe indices of campaign c's audiences, in its order
	excl  [][]int32 // excl[c]: of its excluded audiences
}

// maxStackHits is how many audiences the bid path's hits live on the
// stack for; a plan with more allocates them per request.
const maxStackHits = 256

// plan returns the match plan of csnap against asnap, building it when
// either changed (a campaign or audience came, went or was edited). Requests
// that race on a change may each build one; the last stored wins.
func (s *Server) plan(asnap *audience.Snapshot, csnap *campaign.Snapshot) *matchPlan {
	if p := s.plans.Load(); p != nil && p.csnap == csnap && p.probe.Current(asnap) {
		return p
	}
	p := newMatchPlan(asnap, csnap)
	s.plans.Store(p)
	return p
}

func newMatchPlan(asnap *audience.Snapshot, csnap *campaign.Snapshot) *matchPlan {
	p := &matchPlan{
		csnap: csnap,
		incl:  make([][]int32, len(csnap.Campaigns)),
		excl:  make([][]int32, len(csnap.Campaigns)),
	}
	index := make(map[string]int32)
	var auds []string
	indices := func(ids []string) []int32 {
		out := make([]int32, 0, len(ids))
		for _, a := range ids {
			j, ok := index[a]
			if !ok {
				j = int32(len(auds))
				index[a] = j
				auds = append(auds, a)
			}
			out = append(out, j)
		}
		return out
	}
	for i, c := range csnap.Campaigns {
		p.incl[i] = indices(c.Targeting.Audiences)
		p.excl[i] = indices(c.Targeting.ExcludeAudiences)
	}
	p.probe = asnap.Probe(auds)
	p.auds = auds
	return p
}

// match is matchAudiences for campaign i of the plan's snapshot, from the
// probe's hits for ids: no id in an excluded audience, and the first id (in
// ids order) of the first of its audiences (in its order) that holds one,
// with its index in ids.
func (p *matchPlan) match(i int, ids []audience.Pseudonym, hits []uint32) (audience.Pseudonym, int, bool) {
	for _, j := range p.excl[i] {
		if hits[j] != 0 {
			return audience.Pseudonym{}, -1, false
		}
	}
	for _, j := range p.incl[i] {
		if h := hits[j]; h != 0 {
			for k := range ids {
				if h>>k&1 == 1 {
					return ids[k], k, true
				}
			}
		}
	}
	return audience.Pseudonym{}, -1, false
}

// kind is Server.matchedKind for campaign i and ids[k] from the probe's
// hits (which answer as Contains does, TestProbeMatchesContains) instead of
// one Contains per audience. kindOf gives an audience's kind.
func (p *matchPlan) kind(i, k int, hits []uint32, kindOf func(string) pacing.AudienceKind) pacing.AudienceKind {
	incl := p.incl[i]
	return heldKind(len(incl), func(x int) (string, bool) {
		j := incl[x]
		return p.auds[j], hits[j]>>k&1 == 1
	}, kindOf)
}

// heldKind is the audience kind pricing uses for a user matched by a
// campaign with n audiences, held(x) naming the campaign's x-th audience
// and whether it holds the user: retargeting unless every audience that
// holds the user is a lookalike one.
func heldKind(n int, held func(x int) (string, bool), kindOf func(string) pacing.AudienceKind) pacing.AudienceKind {
	kind := pacing.AudienceRetargeting
	for x := range n {
		id, ok := held(x)
		if !ok {
			continue
		}
		if kindOf(id) != pacing.AudienceLookalike {
			return pacing.AudienceRetargeting
		}
		kind = pacing.AudienceLookalike
	}
	return kind
}

// planCache holds the current match plan (see Server.plan).
type planCache = atomic.Pointer[matchPlan]
