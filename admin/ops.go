package admin

import (
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Operations: Prometheus metrics, profiling, request metrics.
//
// Metrics of the admin port (besides those of the domain packages and the
// bidder, all on GET /metrics):
//
//	chaser_admin_requests_total{route,code}            requests by route pattern and status class (2xx…5xx)
//	chaser_admin_request_duration_seconds{route}        latency by route (Prometheus histogram)
//	chaser_admin_errors_total{status}                   error answers by status
//	chaser_admin_auth_failures_total                    requests with a missing or wrong key
//	chaser_admin_auth_throttled_total                   requests refused (429) after too many failures
//	chaser_upload_jobs_total{kind,outcome}              uploads by kind and outcome (ok, rejected, failed)
//	chaser_upload_jobs_running                          uploads in progress
//	chaser_audience_size{audience,advertiser,type}      members of each audience (at scrape time)
//	chaser_audiences{status}                            audiences by status
//	chaser_privacy_erasures_total                       people erased

// routeMetrics are one route's counters, made once at registration.
type routeMetrics struct {
	byClass [6]*metrics.Counter // 1xx … 5xx
	latency *metrics.PrometheusHistogram
}

func newRouteMetrics(rt route) *routeMetrics {
	m := &routeMetrics{latency: metrics.GetOrCreatePrometheusHistogram(
		fmt.Sprintf(`chaser_admin_request_duration_seconds{route=%q}`, rt.pattern()))}
	for c := 1; c <= 5; c++ {
		m.byClass[c] = metrics.GetOrCreateCounter(fmt.Sprintf(`chaser_admin_requests_total{route=%q,code="%dxx"}`, rt.pattern(), c))
	}
	return m
}

func (m *routeMetrics) observe(code int, took time.Duration) {
	if c := code / 100; c >= 1 && c <= 5 {
		m.byClass[c].Inc()
	}
	m.latency.Update(took.Seconds())
}

var uploadsRunning atomic.Int64

func init() {
	metrics.NewGauge(`chaser_upload_jobs_running`, func() float64 { return float64(uploadsRunning.Load()) })
}

// uploadJob counts one upload job of kind; call the result with the
// response writer when the job ends.
func uploadJob(kind string) func(*statusWriter) {
	uploadsRunning.Add(1)
	return func(sw *statusWriter) {
		uploadsRunning.Add(-1)
		outcome := "ok"
		switch c := sw.code(); {
		case c == http.StatusUnauthorized || c == http.StatusTooManyRequests || c == http.StatusNotFound || c == http.StatusForbidden:
			outcome = "refused"
		case c >= 500:
			outcome = "failed"
		case c >= 400:
			outcome = "rejected"
		}
		metrics.GetOrCreateCounter(`chaser_upload_jobs_total{kind="` + kind + `",outcome="` + outcome + `"}`).Inc()
	}
}

// metrics writes every registered metric and, at scrape time, the size of
// each audience.
func (a *API) metrics(w http.ResponseWriter, _ *http.Request, _ principal) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	metrics.WritePrometheus(w, true)
	if a.d.Audiences != nil {
		writeAudienceGauges(w, a)
	}
}

func writeAudienceGauges(w io.Writer, a *API) {
	byStatus := map[string]int{}
	for _, au := range a.d.Audiences.List("") {
		byStatus[au.Status]++
		metrics.WriteGaugeUint64(w, `chaser_audience_size{audience=`+strconv.Quote(au.ID)+
			`,advertiser=`+strconv.Quote(au.AdvertiserID)+`,type=`+strconv.Quote(au.Type)+`}`, uint64(max(au.Size, 0)))
	}
	for _, st := range []string{"building", "ready", "failed"} {
		metrics.WriteGaugeUint64(w, `chaser_audiences{status="`+st+`"}`, uint64(byStatus[st]))
	}
}

// pprof serves net/http/pprof on the admin port, behind the admin key.
func (a *API) pprof(w http.ResponseWriter, r *http.Request, _ principal) {
	switch r.PathValue("profile") {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default: // the index, or a named profile: heap, goroutine, allocs, block, mutex, threadcreate
		pprof.Index(w, r)
	}
}
