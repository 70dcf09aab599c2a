package admin

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"github.com/chaser-dsp/chaser/audience"
)

// Limits of POST /v1/events.
const (
	// MaxEventLines bounds the JSON lines of one events request.
	MaxEventLines = 10_000
	// MaxEventsBody bounds an events request body (after gzip).
	MaxEventsBody = 10 << 20
	// maxLineErrors is how many rejected lines a response lists.
	maxLineErrors = 100
)

var (
	eventLinesAccepted  = metrics.NewCounter(`chaser_events_api_lines_total{outcome="accepted"}`)
	eventLinesDuplicate = metrics.NewCounter(`chaser_events_api_lines_total{outcome="duplicate"}`)
)

// eventLineRejected counts a rejected line by reason.
func eventLineRejected(reason string) {
	metrics.GetOrCreateCounter(`chaser_events_api_lines_total{outcome="rejected",reason="` + reason + `"}`).Inc()
}

// lineError is one rejected line of an events request.
type lineError struct {
	Line  int    `json:"line"`
	Field string `json:"field,omitempty"`
	Error string `json:"error"`
}

// eventsReport answers POST /v1/events.
type eventsReport struct {
	Error           string      `json:"error,omitempty"`
	Accepted        int         `json:"accepted"`
	Duplicates      int         `json:"duplicates"`
	Rejected        int         `json:"rejected"`
	Errors          []lineError `json:"errors"`
	ErrorsTruncated bool        `json:"errors_truncated,omitempty"`
}

func (rep *eventsReport) reject(line int, field, msg, reason string) {
	rep.Rejected++
	eventLineRejected(reason)
	if len(rep.Errors) < maxLineErrors {
		e := msg
		if field != "" {
			e = field + ": " + msg
		}
		rep.Errors = append(rep.Errors, lineError{Line: line, Field: field, Error: e})
	} else {
		rep.ErrorsTruncated = true
	}
}

// postEvents takes site events server to server: JSON lines (one event per
// line, the pixel's fields; see DESIGN.md), plain or gzip, at most
// MaxEventLines lines and MaxEventsBody bytes. Good lines are stored and bad
// ones reported by line number. An advertiser key's lines belong to its
// advertiser: a line naming another is rejected. An admin key's lines must
// name their advertiser.
func (a *API) postEvents(w http.ResponseWriter, r *http.Request, p principal) {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	switch ct {
	case "", "application/x-ndjson", "application/jsonl", "application/json-lines", "application/json", "text/plain":
	default:
		writeError(w, http.StatusUnsupportedMediaType, "content type must be application/x-ndjson (JSON lines)", "")
		return
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, MaxEventsBody+1)
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "body is not valid gzip", "")
			return
		}
		defer zr.Close()
		body = zr
	default:
		writeError(w, http.StatusUnsupportedMediaType, "content encoding must be gzip or none", "")
		return
	}
	data, err := io.ReadAll(io.LimitReader(body, MaxEventsBody+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || len(data) > MaxEventsBody:
		eventLineRejected("body_too_large")
		writeError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("body larger than 10 MiB (limit %d bytes per request): split the batch", MaxEventsBody), "")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "could not read body: "+err.Error(), "")
		return
	}
	lines := bytes.Split(data, []byte{'\n'})
	n := 0
	for _, l := range lines {
		if len(bytes.TrimSpace(l)) > 0 {
			n++
		}
	}
	if n == 0 {
		writeError(w, http.StatusBadRequest, "empty body: send one JSON event per line", "")
		return
	}
	if n > MaxEventLines {
		eventLineRejected("too_many_lines")
		writeError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("%d lines: more than %d lines (limit %d per request): split the batch", n, MaxEventLines, MaxEventLines), "")
		return
	}
	now := a.d.Now()
	known := map[string]bool{}
	rep := eventsReport{Errors: []lineError{}}
	forged := 0
	for i, l := range lines {
		line := i + 1
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		in, err := audience.ParseEventLine(l)
		if err != nil {
			var fe *audience.FieldError
			if errors.As(err, &fe) {
				rep.reject(line, fe.Field, fe.Msg, "bad_line")
			} else {
				rep.reject(line, "", err.Error(), "bad_line")
			}
			continue
		}
		switch {
		case !p.admin && in.AdvertiserID == "":
			in.AdvertiserID = p.advertiser
		case !p.admin && in.AdvertiserID != p.advertiser:
			rep.reject(line, "advertiser_id", "does not match the API key's advertiser", "forged_advertiser")
			forged++
			continue
		case p.admin && in.AdvertiserID == "":
			rep.reject(line, "advertiser_id", "required with an admin key", "no_advertiser")
			continue
		}
		ok, seen := known[in.AdvertiserID]
		if !seen {
			_, err := a.d.Campaigns.Advertiser(in.AdvertiserID)
			ok = err == nil
			known[in.AdvertiserID] = ok
		}
		if !ok {
			rep.reject(line, "advertiser_id", "no such advertiser", "unknown_advertiser")
			continue
		}
		ev, err := a.d.Audiences.Resolve(in, now)
		if err != nil {
			var fe *audience.FieldError
			if errors.As(err, &fe) {
				rep.reject(line, fe.Field, fe.Msg, "invalid")
			} else {
				rep.reject(line, "", err.Error(), "invalid")
			}
			continue
		}
		switch err := a.d.Audiences.RecordEvent(ev); {
		case err == nil:
			rep.Accepted++
			eventLinesAccepted.Inc()
		case errors.Is(err, audience.ErrDuplicateEvent):
			rep.Duplicates++
			eventLinesDuplicate.Inc()
		case errors.Is(err, audience.ErrTooManyTypes):
			rep.reject(line, "event", fmt.Sprintf("this user already has %d other event types", audience.MaxProfileTypes), "too_many_types")
		default:
			a.d.Logger.Error("admin: record event", "err", err)
			rep.Error = fmt.Sprintf("could not store line %d; lines before it were stored: retry from there", line)
			writeJSON(w, http.StatusServiceUnavailable, rep)
			return
		}
	}
	status := http.StatusOK
	switch {
	case rep.Accepted > 0 || rep.Duplicates > 0:
	case forged == rep.Rejected:
		// Every line named another advertiser: as for any of its resources.
		status, rep.Error = http.StatusNotFound, "advertiser not found"
	default:
		status, rep.Error = http.StatusBadRequest, "no line was accepted"
	}
	if status != http.StatusOK {
		metrics.GetOrCreateCounter(fmt.Sprintf(`chaser_admin_errors_total{status="%d"}`, status)).Inc()
	}
	writeJSON(w, status, rep)
}
