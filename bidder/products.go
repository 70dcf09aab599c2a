package bidder

import (
	"time"

	"github.com/chaser-dsp/chaser/creative"
)

// chooseProducts appends to dst up to n products of feed for a user with
// history.
func (s *Server) chooseProducts(dst []*creative.Product, feed *creative.Feed, hist []creative.HistoryItem, n int, now time.Time) []*creative.Product {
	if s.d.Recommenders == nil {
		return creative.Pick(dst, feed, hist, n)
	}
	return s.d.Recommenders.Choose(dst, feed, hist, n, now.Unix())
}
