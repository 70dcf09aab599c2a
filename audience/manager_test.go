package audience

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a Manager over a real Pebble store in a temporary directory, with
// an injected clock, that can be restarted.
type env struct {
	t     testing.TB
	dir   string
	db    *pebble.DB
	m     *Manager
	clock *fakeClock
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, dir: filepath.Join(t.TempDir(), "db"), clock: &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	e.t.Helper()
	db, err := store.Open(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := NewManager(db, Options{Secret: testSecret, Now: e.clock.Now, Logger: quiet})
	if err != nil {
		db.Close()
		e.t.Fatal(err)
	}
	e.db, e.m = db, m
}

func (e *env) close() {
	if e.m != nil {
		e.m.Close()
		e.m = nil
	}
	if e.db != nil {
		if err := e.db.Close(); err != nil {
			e.t.Error(err)
		}
		e.db = nil
	}
}

func (e *env) restart() {
	e.t.Helper()
	e.close()
	e.open()
}

func (e *env) create(name string, ttlDays int) string {
	e.t.Helper()
	a, err := e.m.Create(Audience{AdvertiserID: "adv_1", Name: name, Type: TypeList, TTLDays: ttlDays})
	if err != nil {
		e.t.Fatal(err)
	}
	return a.ID
}

func (e *env) upload(id, body string, opts UploadOptions) Job {
	e.t.Helper()
	j, err := e.m.Upload(context.Background(), id, strings.NewReader(body), opts)
	if err != nil {
		e.t.Fatalf("upload: %v (job %+v)", err, j)
	}
	return j
}

func (e *env) p(t IDType, raw string) Pseudonym {
	e.t.Helper()
	p, err := e.m.Pseudonymizer().Raw(t, raw, "82")
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) contains(id string, t IDType, raw string) bool {
	e.t.Helper()
	ok, err := e.m.Contains(id, t, raw, "82")
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

func checkStats(t testing.TB, j Job) {
	t.Helper()
	if j.Valid+j.Invalid != j.RowsRead {
		t.Errorf("valid %d + invalid %d != rows %d", j.Valid, j.Invalid, j.RowsRead)
	}
	if j.IDs < j.Valid || j.Applied+j.Duplicates+j.Suppressed+j.NotMembers > j.IDs || j.Matched > j.IDs {
		t.Errorf("inconsistent counts: %+v", j.UploadStats)
	}
	if j.MatchRate < 0 || j.MatchRate > 1 {
		t.Errorf("match rate %v", j.MatchRate)
	}
}

func TestUploadHeaderColumns(t *testing.T) {
	e := newEnv(t)
	id := e.create("crm", 0)
	body := "\ufeffEmail,Phone,Mobile Device ID,First Name\n" +
		"Alice@Example.com,010-1234-5678,6D92078A-8246-4BA4-AE5B-76104861E7DC,Alice\n" +
		"\"bob@example.com\",,,\"Bob, Jr.\"\n" +
		"not-an-email,12,zzz,Carol\n" +
		"\n" +
		"alice@example.com,,,Alice again\n" +
		",,,Nobody\n" +
		sha("dave@example.com") + ",+1 212 555 0100,,Dave\n"
	j := e.upload(id, body, UploadOptions{DefaultCountry: "82"})
	checkStats(t, j)
	want := UploadStats{RowsRead: 6, Valid: 4, Invalid: 2, IDs: 7, Duplicates: 1, Applied: 6}
	if j.RowsRead != want.RowsRead || j.Valid != want.Valid || j.Invalid != want.Invalid || j.IDs != want.IDs ||
		j.Duplicates != want.Duplicates || j.Applied != want.Applied {
		t.Errorf("stats %+v, want %+v", j.UploadStats, want)
	}
	if j.State != JobDone || j.Error != "" {
		t.Errorf("job %s %q", j.State, j.Error)
	}
	if strings.Join(j.Columns, ",") != "email,phone,mobile device id,first name" || strings.Join(j.Ignored, ",") != "first name" {
		t.Errorf("columns %v ignored %v", j.Columns, j.Ignored)
	}
	if len(j.Errors) != 2 || j.Errors[0].Line != 4 || j.Errors[0].Column != "email" || j.Errors[1].Line != 7 {
		t.Errorf("row errors %+v", j.Errors)
	}
	for _, re := range j.Errors {
		if strings.Contains(re.Reason, "not-an-email") {
			t.Errorf("a row error echoes the value: %q", re.Reason)
		}
	}
	// Only the uid/maid member is visible in the bid stream without links.
	if j.Matched != 1 {
		t.Errorf("matched %d, want 1 (the ad id)", j.Matched)
	}
	snap := e.m.Snapshot()
	for _, c := range []struct {
		t   IDType
		raw string
	}{
		{IDEmail, "alice@example.com"}, {IDPhone, "+82 10 1234 5678"}, {IDMAID, "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
		{IDEmail, "BOB@example.com"}, {IDEmailSHA256, sha("dave@example.com")}, {IDPhone, "+1 (212) 555-0100"},
	} {
		if !e.contains(id, c.t, c.raw) || !snap.Contains(id, e.p(c.t, c.raw)) || !snap.Known(e.p(c.t, c.raw)) {
			t.Errorf("%v %q: not a member", c.t, c.raw)
		}
	}
	if e.contains(id, IDEmail, "carol@example.com") {
		t.Error("a stranger is a member")
	}
	a, err := e.m.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != 6 || a.Status != StatusReady || a.Upload == nil || a.Upload.ID != j.ID || a.Uploads.Jobs != 1 ||
		a.Uploads.Added != 6 || a.Filter == nil || a.Filter.Added < 6 {
		t.Errorf("audience %+v", a)
	}
}

func TestUploadPlainTypesAndErrors(t *testing.T) {
	e := newEnv(t)
	id := e.create("ids", 0)
	// One id a line, a type given; CRLF, blank lines, spaces.
	j := e.upload(id, "cookie-a\r\n\r\n cookie-b \ncookie-b\nbad cookie\n", UploadOptions{Type: IDUID})
	checkStats(t, j)
	if j.RowsRead != 4 || j.Valid != 3 || j.Invalid != 1 || j.Applied != 2 || j.Duplicates != 1 || j.Matched != 2 {
		t.Errorf("stats %+v", j.UploadStats)
	}
	// No type and no header: a 400-style error, nothing applied, status kept.
	_, err := e.m.Upload(context.Background(), id, strings.NewReader("cookie-c\n"), UploadOptions{})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "id_type" {
		t.Errorf("no type: %v", err)
	}
	if a, _ := e.m.Get(id); a.Status != StatusReady || a.Upload.State != JobFailed || a.Size != 2 {
		t.Errorf("after a refused upload: status %s, job %+v, size %d", a.Status, a.Upload, a.Size)
	}
	// Re-uploading the same list is idempotent.
	j = e.upload(id, "cookie-a\ncookie-b\n", UploadOptions{Type: IDUID})
	if j.Applied != 0 || j.Duplicates != 2 {
		t.Errorf("re-upload: %+v", j.UploadStats)
	}
	// A line too long is one invalid row, the rest goes on.
	j = e.upload(id, strings.Repeat("x", maxLineLen+10)+"\ncookie-d\n", UploadOptions{Type: IDUID})
	if j.RowsRead != 2 || j.Invalid != 1 || j.Applied != 1 || j.Errors[0].Line != 1 {
		t.Errorf("long line: %+v", j.UploadStats)
	}
	// Not a list audience.
	rule, err := e.m.Create(Audience{AdvertiserID: "adv_1", Name: "r", Type: TypeRule, Rule: []byte(`{"event":"page_view"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Upload(context.Background(), rule.ID, strings.NewReader("x\n"), UploadOptions{Type: IDUID}); !errors.Is(err, ErrInvalid) {
		t.Errorf("upload into a rule audience: %v", err)
	}
	if _, err := e.m.Upload(context.Background(), "aud_missing", strings.NewReader("x\n"), UploadOptions{Type: IDUID}); !errors.Is(err, ErrNotFound) {
		t.Errorf("upload into a missing audience: %v", err)
	}
}

func gz(t testing.TB, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.Bytes()
}

func TestUploadGzip(t *testing.T) {
	e := newEnv(t)
	id := e.create("gz", 0)
	var list strings.Builder
	list.WriteString("email_sha256\n")
	for i := 0; i < 1000; i++ {
		fmt.Fprintln(&list, sha(fmt.Sprintf("user%d@example.com", i)))
	}
	body := gz(t, list.String())
	j, err := e.m.Upload(context.Background(), id, bytes.NewReader(body), UploadOptions{SizeHint: int64(len(body))})
	if err != nil || j.Applied != 1000 || j.BytesRead != int64(len(body)) {
		t.Fatalf("gzip upload: %v %+v", err, j.UploadStats)
	}
	if !e.contains(id, IDEmail, "user999@example.com") {
		t.Error("member missing")
	}
	// A truncated gzip stream fails the job, and says how much it applied.
	j, err = e.m.Upload(context.Background(), id, bytes.NewReader(body[:len(body)/2]), UploadOptions{})
	if err == nil || j.State != JobFailed {
		t.Errorf("truncated gzip: %v %+v", err, j)
	}
	_, err = e.m.Upload(context.Background(), id, bytes.NewReader([]byte{0x1f, 0x8b, 0, 0}), UploadOptions{Type: IDUID})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("bad gzip header: %v", err)
	}
}

func TestRemoveUpload(t *testing.T) {
	e := newEnv(t)
	id := e.create("rm", 0)
	var all, half strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&all, "cookie-%d\n", i)
		if i%2 == 0 {
			fmt.Fprintf(&half, "cookie-%d\n", i)
		}
	}
	e.upload(id, all.String(), UploadOptions{Type: IDUID})
	j := e.upload(id, half.String()+"never-a-member\n", UploadOptions{Type: IDUID, Remove: true})
	checkStats(t, j)
	if j.Applied != 1000 || j.NotMembers != 1 || !j.Remove {
		t.Fatalf("removal: %+v", j.UploadStats)
	}
	snap := e.m.Snapshot()
	stillMatch := 0
	for i := 0; i < 2000; i++ {
		raw := fmt.Sprintf("cookie-%d", i)
		member := i%2 == 1
		if e.contains(id, IDUID, raw) != member {
			t.Fatalf("%s: exact membership wrong", raw)
		}
		if member && !snap.Contains(id, e.p(IDUID, raw)) {
			t.Fatalf("%s: member missing from the rebuilt filter", raw)
		}
		if !member && snap.Contains(id, e.p(IDUID, raw)) {
			stillMatch++
		}
	}
	// The filter was rebuilt without them: only false positives remain.
	if stillMatch > 10 {
		t.Errorf("%d of 1000 removed members still match the filter", stillMatch)
	}
	if a, _ := e.m.Get(id); a.Size != 1000 || a.Uploads.Removed != 1000 {
		t.Errorf("size %d removed %d", a.Size, a.Uploads.Removed)
	}
}

func TestExpiry(t *testing.T) {
	e := newEnv(t)
	id := e.create("30 days", 30)
	keep := e.create("forever", 0)
	e.upload(id, "old-1\nold-2\n", UploadOptions{Type: IDUID})
	e.upload(keep, "old-1\n", UploadOptions{Type: IDUID})
	e.clock.Add(20 * 24 * time.Hour)
	j := e.upload(id, "old-2\nnew-1\n", UploadOptions{Type: IDUID}) // old-2's expiry refreshed
	if j.Applied != 1 || j.Duplicates != 1 {
		t.Errorf("refresh upload %+v", j.UploadStats)
	}
	e.clock.Add(15 * 24 * time.Hour) // old-1 expired (day 30), old-2 and new-1 not (day 50)
	if e.contains(id, IDUID, "old-1") || !e.contains(id, IDUID, "old-2") {
		t.Error("exact check ignores expiry")
	}
	if err := e.m.Maintain(e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	snap := e.m.Snapshot()
	if snap.Contains(id, e.p(IDUID, "old-1")) {
		t.Error("an expired member still matches after Maintain")
	}
	if !snap.Contains(id, e.p(IDUID, "old-2")) || !snap.Contains(id, e.p(IDUID, "new-1")) || !snap.Contains(keep, e.p(IDUID, "old-1")) {
		t.Error("a live member stopped matching")
	}
	if a, _ := e.m.Get(id); a.Size != 2 {
		t.Errorf("size %d after expiry, want 2", a.Size)
	}
	if _, err := store.Get(e.db, memKey(id, e.p(IDUID, "old-1"))); !errors.Is(err, store.ErrNotFound) {
		t.Error("the expired member is still stored")
	}
	e.clock.Add(60 * 24 * time.Hour)
	if err := e.m.Maintain(e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if a, _ := e.m.Get(id); a.Size != 0 || e.m.Snapshot().Contains(id, e.p(IDUID, "new-1")) {
		t.Errorf("everything expired: size %d", a.Size)
	}
	// A restart does not bring expired members back.
	e.restart()
	if e.m.Snapshot().Contains(id, e.p(IDUID, "old-2")) || !e.m.Snapshot().Contains(keep, e.p(IDUID, "old-1")) {
		t.Error("restart: wrong members")
	}
}

// link stores an identity link between a cookie and a hashed e-mail as the
// events code does (both directions, the value the other id's kind), then
// tells the filters, as the events code does after its commit.
func (e *env) link(uid, email string) {
	e.t.Helper()
	u, em := e.p(IDUID, uid), e.p(IDEmail, email)
	b := e.db.NewBatch()
	_ = b.Set(append(linkPrefix(em), u[:]...), []byte{byte(IDUID)}, nil)
	_ = b.Set(append(linkPrefix(u), em[:]...), []byte{byte(IDEmailSHA256)}, nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		e.t.Fatal(err)
	}
	b.Close()
	if err := e.m.OnLink(em, u); err != nil {
		e.t.Fatal(err)
	}
}

func TestIdentityLinks(t *testing.T) {
	e := newEnv(t)
	id := e.create("crm", 0)
	other := e.create("other", 0)
	e.link("cookie-before", "before@example.com") // linked before the upload
	j := e.upload(id, "email\nbefore@example.com\nafter@example.com\nnever@example.com\n", UploadOptions{})
	if j.Matched != 1 || j.MatchRate < 0.33 || j.MatchRate > 0.34 {
		t.Errorf("match: %d, rate %v; want 1 of 3", j.Matched, j.MatchRate)
	}
	snap := e.m.Snapshot()
	if !snap.Contains(id, e.p(IDUID, "cookie-before")) {
		t.Error("a cookie linked before the upload does not match")
	}
	if snap.Contains(id, e.p(IDUID, "cookie-after")) {
		t.Error("an unlinked cookie matches")
	}
	e.link("cookie-after", "after@example.com") // a link that appears after the upload
	if !e.m.Snapshot().Contains(id, e.p(IDUID, "cookie-after")) || !e.m.Snapshot().Known(e.p(IDUID, "cookie-after")) {
		t.Error("a cookie linked after the upload does not match")
	}
	if e.m.Snapshot().Contains(other, e.p(IDUID, "cookie-after")) {
		t.Error("a link leaked into an audience without the e-mail")
	}
	if !e.contains(id, IDUID, "cookie-after") || e.contains(other, IDUID, "cookie-after") {
		t.Error("exact check does not follow links")
	}
	// An e-mail linked to a phone (no id of the bid stream) adds nothing.
	ph := e.p(IDPhone, "+82 10 5555 0000")
	if err := e.db.Set(append(linkPrefix(e.p(IDEmail, "never@example.com")), ph[:]...), []byte{byte(IDPhoneSHA256)}, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	// After a restart the filter is rebuilt from members and links.
	e.restart()
	if e.m.Snapshot().Contains(id, ph) {
		t.Error("a phone linked to an e-mail member was added to the filter")
	}
	snap = e.m.Snapshot()
	for _, c := range []string{"cookie-before", "cookie-after"} {
		if !snap.Contains(id, e.p(IDUID, c)) || !snap.Known(e.p(IDUID, c)) {
			t.Errorf("restart: %s no longer matches", c)
		}
	}
	if a, _ := e.m.Get(id); a.LinkedIDs != 2 {
		t.Errorf("linked ids %d, want 2", a.LinkedIDs)
	}
	// Removing the e-mail stops its cookie.
	e.upload(id, "after@example.com\n", UploadOptions{Type: IDEmail, Remove: true})
	if e.m.Snapshot().Contains(id, e.p(IDUID, "cookie-after")) || e.contains(id, IDUID, "cookie-after") {
		t.Error("the cookie of a removed e-mail still matches")
	}
}

func TestErase(t *testing.T) {
	e := newEnv(t)
	a1, a2 := e.create("a1", 0), e.create("a2", 0)
	e.link("cookie-x", "x@example.com")
	e.upload(a1, "email\nx@example.com\ny@example.com\n", UploadOptions{})
	e.upload(a2, "email\nx@example.com\n", UploadOptions{})
	px, cx := e.p(IDEmail, "x@example.com"), e.p(IDUID, "cookie-x")
	if err := e.m.RecordEvent(Event{AdvertiserID: "adv_2", Type: EventPageView, User: px, Time: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if !e.m.Snapshot().Contains(a1, cx) {
		t.Fatal("set-up: linked cookie does not match")
	}
	if err := e.m.Erase(px); err != nil {
		t.Fatal(err)
	}
	snap := e.m.Snapshot()
	if snap.Contains(a1, px) || snap.Contains(a2, px) || snap.Known(px) || e.contains(a1, IDEmail, "x@example.com") {
		t.Error("an erased user still matches")
	}
	for _, k := range [][]byte{memKey(a1, px), memKey(a2, px), profileKey("adv_1", px), profileKey("adv_2", px),
		append(linkPrefix(px), cx[:]...), append(linkPrefix(cx), px[:]...)} {
		if _, err := store.Get(e.db, k); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("key %q survived the erasure", k)
		}
	}
	if _, err := store.Get(e.db, []byte(store.PrefixErase+string(px[:]))); err != nil {
		t.Errorf("no erase record: %v", err)
	}
	// The cookie matched through the erased e-mail: gone after Maintain.
	if err := e.m.Maintain(e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if e.m.Snapshot().Contains(a1, cx) {
		t.Error("the cookie linked to an erased e-mail still matches after Maintain")
	}
	if !e.m.Snapshot().Contains(a1, e.p(IDEmail, "y@example.com")) {
		t.Error("another member was lost")
	}
	// Uploaded again: suppressed. After a restart: still erased.
	j := e.upload(a1, "email\nx@example.com\n", UploadOptions{})
	if j.Suppressed != 1 || j.Applied != 0 {
		t.Errorf("re-upload of an erased user: %+v", j.UploadStats)
	}
	if n, err := e.m.AddMembers(a2, []Member{{P: px, Kind: IDEmailSHA256}}); err != nil || n != 0 {
		t.Errorf("AddMembers of an erased user: %d %v", n, err)
	}
	e.restart()
	if e.m.Snapshot().Contains(a1, px) || e.contains(a1, IDEmail, "x@example.com") || !e.m.Snapshot().Erased(px) {
		t.Error("restart: the erased user matches again")
	}
	if a, _ := e.m.Get(a1); a.Size != 1 {
		t.Errorf("size %d, want 1", a.Size)
	}
}

// blockingReader serves data, then blocks until release is closed, then
// fails with err.
type blockingReader struct {
	data    *strings.Reader
	release chan struct{}
	err     error
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if r.data.Len() > 0 {
		return r.data.Read(p)
	}
	<-r.release
	return 0, r.err
}

func uidList(prefix string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s-%d\n", prefix, i)
	}
	return b.String()
}

// TestUploadProgressAndCrash: a running upload shows its progress; a crash
// in the middle (a checkpoint of the store taken then, opened as the next
// start) leaves a job reported failed with the rows it had applied, and
// exactly those members.
func TestUploadProgressAndCrash(t *testing.T) {
	e := newEnv(t)
	id := e.create("big", 0)
	const first = uploadBatch + 100
	r := &blockingReader{data: strings.NewReader(uidList("u", first)), release: make(chan struct{}), err: io.ErrUnexpectedEOF}
	progressed := make(chan struct{})
	var once sync.Once
	done := make(chan Job)
	go func() {
		j, _ := e.m.Upload(context.Background(), id, r, UploadOptions{Type: IDUID, Progress: func(int64) {
			once.Do(func() { close(progressed) })
		}})
		done <- j
	}()
	<-progressed
	a, err := e.m.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != StatusBuilding || a.Upload == nil || a.Upload.State != JobRunning || a.Upload.RowsRead < uploadBatch || a.Upload.Applied < uploadBatch {
		t.Fatalf("progress not visible: status %s upload %+v", a.Status, a.Upload)
	}
	jobs, err := e.m.Jobs(id)
	if err != nil || len(jobs) != 1 || jobs[0].State != JobRunning {
		t.Fatalf("jobs %v %+v", err, jobs)
	}
	// The "crash": the store as it is now, opened by a new process.
	crash := filepath.Join(t.TempDir(), "crash")
	if err := e.db.Checkpoint(crash, pebble.WithFlushedWAL()); err != nil {
		t.Fatal(err)
	}
	close(r.release) // let this process's upload end (as failed: unexpected EOF)
	if j := <-done; j.State != JobFailed {
		t.Errorf("upload ending in a read error: %s", j.State)
	}
	db, err := store.Open(crash)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := NewManager(db, Options{Secret: testSecret, Now: e.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	a, _ = m.Get(id)
	if a.Status != StatusFailed || a.Upload == nil || a.Upload.State != JobFailed || !strings.Contains(a.Upload.Error, "interrupted") {
		t.Fatalf("after the crash: status %s upload %+v", a.Status, a.Upload)
	}
	applied := a.Upload.Applied
	if applied < uploadBatch || applied > first || a.Size != applied {
		t.Errorf("applied %d, size %d", applied, a.Size)
	}
	n := 0
	if err := store.Scan(db, memPrefix(id), func(_, _ []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if int64(n) != applied {
		t.Errorf("%d members stored, job says %d applied", n, applied)
	}
	jobs, _ = m.Jobs(id)
	if len(jobs) != 1 || jobs[0].State != JobFailed {
		t.Errorf("jobs after the crash %+v", jobs)
	}
}

// TestUploadClientGone: a client that disconnects mid-upload leaves a failed
// job with its counts, never a silent half.
func TestUploadClientGone(t *testing.T) {
	e := newEnv(t)
	id := e.create("gone", 0)
	ctx, cancel := context.WithCancel(context.Background())
	r := &blockingReader{data: strings.NewReader(uidList("c", uploadBatch+10)), release: make(chan struct{}), err: context.Canceled}
	done := make(chan error)
	var j Job
	go func() {
		var err error
		var once sync.Once
		j, err = e.m.Upload(ctx, id, r, UploadOptions{Type: IDUID, Progress: func(int64) {
			once.Do(func() {
				cancel()
				close(r.release)
			})
		}})
		done <- err
	}()
	err := <-done
	if !errors.Is(err, context.Canceled) || j.State != JobFailed || j.Applied < uploadBatch {
		t.Fatalf("client gone: %v, job %+v", err, j)
	}
	a, _ := e.m.Get(id)
	if a.Status != StatusFailed || a.Upload.State != JobFailed || a.Size != j.Applied {
		t.Errorf("audience after a failed upload: %s %+v size %d", a.Status, a.Upload, a.Size)
	}
	// Uploading again finishes the job.
	j2 := e.upload(id, uidList("c", uploadBatch+10), UploadOptions{Type: IDUID})
	if j2.Applied+j.Applied != uploadBatch+10 {
		t.Errorf("retry applied %d after %d", j2.Applied, j.Applied)
	}
	if a, _ := e.m.Get(id); a.Status != StatusReady {
		t.Errorf("status %s after the retry", a.Status)
	}
}

func TestDeleteAudience(t *testing.T) {
	e := newEnv(t)
	id := e.create("doomed", 0)
	e.upload(id, "a\nb\n", UploadOptions{Type: IDUID})
	// An upload that is running when the audience is deleted stops.
	r := &blockingReader{data: strings.NewReader("c\n"), release: make(chan struct{}), err: io.EOF}
	done := make(chan error)
	go func() {
		_, err := e.m.Upload(context.Background(), id, r, UploadOptions{Type: IDUID})
		done <- err
	}()
	for {
		if a, _ := e.m.Get(id); a.Status == StatusBuilding {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := e.m.Delete(id); err != nil {
		t.Fatal(err)
	}
	close(r.release)
	if err := <-done; !errors.Is(err, ErrNotFound) {
		t.Errorf("upload into a deleted audience: %v", err)
	}
	if _, err := e.m.Get(id); !errors.Is(err, ErrNotFound) || e.m.Snapshot().Has(id) {
		t.Error("audience still there")
	}
	for _, pfx := range [][]byte{memPrefix(id), jobPrefix(id), audKey(id)} {
		if err := store.Scan(e.db, pfx, func(k, _ []byte) error { return fmt.Errorf("key %q left", k) }); err != nil {
			t.Error(err)
		}
	}
	if err := e.m.Delete(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

// TestFilterGrowth: uploads far past a filter's first capacity, without a
// size hint, keep the measured false-positive rate under target; a restart
// sizes the filter from the store at ≤ 2 bytes a member.
func TestFilterGrowth(t *testing.T) {
	e := newEnv(t)
	id := e.create("growing", 0)
	n := 60_000
	if raceEnabled {
		n = 15_000
	}
	for i := 0; i < 3; i++ {
		e.upload(id, uidList(fmt.Sprintf("g%d", i), n/3), UploadOptions{Type: IDUID})
		a, _ := e.m.Get(id)
		if a.Filter.FalsePositiveRate > FalsePositiveTarget || a.Filter.Added > a.Filter.Capacity {
			t.Errorf("after upload %d: filter %+v", i, a.Filter)
		}
	}
	snap := e.m.Snapshot()
	for i := 0; i < 3; i++ {
		for k := 0; k < n/3; k += 97 {
			if !snap.Contains(id, e.p(IDUID, fmt.Sprintf("g%d-%d", i, k))) {
				t.Fatalf("member g%d-%d lost in growth", i, k)
			}
		}
	}
	e.restart()
	a, _ := e.m.Get(id)
	if perMember := float64(a.Filter.Bytes) / float64(a.Size); a.Size != int64(n) || perMember > 2 {
		t.Errorf("after restart: size %d, %.2f bytes a member", a.Size, perMember)
	}
	fp := 0
	for _, p := range randomPseudonyms(9, 200_000) {
		if e.m.Snapshot().Contains(id, p) {
			fp++
		}
	}
	if rate := float64(fp) / 200_000; rate > FalsePositiveTarget {
		t.Errorf("measured false-positive rate %.4f over target", rate)
	}
}

// TestConcurrentUploadsAndReads: uploads into several audiences, links,
// maintenance and bid-path reads at once (run with -race).
func TestConcurrentUploadsAndReads(t *testing.T) {
	e := newEnv(t)
	ids := []string{e.create("c0", 0), e.create("c1", 0), e.create("c2", 0)}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			probe := randomPseudonyms(uint64(r), 64)
			for {
				select {
				case <-stop:
					return
				default:
				}
				snap := e.m.Snapshot()
				for i := range probe {
					if snap.Known(probe[i]) {
						for _, id := range ids {
							_ = snap.Contains(id, probe[i])
						}
					}
				}
				_, _ = e.m.Get(ids[r])
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < 20; k++ {
			e.link(fmt.Sprintf("lc-%d", k), fmt.Sprintf("l%d@example.com", k))
			_ = e.m.Maintain(e.clock.Now())
		}
	}()
	var up sync.WaitGroup
	for i, id := range ids {
		for part := 0; part < 2; part++ {
			up.Add(1)
			go func() {
				defer up.Done()
				body := uidList(fmt.Sprintf("a%d-%d", i, part), 5000)
				if i == 0 {
					var b strings.Builder
					b.WriteString("email\n")
					for k := 0; k < 20; k++ {
						fmt.Fprintf(&b, "l%d@example.com\n", k)
					}
					body = b.String() + strings.Replace(body, "\n", "@example.com\n", -1)
				}
				if _, err := e.m.Upload(context.Background(), id, strings.NewReader(body), UploadOptions{Type: IDUID}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	up.Wait()
	close(stop)
	wg.Wait()
	snap := e.m.Snapshot()
	for i, id := range ids {
		for part := 0; part < 2; part++ {
			for k := 0; k < 5000; k += 7 {
				raw := fmt.Sprintf("a%d-%d-%d", i, part, k)
				kind := IDUID
				if i == 0 {
					raw, kind = raw+"@example.com", IDEmail
				}
				if !snap.Contains(id, e.p(kind, raw)) || !snap.Known(e.p(kind, raw)) {
					t.Fatalf("%s missing from %s", raw, id)
				}
			}
		}
	}
	for k := 0; k < 20; k++ {
		if !snap.Contains(ids[0], e.p(IDUID, fmt.Sprintf("lc-%d", k))) {
			t.Errorf("linked cookie lc-%d missing", k)
		}
	}
}

// TestNoRawIdentifiersOnDisk uploads plain e-mails and phones and finds none
// of them, in any form short of a pseudonym, in any file of the store.
func TestNoRawIdentifiersOnDisk(t *testing.T) {
	e := newEnv(t)
	const canary = "canary-audience-name-7f3a"
	a, err := e.m.Create(Audience{AdvertiserID: "adv_1", Name: canary, Type: TypeList})
	if err != nil {
		t.Fatal(err)
	}
	raws := []string{"Jane.Doe+promo@Example.org", "010-9876-5432", "someone.else@example.net", "+1 (415) 555-0199"}
	j := e.upload(a.ID, "email,phone\n"+raws[0]+","+raws[1]+"\n"+raws[2]+","+raws[3]+"\nbroken@,010-12\n", UploadOptions{DefaultCountry: "82"})
	if j.Applied != 4 || j.Invalid != 1 {
		t.Fatalf("upload %+v", j.UploadStats)
	}
	if _, err := e.m.Contains(a.ID, IDEmail, raws[0], ""); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Flush(); err != nil {
		t.Fatal(err)
	}
	e.close()
	forbidden := []string{"jane.doe+promo@example.org", "+821098765432", "821098765432", "someone.else@example.net",
		"+14155550199", "broken@", "9876-5432", "9876", sha("jane.doe+promo@example.org"), sha("+821098765432")}
	forbidden = append(forbidden, raws...)
	digest := sha256Bytes("jane.doe+promo@example.org")
	found := map[string]bool{}
	err = filepath.Walk(e.dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(canary)) {
			found["canary"] = true
		}
		for _, f := range forbidden {
			if bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(f))) {
				t.Errorf("%s holds %q", filepath.Base(path), f)
			}
		}
		if bytes.Contains(b, digest) {
			t.Errorf("%s holds the plain SHA-256 digest of an e-mail", filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !found["canary"] {
		t.Fatal("the canary written with the audience was not found: the scan cannot see stored text")
	}
	e.open()
}

func sha256Bytes(s string) []byte {
	b := []byte(sha(s))
	out := make([]byte, 32)
	for i := range out {
		out[i] = fromHex(b[2*i])<<4 | fromHex(b[2*i+1])
	}
	return out
}

func TestAddRemoveMembers(t *testing.T) {
	e := newEnv(t)
	id := e.create("api", 0)
	ps := randomPseudonyms(3, 5000)
	ms := make([]Member, len(ps))
	for i, p := range ps {
		ms[i] = Member{P: p, Kind: IDUID}
	}
	n, err := e.m.AddMembers(id, ms)
	if err != nil || n != 5000 {
		t.Fatalf("AddMembers: %d %v", n, err)
	}
	if n, _ := e.m.AddMembers(id, ms[:10]); n != 0 {
		t.Errorf("re-add: %d new", n)
	}
	n, err = e.m.RemoveMembers(id, ps[:2500])
	if err != nil || n != 2500 {
		t.Fatalf("RemoveMembers: %d %v", n, err)
	}
	snap := e.m.Snapshot()
	for _, p := range ps[2500:] {
		if !snap.Contains(id, p) {
			t.Fatal("a remaining member is missing")
		}
	}
	if a, _ := e.m.Get(id); a.Size != 2500 {
		t.Errorf("size %d", a.Size)
	}
	if _, err := e.m.AddMembers("aud_none", ms[:1]); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing audience: %v", err)
	}
}

func TestCachedProfile(t *testing.T) {
	e := newEnv(t)
	u := e.p(IDUID, "shopper")
	rec := func(typ string) {
		if err := e.m.RecordEvent(Event{AdvertiserID: "adv_1", Type: typ, User: u, Time: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		e.m.InvalidateProfile("adv_1", u)
	}
	rec(EventProductView)
	for i := 0; i < 3; i++ {
		p, err := e.m.CachedProfile("adv_1", u)
		if err != nil || len(p.Events) != 1 {
			t.Fatalf("profile %+v %v", p, err)
		}
		e.m.profiles.c.Wait()
	}
	rec(EventAddToCart)
	p, err := e.m.CachedProfile("adv_1", u)
	if err != nil || len(p.Events) != 2 {
		t.Fatalf("after a new event the cache served %+v %v", p, err)
	}
	if p, _ := e.m.CachedProfile("adv_2", u); len(p.Events) != 0 {
		t.Error("another advertiser's profile leaked")
	}
}
