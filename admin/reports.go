package admin

import (
	"errors"
	"net/http"
	"time"

	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/pacing"
)

// reportRow is one hour of GET /v1/campaigns/{id}/report (ReportRow in
// openapi.yaml). Money is in currency units; pacing_rate (the throttle: the
// share of matched requests allowed to bid) and bid_multiplier are the
// hour's averages of the pacing controller, absent when it was not running.
type reportRow struct {
	Hour        time.Time `json:"hour"`
	Matched     int64     `json:"requests_matched"`
	Bids        int64     `json:"bids"`
	Wins        int64     `json:"wins"`
	Impressions int64     `json:"impressions"`
	Clicks      int64     `json:"clicks"`
	Spend       float64   `json:"spend"`
	Throttle    *float64  `json:"pacing_rate,omitempty"`
	Multiplier  *float64  `json:"bid_multiplier,omitempty"`
}

type pacingView struct {
	Mode           string   `json:"mode"`
	Live           bool     `json:"live"`
	Throttle       float64  `json:"throttle"`
	Multiplier     float64  `json:"bid_multiplier"`
	SpendToday     float64  `json:"spend_today"`
	SpendTotal     float64  `json:"spend_total"`
	Reserved       float64  `json:"reserved"`
	DailyBudget    *float64 `json:"daily_budget_effective,omitempty"`
	Target         *float64 `json:"target_spend_now,omitempty"`
	RequestsPerMin float64  `json:"matched_requests_per_minute"`
	CurveDays      int      `json:"traffic_curve_days"`
	Market         string   `json:"first_price_model"`
}

type reportView struct {
	CampaignID string      `json:"campaign_id"`
	Currency   string      `json:"currency"`
	From       time.Time   `json:"from"`
	To         time.Time   `json:"to"`
	Pacing     pacingView  `json:"pacing"`
	Rows       []reportRow `json:"rows"`
}

// parseReportTime reads RFC 3339 or a date (midnight UTC).
func parseReportTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// campaignReport serves GET /v1/campaigns/{id}/report?from=&to=: hourly rows
// (UTC hours, default the last 24) and the campaign's pacing state now.
func (a *API) campaignReport(w http.ResponseWriter, r *http.Request, p principal) {
	c, ok := a.campaignFor(w, r.PathValue("id"), p)
	if !ok {
		return
	}
	q := r.URL.Query()
	to := a.d.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	if v := q.Get("to"); v != "" {
		if to, ok = parseReportTime(v); !ok {
			writeError(w, http.StatusBadRequest, "want RFC 3339 (2026-11-20T10:00:00Z) or a date (2026-11-20)", "to")
			return
		}
	}
	from := to.Add(-24 * time.Hour)
	if v := q.Get("from"); v != "" {
		if from, ok = parseReportTime(v); !ok {
			writeError(w, http.StatusBadRequest, "want RFC 3339 (2026-11-20T10:00:00Z) or a date (2026-11-20)", "from")
			return
		}
	}
	rows, err := a.d.Pacer.Report(c.ID, from, to)
	if errors.Is(err, pacing.ErrReportRange) {
		writeError(w, http.StatusBadRequest, "from must be before to, at most 31 days apart", "from")
		return
	}
	if err != nil {
		a.writeDomainError(w, err)
		return
	}
	out := reportView{CampaignID: c.ID, Currency: c.Currency, From: from.UTC(), To: to.UTC(), Rows: make([]reportRow, len(rows))}
	for i, rr := range rows {
		row := reportRow{Hour: rr.Hour, Matched: rr.Matched, Bids: rr.Bids, Wins: rr.Wins, Impressions: rr.Impressions,
			Clicks: rr.Clicks, Spend: campaign.Units(rr.SpendMicros)}
		if rr.Throttle >= 0 {
			row.Throttle, row.Multiplier = &rows[i].Throttle, &rows[i].Multiplier
		}
		out.Rows[i] = row
	}
	st := a.d.Pacer.State(&c)
	out.Pacing = pacingView{Mode: st.Mode, Live: st.Live, Throttle: st.Throttle, Multiplier: st.Multiplier,
		SpendToday: campaign.Units(st.SpentTodayMicros), SpendTotal: campaign.Units(st.SpentTotalMicros),
		Reserved: campaign.Units(st.ReservedMicros), RequestsPerMin: st.RequestsPerMin, CurveDays: st.CurveDays, Market: st.Market}
	if st.DailyMicros >= 0 {
		v := campaign.Units(st.DailyMicros)
		out.Pacing.DailyBudget = &v
	}
	if st.Mode == campaign.PacingEven {
		v := campaign.Units(st.TargetMicros)
		out.Pacing.Target = &v
	}
	writeJSON(w, http.StatusOK, out)
}
