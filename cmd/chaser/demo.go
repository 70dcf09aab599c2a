package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/campaign"
)

// The demo feed: 40 products from the UCI Online Retail data set (see
// ../shared/data/PROVENANCE.md), the last one out of stock.
//
//go:embed demo/products.csv
var demoProducts []byte

// Demo names, part of the public contract (DESIGN.md).
const (
	demoAdvertiser = "adv_demo"
	demoUsers      = 100
)

// seedDemo seeds, once, the demo advertiser, its product feed, users
// demo-user-1 … demo-user-100 who viewed products (some also carted), a list
// audience of them and a running campaign targeting it.
func seedDemo(a *app, log *slog.Logger) error {
	if _, err := a.campaigns.Advertiser(demoAdvertiser); err == nil {
		log.Info("demo data already present", "advertiser", demoAdvertiser)
		return nil
	} else if !errors.Is(err, campaign.ErrNotFound) {
		return err
	}
	if _, err := a.campaigns.CreateAdvertiser(campaign.Advertiser{ID: demoAdvertiser, Name: "Demo Home",
		Domain: "shop.example", Country: "82"}); err != nil {
		return err
	}
	rep, err := a.catalog.Replace(demoAdvertiser, bytes.NewReader(demoProducts), "csv")
	if err != nil {
		return fmt.Errorf("product feed: %w", err)
	}
	feed := a.catalog.Feed(demoAdvertiser)
	pz := a.audiences.Pseudonymizer()
	now := time.Now()
	var list strings.Builder
	list.WriteString("uid\n")
	for i := 1; i <= demoUsers; i++ {
		uid := fmt.Sprintf("demo-user-%d", i)
		list.WriteString(uid + "\n")
		p := pz.Of(audience.IDUID, uid)
		// Each user viewed three products; every third one also carted the last.
		for j := 0; j < 3; j++ {
			prod := feed.InStock[(i*3+j)%len(feed.InStock)].ID
			ev := audience.Event{AdvertiserID: demoAdvertiser, Type: audience.EventProductView, User: p,
				Products: []string{prod}, Time: now.Add(time.Duration(j-3) * time.Hour)}
			if err := a.audiences.RecordEvent(ev); err != nil {
				return err
			}
		}
		if i%3 == 0 {
			prod := feed.InStock[(i*3+2)%len(feed.InStock)].ID
			if err := a.audiences.RecordEvent(audience.Event{AdvertiserID: demoAdvertiser, Type: audience.EventAddToCart,
				User: p, Products: []string{prod}, ValueMicros: 0, Time: now.Add(-30 * time.Minute)}); err != nil {
				return err
			}
		}
	}
	aud, err := a.audiences.Create(audience.Audience{AdvertiserID: demoAdvertiser, Name: "Demo site visitors", Type: audience.TypeList, TTLDays: 0})
	if err != nil {
		return err
	}
	st, err := a.audiences.Upload(context.Background(), aud.ID, strings.NewReader(list.String()), audience.UploadOptions{})
	if err != nil {
		return fmt.Errorf("demo audience upload: %w", err)
	}
	// A rule audience over the same events: every third user carted and did
	// not buy (see the README's rule syntax).
	if _, err := a.audiences.Create(audience.Audience{AdvertiserID: demoAdvertiser, Name: "Demo cart abandoners", Type: audience.TypeRule,
		Rule: []byte(`{"all":[{"event":"add_to_cart","within_days":7},{"not":{"event":"purchase","within_days":7}}]}`)}); err != nil {
		return fmt.Errorf("demo rule audience: %w", err)
	}
	sizes := []campaign.Size{{W: 300, H: 250}, {W: 728, H: 90}, {W: 320, H: 50}, {W: 300, H: 600}, {W: 160, H: 600}, {W: 320, H: 480}}
	c, err := a.campaigns.Create(campaign.Campaign{
		AdvertiserID: demoAdvertiser, Name: "Demo retargeting", Status: campaign.StatusActive,
		Start: now.Add(-time.Hour).UTC().Truncate(time.Second), Currency: "USD", Pacing: campaign.PacingEven,
		Budget:       campaign.Budget{DailyMicros: campaign.Micros(500), TotalMicros: campaign.Micros(10000)},
		Bid:          campaign.Bid{BaseCPMMicros: campaign.Micros(2.5), MaxCPMMicros: campaign.Micros(8)},
		FrequencyCap: campaign.FrequencyCap{Impressions: 20, Per: 24 * time.Hour},
		Targeting:    campaign.Targeting{Audiences: []string{aud.ID}},
		Creative:     campaign.Creative{Sizes: sizes, Offer: "10% off today"},
	})
	if err != nil {
		return fmt.Errorf("demo campaign: %w", err)
	}
	log.Info("demo data seeded", "advertiser", demoAdvertiser, "products", rep.Valid, "audience", aud.ID,
		"members", st.Applied, "campaign", c.ID)
	return nil
}
