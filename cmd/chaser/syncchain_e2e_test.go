package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/bidder"
)

// fakeExchange is an exchange's user-sync endpoint on loopback: it records
// the uid Chaser sends and redirects the browser back to Chaser's /setuid
// with its own id, asking Chaser to continue the chain.
type fakeExchange struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	uids []string
	back string // Chaser's base URL
}

func newFakeExchange(t *testing.T, name string) *fakeExchange {
	x := &fakeExchange{name: name}
	x.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x.mu.Lock()
		x.uids = append(x.uids, r.URL.Query().Get("uid"))
		back := x.back
		x.mu.Unlock()
		http.Redirect(w, r, back+"/setuid?exchange="+x.name+"&euid="+strings.ToUpper(x.name)+"-77&sync=1", http.StatusFound)
	}))
	t.Cleanup(x.srv.Close)
	return x
}

func (x *fakeExchange) seen() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.uids...)
}

// pixelGet requests a pixel URL with client and returns the final answer.
func pixelGet(t *testing.T, c *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestSyncPixelChainEndToEnd(t *testing.T) {
	ex1, ex2 := newFakeExchange(t, "ex1"), newFakeExchange(t, "ex2")
	spec := "ex1=" + ex1.srv.URL + "/usersync?dsp=chaser&uid=${UID},ex2=" + ex2.srv.URL + "/usersync?dsp=chaser&uid=$UID"
	hosts := []string{"127.0.0.1"}
	pixels, err := bidder.ParseSyncPixels(spec, hosts)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, t.TempDir(), withSync(hosts, []string{"ex1", "ex2"}, 0), withSyncPixels(pixels, time.Hour))
	for _, x := range []*fakeExchange{ex1, ex2} {
		x.mu.Lock()
		x.back = s.bidURL
		x.mu.Unlock()
	}
	px := s.bidURL + "/px?adv=adv_unknown&ev=page_view&sync=1"

	// A browser (cookie jar, following redirects): pixel → ex1 → /setuid →
	// ex2 → /setuid → the GIF, and both exchanges got the uid cookie's value.
	jar, _ := cookiejar.New(nil)
	var hops []string
	browser := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		hops = append(hops, r.URL.Host+r.URL.Path)
		return nil
	}}
	resp, body := pixelGet(t, browser, px)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" || len(body) == 0 {
		t.Fatalf("end of chain: %d %s (%d bytes) after %v", resp.StatusCode, resp.Header.Get("Content-Type"), len(body), hops)
	}
	if len(hops) != 4 {
		t.Fatalf("hops %v, want ex1, setuid, ex2, setuid", hops)
	}
	base, _ := url.Parse(s.bidURL)
	uid := ""
	for _, c := range jar.Cookies(base) {
		if c.Name == bidder.CookieName {
			uid = c.Value
		}
	}
	if len(uid) != 32 {
		t.Fatalf("no uid cookie: %v", jar.Cookies(base))
	}
	for _, x := range []*fakeExchange{ex1, ex2} {
		if got := x.seen(); len(got) != 1 || got[0] != uid {
			t.Fatalf("%s saw %v, want [%s]", x.name, got, uid)
		}
		p, ok := s.app.exchIDs.Lookup([]byte(x.name), []byte(strings.ToUpper(x.name)+"-77"))
		if !ok || p != s.app.audiences.Pseudonymizer().Of(audience.IDUID, uid) {
			t.Fatalf("%s: mapping %v %v", x.name, p, ok)
		}
	}

	// Within the interval the pixel answers the GIF and syncs nobody again.
	hops = nil
	for i := 0; i < 3; i++ {
		if resp, _ := pixelGet(t, browser, px); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" {
			t.Fatalf("repeat %d: %d", i, resp.StatusCode)
		}
	}
	if len(hops) != 0 || len(ex1.seen()) != 1 || len(ex2.seen()) != 1 {
		t.Fatalf("re-synced within the interval: hops %v", hops)
	}

	// Without consent: no redirect, no cookie, no exchange hit.
	for _, q := range []string{"us_privacy=1YYN", "gdpr=1", "gdpr=1&gdpr_consent=garbage", "gpp_sid=7"} {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, _ := pixelGet(t, c, px+"&"+q)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" || resp.Header.Get("Location") != "" {
			t.Fatalf("%s: %d %q", q, resp.StatusCode, resp.Header.Get("Location"))
		}
		if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Fatalf("%s: cookies %q", q, sc)
		}
	}
	if len(ex1.seen()) != 1 || len(ex2.seen()) != 1 {
		t.Fatal("an exchange was hit without consent")
	}

	// A plain pixel is still the GIF, nothing chained.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, _ := pixelGet(t, c, s.bidURL+"/px?adv=adv_unknown&ev=page_view"); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" {
		t.Fatalf("plain pixel: %d", resp.StatusCode)
	}
}

// The real binary refuses a sync pixel whose host is not on --sync-hosts
// (flag or environment) before it opens anything.
func TestSyncPixelHostRefusedAtStart(t *testing.T) {
	bin := chaserBinary(t)
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"flag", []string{"--sync-hosts", "pbs.example", "--sync-pixels", "adx=https://sync.adx.example/u?uid=$UID"},
			nil, `--sync-pixels: sync pixel "adx": host "sync.adx.example" is not on the sync host allow-list`},
		{"env", []string{"--sync-hosts", "*.example"},
			[]string{"CHASER_SYNC_PIXELS=pbs=https://pbs.example/s?uid=$UID,evil=https://evil.test/s?uid=$UID"}, `host "evil.test" is not on the sync host allow-list`},
		{"no macro", []string{"--sync-hosts", "pbs.example", "--sync-pixels", "pbs=https://pbs.example/s"}, nil, "no ${UID}"},
		{"interval", []string{"--sync-interval", "1s"}, nil, "--sync-interval 1s: want 1m to 400 days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--data-dir", data,
				"--bid-addr", freeAddr(t), "--admin-addr", freeAddr(t)}, tc.args...)...)
			cmd.Env = append(os.Environ(), tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v; stderr %s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q, want %q", stderr.String(), tc.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Fatalf("data dir created before the refusal: %v", err)
			}
		})
	}
}
