package campaign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Campaign statuses.
const (
	StatusActive  = "active"
	StatusPaused  = "paused"
	StatusDeleted = "deleted"
)

// Pacing modes.
const (
	PacingEven = "even"
	PacingASAP = "asap"
)

// Errors; the admin API maps them to status codes.
var (
	ErrNotFound = errors.New("campaign: not found")
	ErrInvalid  = errors.New("campaign: invalid")
)

// FieldError is a validation error naming its field.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Size is a banner size.
type Size struct{ W, H int64 }

func (s Size) String() string { return strconv.FormatInt(s.W, 10) + "x" + strconv.FormatInt(s.H, 10) }

// ParseSize parses "300x250".
func ParseSize(s string) (Size, error) {
	w, h, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "x")
	if !ok {
		return Size{}, fmt.Errorf("size %q: want WxH", s)
	}
	wi, err1 := strconv.ParseInt(w, 10, 64)
	hi, err2 := strconv.ParseInt(h, 10, 64)
	if err1 != nil || err2 != nil || wi <= 0 || hi <= 0 || wi > 4096 || hi > 4096 {
		return Size{}, fmt.Errorf("size %q: want WxH with positive integers", s)
	}
	return Size{wi, hi}, nil
}

// Budget in micros of the campaign currency; 0 means no limit.
type Budget struct {
	DailyMicros int64
	TotalMicros int64
}

// Bid prices in micros per thousand impressions.
type Bid struct {
	BaseCPMMicros int64
	MaxCPMMicros  int64
}

// Frequency cap bounds. MaxFrequencyImpressions is what pacing can count
// exactly (pacing.MaxFrequencyCap: a user's last 255 impression times per
// campaign are kept; campaign cannot import pacing, a test keeps the two
// equal); a larger cap would be enforced as 255, so it is refused.
const (
	MaxFrequencyImpressions = 255
	MinFrequencyPer         = time.Minute
	MaxFrequencyPer         = 365 * 24 * time.Hour
)

// FrequencyCap limits impressions per user and period; zero means none.
type FrequencyCap struct {
	Impressions int
	Per         time.Duration
}

// Targeting selects who and where a campaign bids.
type Targeting struct {
	Audiences        []string `json:"audiences"`
	ExcludeAudiences []string `json:"exclude_audiences"`
	Countries        []string `json:"countries"`    // ISO-3166-1 alpha-3, as in OpenRTB geo.country
	DeviceTypes      []int    `json:"device_types"` // OpenRTB devicetype
	Domains          []string `json:"domains"`      // site domains or app bundles; empty = any
}

// Creative says what the campaign shows.
type Creative struct {
	Sizes  []Size
	Native bool
	Offer  string
}

// Campaign is one campaign. Treat values inside a Snapshot as read-only.
type Campaign struct {
	ID           string
	AdvertiserID string
	Name         string
	Status       string
	Start        time.Time
	End          *time.Time
	Currency     string
	Timezone     string
	Budget       Budget
	Pacing       string
	Bid          Bid
	FrequencyCap FrequencyCap
	Targeting    Targeting
	Creative     Creative
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// jsonCampaign is the admin API form: money in currency units.
type jsonCampaign struct {
	ID           string     `json:"id,omitempty"`
	AdvertiserID string     `json:"advertiser_id"`
	Name         string     `json:"name"`
	Status       string     `json:"status"`
	Start        time.Time  `json:"start"`
	End          *time.Time `json:"end"`
	Currency     string     `json:"currency"`
	Timezone     string     `json:"timezone,omitempty"`
	Budget       struct {
		Daily float64 `json:"daily"`
		Total float64 `json:"total"`
	} `json:"budget"`
	Pacing string `json:"pacing"`
	Bid    struct {
		BaseCPM float64 `json:"base_cpm"`
		MaxCPM  float64 `json:"max_cpm"`
	} `json:"bid"`
	FrequencyCap *struct {
		Impressions int    `json:"impressions"`
		Per         string `json:"per"`
	} `json:"frequency_cap"`
	Targeting Targeting `json:"targeting"`
	Creative  struct {
		Sizes  []string `json:"sizes"`
		Native bool     `json:"native,omitempty"`
		Offer  string   `json:"offer,omitempty"`
	} `json:"creative"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Micros converts currency units to integer micros.
func Micros(units float64) int64 { return int64(math.Round(units * 1e6)) }

// Units converts micros to currency units.
func Units(micros int64) float64 { return float64(micros) / 1e6 }

// MarshalJSON writes the admin API form.
func (c Campaign) MarshalJSON() ([]byte, error) {
	var j jsonCampaign
	j.ID, j.AdvertiserID, j.Name, j.Status = c.ID, c.AdvertiserID, c.Name, c.Status
	j.Start, j.End, j.Currency, j.Timezone = c.Start, c.End, c.Currency, c.Timezone
	j.Budget.Daily, j.Budget.Total = Units(c.Budget.DailyMicros), Units(c.Budget.TotalMicros)
	j.Pacing = c.Pacing
	j.Bid.BaseCPM, j.Bid.MaxCPM = Units(c.Bid.BaseCPMMicros), Units(c.Bid.MaxCPMMicros)
	if c.FrequencyCap.Impressions > 0 {
		j.FrequencyCap = &struct {
			Impressions int    `json:"impressions"`
			Per         string `json:"per"`
		}{c.FrequencyCap.Impressions, formatDuration(c.FrequencyCap.Per)}
	}
	j.Targeting = c.Targeting
	for _, s := range c.Creative.Sizes {
		j.Creative.Sizes = append(j.Creative.Sizes, s.String())
	}
	j.Creative.Native, j.Creative.Offer = c.Creative.Native, c.Creative.Offer
	j.CreatedAt, j.UpdatedAt = c.CreatedAt, c.UpdatedAt
	return json.Marshal(j)
}

// UnmarshalJSON reads the admin API form. It checks shapes (sizes,
// durations); Validate checks values. Unknown fields are ignored, so stored
// campaigns written by another version still load; request bodies go
// through ParseStrict.
func (c *Campaign) UnmarshalJSON(b []byte) error { return c.decode(b, false) }

// ParseStrict reads a campaign in the admin API form from a request body,
// refusing unknown fields (a *FieldError naming the field) and data after
// the object.
func ParseStrict(b []byte) (Campaign, error) {
	var c Campaign
	err := c.decode(b, true)
	return c, err
}

func (c *Campaign) decode(b []byte, strict bool) error {
	var j jsonCampaign
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&j); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return &FieldError{strings.Trim(f, `"`), "unknown field"}
		}
		return err
	}
	if strict {
		if _, err := dec.Token(); err != io.EOF {
			return errors.New("data after the JSON object")
		}
	}
	out := Campaign{ID: j.ID, AdvertiserID: j.AdvertiserID, Name: j.Name, Status: j.Status,
		Start: j.Start, End: j.End, Currency: strings.ToUpper(j.Currency), Timezone: j.Timezone,
		Pacing: j.Pacing, Targeting: j.Targeting, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
	for _, f := range []struct {
		v    float64
		name string
		dst  *int64
	}{
		{j.Budget.Daily, "budget.daily", &out.Budget.DailyMicros},
		{j.Budget.Total, "budget.total", &out.Budget.TotalMicros},
		{j.Bid.BaseCPM, "bid.base_cpm", &out.Bid.BaseCPMMicros},
		{j.Bid.MaxCPM, "bid.max_cpm", &out.Bid.MaxCPMMicros},
	} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1e9 {
			return &FieldError{f.name, "must be a number between 0 and 1e9"}
		}
		*f.dst = Micros(f.v)
	}
	if j.FrequencyCap != nil && (j.FrequencyCap.Impressions != 0 || j.FrequencyCap.Per != "") {
		d, err := parseDuration(j.FrequencyCap.Per)
		if err != nil {
			return &FieldError{"frequency_cap.per", err.Error()}
		}
		out.FrequencyCap = FrequencyCap{Impressions: j.FrequencyCap.Impressions, Per: d}
	}
	for i, s := range j.Creative.Sizes {
		sz, err := ParseSize(s)
		if err != nil {
			return &FieldError{fmt.Sprintf("creative.sizes[%d]", i), err.Error()}
		}
		out.Creative.Sizes = append(out.Creative.Sizes, sz)
	}
	out.Creative.Native, out.Creative.Offer = j.Creative.Native, j.Creative.Offer
	*c = out
	return nil
}

// parseDuration accepts Go durations and day counts ("24h", "7d").
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n <= 0 || n > 365 {
			return 0, fmt.Errorf("%q: want e.g. 24h or 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinFrequencyPer || d > MaxFrequencyPer {
		return 0, fmt.Errorf("%q: want e.g. 24h or 7d (1m to 365d)", s)
	}
	return d, nil
}

func formatDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 && d >= 48*time.Hour {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	s = strings.TrimSuffix(s, "0m")
	return s
}

var currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)

// Validate checks a campaign's values, returning a *FieldError.
func (c *Campaign) Validate() error {
	switch {
	case c.AdvertiserID == "":
		return &FieldError{"advertiser_id", "required"}
	case c.Name == "" || len(c.Name) > 200:
		return &FieldError{"name", "required, at most 200 characters"}
	case c.Status != StatusActive && c.Status != StatusPaused:
		return &FieldError{"status", "must be active or paused"}
	case !currencyRe.MatchString(c.Currency):
		return &FieldError{"currency", "must be an ISO 4217 code such as USD"}
	case c.Pacing != PacingEven && c.Pacing != PacingASAP:
		return &FieldError{"pacing", "must be even or asap"}
	case c.Bid.BaseCPMMicros <= 0:
		return &FieldError{"bid.base_cpm", "must be positive"}
	case c.Bid.MaxCPMMicros < c.Bid.BaseCPMMicros:
		return &FieldError{"bid.max_cpm", "must be at least base_cpm"}
	case c.Budget.DailyMicros < 0 || c.Budget.TotalMicros < 0:
		return &FieldError{"budget", "must not be negative"}
	case c.Budget.DailyMicros == 0 && c.Budget.TotalMicros == 0:
		return &FieldError{"budget", "set a daily or a total budget"}
	case c.Budget.TotalMicros > 0 && c.Budget.DailyMicros > c.Budget.TotalMicros:
		return &FieldError{"budget.daily", "must not exceed budget.total"}
	case c.End != nil && !c.End.After(c.Start):
		return &FieldError{"end", "must be after start"}
	case c.FrequencyCap.Impressions < 0:
		return &FieldError{"frequency_cap.impressions", "must not be negative"}
	case c.FrequencyCap.Impressions > MaxFrequencyImpressions:
		return &FieldError{"frequency_cap.impressions", fmt.Sprintf("at most %d impressions per user and period", MaxFrequencyImpressions)}
	case c.FrequencyCap.Impressions > 0 && (c.FrequencyCap.Per < MinFrequencyPer || c.FrequencyCap.Per > MaxFrequencyPer):
		return &FieldError{"frequency_cap.per", "must be 1m to 365d"}
	case len(c.Targeting.Audiences) == 0:
		return &FieldError{"targeting.audiences", "at least one audience is required (Chaser bids on known users only)"}
	case len(c.Creative.Sizes) == 0 && !c.Creative.Native:
		return &FieldError{"creative.sizes", "at least one size, or native"}
	case len(c.Creative.Offer) > 200:
		return &FieldError{"creative.offer", "at most 200 characters"}
	}
	if c.Timezone != "" {
		if _, err := time.LoadLocation(c.Timezone); err != nil {
			return &FieldError{"timezone", "unknown time zone"}
		}
	}
	for i, a := range c.Targeting.Audiences {
		if a == "" {
			return &FieldError{fmt.Sprintf("targeting.audiences[%d]", i), "empty id"}
		}
	}
	for i, s := range c.Targeting.Countries {
		if len(s) != 3 {
			return &FieldError{fmt.Sprintf("targeting.countries[%d]", i), "ISO-3166-1 alpha-3, e.g. KOR"}
		}
		c.Targeting.Countries[i] = strings.ToUpper(s)
	}
	return nil
}

// LiveAt reports whether the campaign may bid at t (status and flight).
func (c *Campaign) LiveAt(t time.Time) bool {
	if c.Status != StatusActive {
		return false
	}
	if t.Before(c.Start) {
		return false
	}
	return c.End == nil || t.Before(*c.End)
}

// Location returns the campaign's time zone (UTC by default).
func (c *Campaign) Location() *time.Location {
	if c.Timezone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}
