package campaign_test

import (
	"testing"

	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/pacing"
)

// TestFrequencyCapLimitMatchesPacing: the API refuses caps above what pacing
// counts exactly; the two constants live apart (pacing imports campaign).
func TestFrequencyCapLimitMatchesPacing(t *testing.T) {
	if campaign.MaxFrequencyImpressions != pacing.MaxFrequencyCap {
		t.Fatalf("campaign.MaxFrequencyImpressions %d != pacing.MaxFrequencyCap %d",
			campaign.MaxFrequencyImpressions, pacing.MaxFrequencyCap)
	}
}
