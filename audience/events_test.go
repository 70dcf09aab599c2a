package audience

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

var eventsSecret = []byte("events-test-secret-0123456789abcdef")

// testClock is an injectable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock {
	return &testClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTestDB(t testing.TB, dir string) *pebble.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newEventsManager(t testing.TB, db *pebble.DB, clk *testClock, opts EventOptions) *Manager {
	t.Helper()
	m, err := NewManager(db, Options{Secret: eventsSecret, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Events: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.CloseRules)
	return m
}

const hashA = "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"

func TestParseEventLine(t *testing.T) {
	for _, tc := range []struct {
		name, line, field, msg string
	}{
		{"ok", `{"advertiser_id":"adv_1","event":"add_to_cart","uid":"u-123","email_sha256":"` + hashA + `","maid":"6d92078a-8246-4ba4-ae5b-76104861e7dc","products":["sku-1"],"value":12.5,"currency":"USD","ts":"2026-11-22T10:00:00Z"}`, "", ""},
		{"not json", `{"event":`, "line", "malformed JSON"},
		{"not object", `[1,2]`, "", "wrong type"},
		{"unknown field", `{"event":"x","uid":"u","colour":"red"}`, "colour", "unknown field"},
		{"wrong type", `{"event":"x","uid":"u","value":"12"}`, "value", "wrong type"},
		{"products not list", `{"event":"x","uid":"u","products":"sku-1"}`, "products", "wrong type"},
		{"bad ts", `{"event":"x","uid":"u","ts":"yesterday"}`, "ts", "RFC 3339"},
		{"two values", `{"event":"x"} {"event":"y"}`, "line", "more than one"},
		{"too long", `{"event":"` + strings.Repeat("x", MaxLineBytes) + `"}`, "line", "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := ParseEventLine([]byte(tc.line))
			if tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				if in.AdvertiserID != "adv_1" || in.Value != 12.5 || len(in.Products) != 1 || in.TS.IsZero() {
					t.Fatalf("parsed %+v", in)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FieldError", err)
			}
			if (tc.field != "" && fe.Field != tc.field) || !strings.Contains(fe.Msg, tc.msg) {
				t.Errorf("got %s: %s; want %s: …%s…", fe.Field, fe.Msg, tc.field, tc.msg)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	clk := newClock()
	m := newEventsManager(t, openTestDB(t, t.TempDir()), clk, EventOptions{})
	now := clk.Now()
	pz := m.Pseudonymizer()
	base := EventInput{AdvertiserID: "adv_1", Event: EventAddToCart, UID: "u-1"}
	for _, tc := range []struct {
		name  string
		mod   func(*EventInput)
		field string
	}{
		{"ok", func(*EventInput) {}, ""},
		{"no advertiser", func(in *EventInput) { in.AdvertiserID = "" }, "advertiser_id"},
		{"advertiser with slash", func(in *EventInput) { in.AdvertiserID = "adv/1" }, "advertiser_id"},
		{"no event", func(in *EventInput) { in.Event = "" }, "event"},
		{"event upper case", func(in *EventInput) { in.Event = "Purchase" }, "event"},
		{"no id", func(in *EventInput) { in.UID = "" }, "uid"},
		{"bad uid", func(in *EventInput) { in.UID = "has space" }, "uid"},
		{"bad hash", func(in *EventInput) { in.EmailSHA256 = "someone@example.com" }, "email_sha256"},
		{"bad maid", func(in *EventInput) { in.MAID = "not-a-uuid" }, "maid"},
		{"zero maid", func(in *EventInput) { in.MAID = "00000000-0000-0000-0000-000000000000" }, "maid"},
		{"long product", func(in *EventInput) { in.Products = []string{strings.Repeat("p", MaxProductIDLen+1)} }, "products[0]"},
		{"comma product", func(in *EventInput) { in.Products = []string{"ok", "a,b"} }, "products[1]"},
		{"too many products", func(in *EventInput) { in.Products = make([]string, MaxEventProducts+1) }, "products"},
		{"negative value", func(in *EventInput) { in.Value = -1 }, "value"},
		{"huge value", func(in *EventInput) { in.Value = 2e9 }, "value"},
		{"bad currency", func(in *EventInput) { in.Currency = "US$" }, "currency"},
		{"old ts", func(in *EventInput) { in.TS = now.Add(-MaxEventAge - time.Second) }, "ts"},
		{"future ts", func(in *EventInput) { in.TS = now.Add(MaxEventSkew + time.Second) }, "ts"},
		{"ts within bounds", func(in *EventInput) { in.TS = now.Add(-MaxEventAge + time.Minute) }, ""},
		{"long event id", func(in *EventInput) { in.ID = strings.Repeat("i", MaxEventIDLen+1) }, "event_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.mod(&in)
			_, err := m.Resolve(in, now)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want a FieldError on %s", err, tc.field)
			}
		})
	}

	// Primary id: cookie, else ad id, else e-mail; the others are links.
	e, err := m.Resolve(EventInput{AdvertiserID: "a", Event: "login", EmailSHA256: strings.ToUpper(hashA),
		MAID: "6D92078A-8246-4BA4-AE5B-76104861E7DC", Products: []string{"p", "p"}, Value: 1.25, Currency: "usd"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if e.User != pz.Of(IDMAID, "6d92078a-8246-4ba4-ae5b-76104861e7dc") || e.UserKind != IDMAID {
		t.Errorf("primary is not the ad id")
	}
	if len(e.Links) != 1 || e.Links[0].ID != pz.Of(IDEmailSHA256, hashA) || e.Links[0].Kind != IDEmailSHA256 {
		t.Errorf("links %+v", e.Links)
	}
	if len(e.Products) != 1 || e.ValueMicros != 1_250_000 || e.Currency != "USD" || !e.Time.Equal(now) {
		t.Errorf("event %+v", e)
	}
}

func TestRecordEventLinksAndFanOut(t *testing.T) {
	clk := newClock()
	var mu sync.Mutex
	var seen []string
	m := newEventsManager(t, openTestDB(t, t.TempDir()), clk, EventOptions{
		OnEvent: func(ev Event, before *Profile) {
			mu.Lock()
			seen = append(seen, ev.Type+"/"+strconv.Itoa(len(before.Events)))
			mu.Unlock()
		},
	})
	pz := m.Pseudonymizer()
	cookie := pz.Of(IDUID, "cookie-1")
	email := pz.Of(IDEmailSHA256, hashA)
	rec := func(in EventInput) {
		t.Helper()
		e, err := m.Resolve(in, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := m.RecordEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	rec(EventInput{AdvertiserID: "adv_1", Event: EventProductView, UID: "cookie-1", Products: []string{"sku-1"}})
	// Login: the cookie and the hashed e-mail are linked, both ways, with kinds.
	rec(EventInput{AdvertiserID: "adv_1", Event: EventLogin, UID: "cookie-1", EmailSHA256: hashA})
	links, err := m.Links(email, 10)
	if err != nil || len(links) != 1 || links[0].ID != cookie || links[0].Kind != IDUID {
		t.Fatalf("links of the e-mail: %+v %v", links, err)
	}
	if back, _ := m.Links(cookie, 10); len(back) != 1 || back[0].ID != email || back[0].Kind != IDEmailSHA256 {
		t.Fatalf("links of the cookie: %+v", back)
	}
	if !m.hasLink(email) {
		t.Fatal("hasLink(email) = false")
	}
	// A server-to-server purchase known only by e-mail reaches the cookie's
	// profile too.
	rec(EventInput{AdvertiserID: "adv_1", Event: EventPurchase, EmailSHA256: hashA, Products: []string{"sku-1"}, Value: 30, ID: "o-1"})
	prof, err := m.Profile("adv_1", cookie)
	if err != nil {
		t.Fatal(err)
	}
	if len(prof.Events) != 3 || prof.Purchases != 1 || prof.MonetaryMicros != 30e6 {
		t.Fatalf("cookie profile %+v", prof)
	}
	if ep, _ := m.Profile("adv_1", email); len(ep.Events) != 1 || ep.Purchases != 1 {
		t.Fatalf("e-mail profile %+v", ep)
	}
	// The same order again is a duplicate and changes nothing.
	e, _ := m.Resolve(EventInput{AdvertiserID: "adv_1", Event: EventPurchase, EmailSHA256: hashA, Value: 30, ID: "o-1"}, clk.Now())
	if err := m.RecordEvent(e); !errors.Is(err, ErrDuplicateEvent) {
		t.Fatalf("duplicate order: %v", err)
	}
	if p, _ := m.Profile("adv_1", cookie); p.Purchases != 1 {
		t.Fatalf("duplicate counted: %+v", p)
	}
	// Other advertisers' profiles are separate.
	if p, _ := m.Profile("adv_2", cookie); len(p.Events) != 0 {
		t.Fatalf("adv_2 profile %+v", p)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "product_view/0,login/1,purchase/0" {
		t.Errorf("OnEvent saw %v", seen)
	}
}

// TestEraseRuleMembers: Erase takes a person out of rule audiences too, and
// their profiles and links are gone.
func TestEraseRuleMembers(t *testing.T) {
	clk := newClock()
	m := newEventsManager(t, openTestDB(t, t.TempDir()), clk, EventOptions{})
	aud, err := m.Create(Audience{AdvertiserID: "adv_1", Name: "viewers", Type: TypeRule, Rule: []byte(`{"event":"page_view"}`)})
	if err != nil {
		t.Fatal(err)
	}
	m.WaitRules()
	pz := m.Pseudonymizer()
	u := pz.Of(IDUID, "u-1")
	for _, adv := range []string{"adv_1", "adv_2", "adv_3"} {
		e, _ := m.Resolve(EventInput{AdvertiserID: adv, Event: EventPageView, UID: "u-1", EmailSHA256: hashA}, clk.Now())
		if err := m.RecordEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	if !m.Snapshot().Contains(aud.ID, u) {
		t.Fatal("not a member before erasure")
	}
	if err := m.Erase(u); err != nil {
		t.Fatal(err)
	}
	for _, adv := range []string{"adv_1", "adv_2", "adv_3"} {
		if p, _ := m.Profile(adv, u); len(p.Events) != 0 {
			t.Errorf("profile at %s kept: %+v", adv, p)
		}
	}
	if l, _ := m.Links(u, 10); len(l) != 0 {
		t.Errorf("links kept: %v", l)
	}
	if l, _ := m.Links(pz.Of(IDEmailSHA256, hashA), 10); len(l) != 0 {
		t.Errorf("reverse links kept: %v", l)
	}
	if m.Snapshot().Contains(aud.ID, u) || m.Snapshot().Known(u) {
		t.Error("still a member after erasure")
	}
	if a, _ := m.Get(aud.ID); a.Size != 0 {
		t.Errorf("size %d after erasure", a.Size)
	}
	// Events for the erased id are not recorded again.
	e, _ := m.Resolve(EventInput{AdvertiserID: "adv_1", Event: EventPageView, UID: "u-1"}, clk.Now())
	if err := m.RecordEvent(e); err != nil {
		t.Fatal(err)
	}
	if p, _ := m.Profile("adv_1", u); len(p.Events) != 0 || m.Snapshot().Contains(aud.ID, u) {
		t.Errorf("erased user tracked again: %+v", p)
	}
}

func FuzzParseEventLine(f *testing.F) {
	for _, s := range []string{
		`{"advertiser_id":"adv_1","event":"add_to_cart","uid":"u-123","email_sha256":"` + hashA + `","products":["sku-1"],"value":12.5,"currency":"USD","ts":"2026-11-22T10:00:00Z"}`,
		`{"advertiser_id":"adv_1","event":"purchase","maid":"6d92078a-8246-4ba4-ae5b-76104861e7dc","value":1e308}`,
		`{"event":"x","products":[1,2]}`, `{"ts":"2026-13-45T99:00:00Z"}`, `{}`, `null`, `"\u0000"`, `{"uid":"a","uid":"b"}`,
	} {
		f.Add([]byte(s))
	}
	clk := newClock()
	m := newEventsManager(f, openTestDB(f, f.TempDir()), clk, EventOptions{})
	f.Fuzz(func(t *testing.T, line []byte) {
		in, err := ParseEventLine(line)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			return
		}
		e, err := m.Resolve(in, clk.Now())
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			return
		}
		if e.User.IsZero() || e.ValueMicros < 0 || len(e.Products) > MaxEventProducts || !validEventType(e.Type) {
			t.Fatalf("resolved an invalid event %+v", e)
		}
		if err := m.RecordEvent(e); err != nil && !errors.Is(err, ErrDuplicateEvent) && !errors.Is(err, ErrTooManyTypes) {
			t.Fatal(err)
		}
	})
}

// TestIdentityLinkReachesList: an e-mail list uploaded before (and after) a
// login event that links a cookie to the hashed e-mail reaches that cookie,
// the id the bid stream carries.
func TestIdentityLinkReachesList(t *testing.T) {
	clk := newClock()
	m := newEventsManager(t, openTestDB(t, t.TempDir()), clk, EventOptions{})
	pz := m.Pseudonymizer()
	before, err := m.Create(Audience{AdvertiserID: "adv_1", Name: "crm", Type: TypeList})
	if err != nil {
		t.Fatal(err)
	}
	up := func(id, body string) {
		t.Helper()
		j, err := m.Upload(context.Background(), id, strings.NewReader(body), UploadOptions{Type: IDEmail})
		if err != nil || j.State != JobDone {
			t.Fatalf("upload: %+v %v", j, err)
		}
	}
	up(before.ID, "Someone@Example.com\n")
	cookie := pz.Of(IDUID, "cookie-7")
	if m.Snapshot().Contains(before.ID, cookie) {
		t.Fatal("cookie matches before any link")
	}
	// The e-mail hash the advertiser's site sends on login.
	h := sha256.Sum256([]byte("someone@example.com"))
	e, err := m.Resolve(EventInput{AdvertiserID: "adv_1", Event: EventLogin, UID: "cookie-7", EmailSHA256: hex.EncodeToString(h[:])}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RecordEvent(e); err != nil {
		t.Fatal(err)
	}
	if !m.Snapshot().Known(cookie) || !m.Snapshot().Contains(before.ID, cookie) {
		t.Fatal("the linked cookie does not match the e-mail list")
	}
	if ok, _ := m.Contains(before.ID, IDUID, "cookie-7", ""); !ok {
		t.Fatal("exact membership check misses the linked cookie")
	}
	// A list uploaded after the link reaches the cookie too.
	after, err := m.Create(Audience{AdvertiserID: "adv_1", Name: "crm2", Type: TypeList})
	if err != nil {
		t.Fatal(err)
	}
	up(after.ID, "someone@example.com\n")
	if !m.Snapshot().Contains(after.ID, cookie) {
		t.Fatal("a list uploaded after the link misses the cookie")
	}
	// An unrelated cookie stays out.
	if m.Snapshot().Contains(before.ID, pz.Of(IDUID, "cookie-8")) {
		t.Fatal("unlinked cookie matches")
	}
}
