package bidder

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prebid/openrtb/v20/openrtb2"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/pacing"
)

// pacingState is what a candidate carries for pricing: its pacing handle
// from Admit, and what pricing learns about the user, looked up once.
type pacingState struct {
	h          pacing.Handle
	priced     bool                // recency below is set
	kind       pacing.AudienceKind // set when the candidate is made
	recency    time.Duration
	prof       *audience.Profile
	profErr    error
	profLoaded bool
}

// profileOf loads the candidate user's profile at the campaign's
// advertiser once, for pricing (recency) and the creative alike.
func (s *Server) profileOf(cd *candidate) (*audience.Profile, error) {
	if !cd.pace.profLoaded {
		cd.pace.prof, cd.pace.profErr = s.d.Audiences.CachedProfile(cd.c.AdvertiserID, cd.user)
		cd.pace.profLoaded = true
	}
	return cd.pace.prof, cd.pace.profErr
}

// quote prices imp for candidate cd (see pacing.Handle.Quote).
func (s *Server) quote(req *openrtb2.BidRequest, imp *openrtb2.Imp, cd *candidate, now time.Time) (int64, string) {
	if !cd.pace.priced {
		cd.pace.recency = -1
		if prof, err := s.profileOf(cd); err == nil {
			cd.pace.recency = recencyOf(prof, now)
		}
		cd.pace.priced = true
	}
	floor := int64(math.MaxInt64 / 4) // a floor beyond any CPM: no bid
	if imp.BidFloor < 1e12 {
		floor = int64(math.Ceil(imp.BidFloor * 1e6))
	}
	return cd.pace.h.Quote(pacing.Quote{FloorMicros: floor, FloorCur: imp.BidFloorCur, FirstPrice: req.AT == 1,
		Audience: cd.pace.kind, Recency: cd.pace.recency})
}

// recencyOf returns the time since the user's last product view or cart,
// or −1 when the profile has none.
func recencyOf(p *audience.Profile, now time.Time) time.Duration {
	var last int64
	for i := range p.Events {
		if e := &p.Events[i]; (e.Type == audience.EventProductView || e.Type == audience.EventAddToCart) && e.Unix > last {
			last = e.Unix
		}
	}
	if last == 0 {
		return -1
	}
	return max(now.Sub(time.Unix(last, 0)), time.Second)
}

// matchedKind says whether the user is in one of the campaign's
// retargeting (list or rule) audiences or only in a lookalike one (see
// heldKind), asking Contains for each of them: for requests with more ids
// than a probe takes (matchPlan.kind answers the others).
func (s *Server) matchedKind(as *audience.Snapshot, c *campaign.Campaign, user audience.Pseudonym) pacing.AudienceKind {
	auds := c.Targeting.Audiences
	return heldKind(len(auds), func(x int) (string, bool) { return auds[x], as.Contains(auds[x], user) }, s.audienceKind)
}

// audienceKind returns audience id's kind (for matchPlan.kind).
func (s *Server) audienceKind(id string) pacing.AudienceKind { return s.ak.of(s.d.Audiences, id) }

// kindCache remembers audience types (which never change) so the bid path
// reads them from an immutable map instead of the audience manager's lock.
type kindCache struct {
	m  atomic.Pointer[map[string]pacing.AudienceKind]
	mu sync.Mutex
}

func (k *kindCache) of(am *audience.Manager, id string) pacing.AudienceKind {
	if m := k.m.Load(); m != nil {
		if v, ok := (*m)[id]; ok {
			return v
		}
	}
	a, err := am.Get(id)
	if err != nil {
		return pacing.AudienceRetargeting // gone meanwhile; do not cache
	}
	v := pacing.AudienceRetargeting
	if a.Type == audience.TypeLookalike {
		v = pacing.AudienceLookalike
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.m.Load()
	n := map[string]pacing.AudienceKind{}
	if old != nil {
		for key, val := range *old {
			n[key] = val
		}
	}
	n[id] = v
	k.m.Store(&n)
	return v
}
