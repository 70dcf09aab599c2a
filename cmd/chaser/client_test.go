package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chaser runs one client command against s and returns stdout and stderr.
func (s *server) chaser(args ...string) (string, string, error) {
	s.t.Helper()
	var out, errOut bytes.Buffer
	all := append(append([]string{}, args[1:]...), "--admin-url", s.adminURL)
	err := runClient(args[0], all, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// must runs a client command that must succeed and decodes its JSON output
// into a map (nil for tables).
func (s *server) must(args ...string) map[string]any {
	s.t.Helper()
	out, errOut, err := s.chaser(args...)
	if err != nil {
		s.t.Fatalf("chaser %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(out), &m)
	return m
}

// TestClientCommands drives a real server through the admin client
// subcommands only: advertiser, key, feed, audience upload with a progress
// bar, campaign life cycle, and errors.
func TestClientCommands(t *testing.T) {
	t.Setenv("CHASER_API_KEY", "")
	t.Setenv("CHASER_ADMIN_TOKEN", testToken)
	dir := t.TempDir()
	s := startServer(t, dir)

	adv := s.must("advertisers", "create", "--name", "Acme Shoes", "--domain", "shop.example", "--country", "82")["id"].(string)
	if out, _, _ := s.chaser("advertisers", "list"); !strings.Contains(out, adv) || !strings.Contains(out, "Acme Shoes") {
		t.Fatalf("advertisers list:\n%s", out)
	}
	key := s.must("keys", "create", "--advertiser", adv)
	if !strings.HasPrefix(key["key"].(string), "chk_") {
		t.Fatalf("key %v", key)
	}

	feed := filepath.Join(dir, "feed.csv")
	if err := os.WriteFile(feed, []byte(feedCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := s.chaser("products", "upload", feed, "--advertiser", adv)
	if err != nil || !strings.Contains(out, `"replaced": true`) {
		t.Fatalf("products upload: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "100%") || !strings.Contains(errOut, "feed.csv") || !strings.Contains(errOut, "done") {
		t.Fatalf("no progress bar on stderr: %q", errOut)
	}

	// The rest as the advertiser, with its own key.
	t.Setenv("CHASER_API_KEY", key["key"].(string))
	aud := s.must("audiences", "create", "--advertiser", adv, "--name", "visitors")["id"].(string)
	members := filepath.Join(dir, "members.csv")
	if err := os.WriteFile(members, []byte("cookie-a\ncookie-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := s.must("audiences", "upload", members, "--id", aud, "--type", "uid")
	if up["applied"].(float64) != 2 {
		t.Fatalf("upload %v", up)
	}
	if got := s.must("audiences", "get", aud); got["size"].(float64) != 2 {
		t.Fatalf("audience %v", got)
	}
	cmpFile := filepath.Join(dir, "campaign.json")
	cmpJSON := fmt.Sprintf(`{"name":"Shoes","budget":{"daily":100},"pacing":"asap","bid":{"base_cpm":2.5,"max_cpm":6},
		"targeting":{"audiences":[%q],"countries":["KOR"]},"creative":{"sizes":["300x250"]}}`, aud)
	if err := os.WriteFile(cmpFile, []byte(cmpJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	cmp := s.must("campaigns", "create", "-f", cmpFile)["id"].(string)
	if code, _ := s.bid(bidRequest("c1", "cookie-a", 1)); code != 200 {
		t.Fatalf("bid after client set-up: %d", code)
	}
	if got := s.must("campaigns", "pause", cmp); got["status"] != "paused" {
		t.Fatalf("pause: %v", got)
	}
	if code, _ := s.bid(bidRequest("c2", "cookie-a", 1)); code != 204 {
		t.Fatalf("bid while paused: %d", code)
	}
	if got := s.must("campaigns", "resume", cmp); got["status"] != "active" {
		t.Fatalf("resume: %v", got)
	}
	out, _, _ = s.chaser("campaigns", "list")
	if !strings.Contains(out, cmp) || !strings.Contains(out, "active") {
		t.Fatalf("campaigns list:\n%s", out)
	}
	out, _, _ = s.chaser("campaigns", "list", "-o", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		t.Fatalf("campaigns list -o json: %v %s", err, out)
	}
	s.must("campaigns", "delete", cmp)

	// Errors name the status and the field; an advertiser key cannot make advertisers.
	_, _, err = s.chaser("campaigns", "get", cmp)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("get deleted campaign: %v", err)
	}
	_, _, err = s.chaser("advertisers", "create", "--name", "Other")
	if !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("advertiser key creates an advertiser: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"name":"x","budget":{"daily":-1}}`), 0o600)
	_, _, err = s.chaser("campaigns", "create", "-f", bad)
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Field != "budget.daily" || !strings.Contains(err.Error(), "budget.daily") {
		t.Fatalf("bad campaign: %v", err)
	}
	if _, _, err := s.chaser("campaigns", "frobnicate"); err == nil || !strings.Contains(err.Error(), "unknown action") {
		t.Fatalf("unknown action: %v", err)
	}
	if _, _, err := s.chaser("audiences", "upload", members, "--type", "uid"); err == nil {
		t.Fatal("upload without --id accepted")
	}
}

// TestClientKeyFromDataDir: without a key in the environment the client
// reads the admin_token file of --data-dir, as `chaser serve` writes it.
func TestClientKeyFromDataDir(t *testing.T) {
	t.Setenv("CHASER_API_KEY", "")
	t.Setenv("CHASER_ADMIN_TOKEN", "")
	dir := t.TempDir()
	s := startServer(t, dir)
	if _, _, err := s.chaser("campaigns", "list", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "no API key") {
		t.Fatalf("without a key: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin_token"), []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := s.chaser("campaigns", "list", "--data-dir", dir); err != nil {
		t.Fatalf("with the data dir's token: %v %s", err, errOut)
	}
}

// TestReadyBothPorts: /readyz answers 200 on both ports while serving.
func TestReadyBothPorts(t *testing.T) {
	s := startServer(t, t.TempDir())
	for _, u := range []string{s.bidURL + "/readyz", s.adminURL + "/readyz"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", u, resp.StatusCode)
		}
	}
	s.app.ready.Store(false)
	for _, u := range []string{s.bidURL + "/readyz", s.adminURL + "/readyz"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("%s while not ready: %d", u, resp.StatusCode)
		}
	}
}

// TestConfigLog: the start-up config line shows every flag and its source,
// and never a secret.
func TestConfigLog(t *testing.T) {
	t.Setenv("CHASER_ADMIN_TOKEN", "super-secret-admin-token-value")
	t.Setenv("CHASER_BID_ADDR", "127.0.0.1:9999")
	t.Setenv("CHASER_GDPR_VENDOR_ID", "")
	os.Unsetenv("CHASER_GDPR_VENDOR_ID")
	cfg, err := parseServeFlags([]string{"--gdpr-vendor-id", "1234", "--public-url", "https://user:pw@bid.example"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GDPRVendorID != 1234 || cfg.BidAddr != "127.0.0.1:9999" {
		t.Fatalf("config %+v", cfg)
	}
	var buf bytes.Buffer
	logConfig(slog.New(slog.NewTextHandler(&buf, nil)), cfg, secretSetting("CHASER_ADMIN_TOKEN", "d", "admin_token"),
		secretSetting("CHASER_SECRET", "d", "secret"))
	line := buf.String()
	for _, want := range []string{`bid_addr.from="env CHASER_BID_ADDR"`, "gdpr_vendor_id.value=1234", "gdpr_vendor_id.from=flag",
		"log_level.from=default", `CHASER_ADMIN_TOKEN.from="env CHASER_ADMIN_TOKEN"`, `CHASER_SECRET.from="file d/secret"`} {
		if !strings.Contains(line, want) {
			t.Errorf("config log lacks %s:\n%s", want, line)
		}
	}
	for _, secret := range []string{"super-secret-admin-token-value", "pw@"} {
		if strings.Contains(line, secret) {
			t.Errorf("config log shows a secret %q:\n%s", secret, line)
		}
	}
	if _, err := parseServeFlags([]string{"--gdpr-vendor-id", "70000"}); err == nil {
		t.Fatal("vendor id above 65535 accepted")
	}
}
