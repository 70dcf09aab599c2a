package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/chaser-dsp/chaser/loadtest"
)

// TestPrepareMix runs chaser-load's prepare step (loadtest.Prepare) at small
// scale against a real server on loopback seeded like `chaser serve --demo`:
// the audiences have the asked size through the admin API, a known user gets
// a bid from one of the new campaigns, a second run does nothing, and an API
// error comes back with its message.
func TestPrepareMix(t *testing.T) {
	s := startServer(t, t.TempDir())
	if err := seedDemo(s.app, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	cfg := loadtest.DefaultPrepareConfig()
	cfg.Admin, cfg.Token = s.adminURL, testToken
	cfg.Audiences, cfg.Members, cfg.Campaigns = 3, 2000, 4
	for _, gz := range []bool{false, true} {
		// The second run, gzip or not, finds everything in place.
		cfg.Gzip = gz
		rep, err := loadtest.Prepare(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.AlreadyPrepared != gz || len(rep.Paused) != map[bool]int{false: 1, true: 0}[gz] {
			t.Fatalf("gzip %v: already prepared = %v, paused %v", gz, rep.AlreadyPrepared, rep.Paused)
		}
		if len(rep.Audiences) != 3 || len(rep.Campaigns) != 4 || rep.Members != 6000 {
			t.Fatalf("gzip %v: %d audiences, %d campaigns, %d members", gz, len(rep.Audiences), len(rep.Campaigns), rep.Members)
		}
	}

	// One more audience (gzip): it is created and uploaded, the others are
	// left alone.
	cfg.Gzip, cfg.Audiences = true, 4
	rep, err := loadtest.Prepare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range rep.Audiences {
		if want := i == 3; a.Created != want || a.Uploaded != want {
			t.Errorf("audience %s: created %v, uploaded %v; want %v", a.Name, a.Created, a.Uploaded, want)
		}
		got := s.admin("GET", "/v1/audiences/"+a.ID, "", "", http.StatusOK)
		if got["size"] != float64(2000) || got["status"] != "ready" || got["name"] != a.Name {
			t.Errorf("audience %s: %v %v %v, want ready with 2000 members", a.ID, got["name"], got["status"], got["size"])
		}
		if a.Known == 0 {
			t.Errorf("audience %s holds no known user", a.Name)
		}
	}

	// The demo campaign (higher CPM) was paused by the first run, so a
	// known user's bid comes from one of the new campaigns; a stranger gets
	// none.
	var ids []string
	for _, c := range rep.Campaigns {
		ids = append(ids, c.ID)
	}
	for _, c := range s.app.campaigns.List(demoAdvertiser) {
		if want := map[bool]string{true: "active", false: "paused"}[slices.Contains(ids, c.ID)]; c.Status != want {
			t.Errorf("campaign %s %q: %s, want %s", c.ID, c.Name, c.Status, want)
		}
	}
	for k := 1; k <= 100; k += 33 {
		code, resp := s.bid(bidRequest("prep-"+strconv.Itoa(k), "demo-user-"+strconv.Itoa(k), 0.3))
		if code != http.StatusOK || len(resp.SeatBid) == 0 || len(resp.SeatBid[0].Bid) == 0 {
			t.Fatalf("demo-user-%d: status %d, no bid", k, code)
		}
		if cid := resp.SeatBid[0].Bid[0].CID; !slices.Contains(ids, cid) {
			t.Errorf("demo-user-%d: bid from %q, not one of the prepared campaigns %v", k, cid, ids)
		}
	}
	if code, _ := s.bid(bidRequest("prep-stranger", "lt-nobody", 0.3)); code != http.StatusNoContent {
		t.Errorf("stranger: status %d, want 204", code)
	}

	// Errors carry the API's answer.
	bad := cfg
	bad.Token = "wrong-token-0123456789"
	var ae *loadtest.AdminError
	if _, err := loadtest.Prepare(context.Background(), bad); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Msg == "" {
		t.Errorf("wrong token: %v, want a 401 AdminError with a message", err)
	}
	bad = cfg
	bad.Members = 1000 // smaller than what is there
	if _, err := loadtest.Prepare(context.Background(), bad); err == nil {
		t.Error("a smaller --prep-members than the audiences hold was accepted")
	}
}
