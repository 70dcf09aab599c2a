package campaign

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/store"
)

const designCampaign = `{
  "advertiser_id": "adv_1", "name": "Cart reminder", "status": "active",
  "start": "2026-11-01T00:00:00Z", "end": null, "currency": "USD",
  "budget": {"daily": 500.0, "total": 10000.0},
  "pacing": "even",
  "bid": {"base_cpm": 2.5, "max_cpm": 8.0},
  "frequency_cap": {"impressions": 3, "per": "24h"},
  "targeting": {"audiences": ["aud_1"], "exclude_audiences": ["aud_2"],
                "countries": ["KOR"], "device_types": [], "domains": []},
  "creative": {"sizes": ["300x250", "728x90", "320x50"], "offer": "10% off today"}
}`

// TestDesignCampaignRoundTrip: the DESIGN.md example decodes to micros and
// encodes back to the same values.
func TestDesignCampaignRoundTrip(t *testing.T) {
	var c Campaign
	if err := json.Unmarshal([]byte(designCampaign), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Budget.DailyMicros != 500_000_000 || c.Bid.BaseCPMMicros != 2_500_000 || c.Bid.MaxCPMMicros != 8_000_000 ||
		c.FrequencyCap.Impressions != 3 || c.FrequencyCap.Per != 24*time.Hour || len(c.Creative.Sizes) != 3 {
		t.Fatalf("decoded %+v", c)
	}
	b, _ := json.Marshal(c)
	var back Campaign
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Budget != c.Budget || back.Bid != c.Bid || back.FrequencyCap != c.FrequencyCap || back.Creative.Offer != c.Creative.Offer {
		t.Fatalf("round trip %+v != %+v", back, c)
	}
}

func TestValidate(t *testing.T) {
	base := func() Campaign {
		var c Campaign
		_ = json.Unmarshal([]byte(designCampaign), &c)
		return c
	}
	cases := []struct {
		field string
		edit  func(*Campaign)
	}{
		{"status", func(c *Campaign) { c.Status = "running" }},
		{"currency", func(c *Campaign) { c.Currency = "dollars" }},
		{"pacing", func(c *Campaign) { c.Pacing = "fast" }},
		{"bid.base_cpm", func(c *Campaign) { c.Bid.BaseCPMMicros = 0 }},
		{"bid.max_cpm", func(c *Campaign) { c.Bid.MaxCPMMicros = 1 }},
		{"budget", func(c *Campaign) { c.Budget = Budget{} }},
		{"budget.daily", func(c *Campaign) { c.Budget.DailyMicros = c.Budget.TotalMicros + 1 }},
		{"targeting.audiences", func(c *Campaign) { c.Targeting.Audiences = nil }},
		{"creative.sizes", func(c *Campaign) { c.Creative.Sizes = nil }},
		{"timezone", func(c *Campaign) { c.Timezone = "Mars/Olympus" }},
		{"frequency_cap.impressions", func(c *Campaign) { c.FrequencyCap.Impressions = -1 }},
		{"frequency_cap.impressions", func(c *Campaign) { c.FrequencyCap = FrequencyCap{MaxFrequencyImpressions + 1, 24 * time.Hour} }},
		{"frequency_cap.impressions", func(c *Campaign) { c.FrequencyCap = FrequencyCap{1000, 24 * time.Hour} }},
		{"frequency_cap.per", func(c *Campaign) { c.FrequencyCap = FrequencyCap{3, 0} }},
		{"frequency_cap.per", func(c *Campaign) { c.FrequencyCap = FrequencyCap{3, 59 * time.Second} }},
		{"frequency_cap.per", func(c *Campaign) { c.FrequencyCap = FrequencyCap{3, MaxFrequencyPer + time.Hour} }},
	}
	for _, tc := range cases {
		c := base()
		tc.edit(&c)
		var fe *FieldError
		if err := c.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: got %v", tc.field, err)
		}
	}
	for _, ok := range []FrequencyCap{{}, {1, time.Minute}, {MaxFrequencyImpressions, 24 * time.Hour}, {3, MaxFrequencyPer}} {
		c := base()
		c.FrequencyCap = ok
		if err := c.Validate(); err != nil {
			t.Errorf("frequency cap %+v refused: %v", ok, err)
		}
	}
	for _, bad := range []string{`{"budget":{"daily":-1}}`, `{"creative":{"sizes":["300by250"]}}`, `{"frequency_cap":{"impressions":1,"per":"forever"}}`} {
		var c Campaign
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestStorePersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Open(db, nil)
	adv, err := s.CreateAdvertiser(Advertiser{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	c := func() Campaign { var c Campaign; _ = json.Unmarshal([]byte(designCampaign), &c); return c }()
	c.AdvertiserID = adv.ID
	made, err := s.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(Campaign{AdvertiserID: "adv_missing", Name: "x"}); err == nil {
		t.Fatal("campaign for a missing advertiser accepted")
	}
	db.Close()
	db, _ = store.Open(dir)
	defer db.Close()
	s, err = Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(made.ID)
	if err != nil || got.Budget != made.Budget || got.AdvertiserID != adv.ID {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	if err := s.Delete(made.ID); err != nil || len(s.List("")) != 0 {
		t.Fatalf("delete: %v", err)
	}
}
