package bidder

import (
	"github.com/chaser-dsp/chaser/creative"
)

// chooseProducts picks up to n products of feed for a user with history.
func (s *Server) chooseProducts(feed *creative.Feed, hist []creative.HistoryItem, n int) []*creative.Product {
	dst := make([]*creative.Product, 0, n)
	if s.d.Recommenders == nil {
		return creative.Pick(dst, feed, hist, n)
	}
	return s.d.Recommenders.Choose(dst, feed, hist, n, s.d.Now().Unix())
}
