package bidder

import (
	"time"

	"github.com/prebid/openrtb/v20/openrtb2"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/lookalike"
)

// observe offers the request's context to the lookalike population under
// the user's primary pseudonym (decide calls it once the user's ids are
// known and consent allows personalised advertising). It never blocks: the
// population samples and queues (or drops) it. Erased people are not
// observed.
func (s *Server) observe(req *openrtb2.BidRequest, user audience.Pseudonym, asnap *audience.Snapshot, now time.Time) {
	pop := s.d.Population
	if pop == nil || asnap.Erased(user) {
		return
	}
	var o lookalike.Observation
	if st := req.Site; st != nil {
		o.Domain, o.Categories = st.Domain, st.Cat
	} else if ap := req.App; ap != nil {
		o.Bundle, o.Categories = ap.Bundle, ap.Cat
	}
	now = now.UTC()
	if d := req.Device; d != nil {
		o.DeviceType, o.OS = int(d.DeviceType), d.OS
		if g := d.Geo; g != nil {
			o.Country, o.Region = g.Country, g.Region
			if g.UTCOffset != 0 && g.UTCOffset > -24*60 && g.UTCOffset < 24*60 {
				now = now.Add(time.Minute * time.Duration(g.UTCOffset))
			}
		}
	}
	o.Hour = now.Hour()
	pop.Observe(lookalike.UserID(user), o)
}
