package audience

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// MaxUploadRows bounds the rows of one upload job.
const MaxUploadRows = 50_000_000

// maxLineLen bounds one upload line.
const maxLineLen = 4096

// maxColumns bounds the columns of a header row.
const maxColumns = 64

// maxReasons is how many invalid-row reasons an upload report keeps.
const maxReasons = 10

// uploadBatch is how many ids are written per Pebble batch.
const uploadBatch = 32768

// progressEvery is the longest a job goes without publishing its progress
// (and committing what it has read) while rows keep coming.
const progressEvery = time.Second

// UploadStats reports one upload (or removal) job.
type UploadStats struct {
	Remove   bool  `json:"remove,omitempty"`
	RowsRead int64 `json:"rows_read"` // data rows (not the header, not blank lines)
	Valid    int64 `json:"valid"`     // rows with at least one valid id
	Invalid  int64 `json:"invalid"`   // rows with none; valid + invalid == rows_read
	IDs      int64 `json:"ids"`       // valid ids (a row may hold several)
	// Duplicates are ids repeated in the upload or, when adding, already
	// members (their expiry is refreshed).
	Duplicates int64 `json:"duplicates"`
	Applied    int64 `json:"applied"` // members added (or removed)
	// NotMembers are ids a removal named that were not members.
	NotMembers int64 `json:"not_members,omitempty"`
	// Suppressed are ids of erased people, never added again.
	Suppressed int64 `json:"suppressed,omitempty"`
	// Matched are ids that resolve to an id Chaser can see in the bid stream:
	// cookie and device ids themselves, e-mails and phones through an identity
	// link to one. MatchRate is matched over distinct ids looked at.
	Matched   int64      `json:"matched"`
	MatchRate float64    `json:"match_rate"`
	BytesRead int64      `json:"bytes_read"`
	Errors    []RowError `json:"errors,omitempty"` // the first few invalid rows
	Columns   []string   `json:"columns,omitempty"`
	Ignored   []string   `json:"ignored_columns,omitempty"`

	looked int64 // distinct ids looked at for matching
}

// RowError is one invalid row of an upload. It never holds the row's value.
type RowError struct {
	Line   int64  `json:"line"`
	Column string `json:"column,omitempty"`
	Reason string `json:"reason"`
}

// UploadOptions configure one upload.
type UploadOptions struct {
	// Type is the id type of a file without a header row.
	Type IDType
	// Remove removes the listed members instead of adding them.
	Remove bool
	// DefaultCountry is the calling code for national phone numbers.
	DefaultCountry string
	// SizeHint is the body's length in bytes when known (Content-Length),
	// used to size the filters once instead of growing them step by step.
	SizeHint int64
	// Progress, when set, is called after each batch with the rows read so far.
	Progress func(rows int64)
}

var (
	uploadRowsValid   = metrics.NewCounter(`chaser_audience_upload_rows_total{result="valid"}`)
	uploadRowsInvalid = metrics.NewCounter(`chaser_audience_upload_rows_total{result="invalid"}`)
	uploadIDsApplied  = metrics.NewCounter(`chaser_audience_upload_ids_applied_total`)
)

// ErrUploadTooLarge is returned when an upload passes MaxUploadRows.
var ErrUploadTooLarge = errors.New("audience: upload has too many rows")

// Upload streams a member list into list audience id as one job: text/csv,
// plain or gzip, either one id a line of type opts.Type or a header row
// naming one id type per column (other named columns are ignored). Rows are
// normalised, pseudonymised and written in Pebble batches, so memory stays
// flat in the size of the file, and no raw identifier is kept. Progress is
// visible through Get and Jobs while it runs. On a read error, a cancelled
// ctx (client gone) or a store error the job is recorded as failed with what
// it applied so far, and the error returned. Uploads into one audience run
// one at a time; the next waits (or gives up when ctx ends).
func (m *Manager) Upload(ctx context.Context, id string, r io.Reader, opts UploadOptions) (Job, error) {
	st := m.state(id)
	if st == nil {
		return Job{}, ErrNotFound
	}
	m.mu.Lock()
	typ := st.meta.Type
	m.mu.Unlock()
	if typ != TypeList {
		return Job{}, &FieldError{"type", "members can only be uploaded to a list audience"}
	}
	select {
	case st.slot <- struct{}{}:
	case <-ctx.Done():
		return Job{}, fmt.Errorf("upload %s: waiting for the running upload: %w", id, ctx.Err())
	}
	defer func() { <-st.slot }()
	u, err := m.startJob(st, opts)
	if err != nil {
		return Job{}, err
	}
	return u.run(ctx, r)
}

// entry is one id of an upload batch.
type entry struct {
	p      Pseudonym
	kind   IDType
	exists bool // a live member already
}

func cmpEntry(a, b entry) int { return bytes.Compare(a.p[:], b.p[:]) }

// sorter sorts batches of entries by pseudonym (the order of their keys):
// it sorts 64-bit words made of 48 bits of pseudonym and a 16-bit index,
// which is several times faster than sorting the entries with a comparison
// function, then fixes the order of the rare entries that tie on those 48
// bits with an insertion pass.
type sorter struct {
	keys []uint64
	tmp  []entry
}

func (s *sorter) sort(es []entry) {
	if len(es) > 1<<16 {
		slices.SortFunc(es, cmpEntry)
		return
	}
	keys := s.keys[:0]
	for i := range es {
		keys = append(keys, binary.BigEndian.Uint64(es[i].p[:8])&^0xffff|uint64(i))
	}
	slices.Sort(keys)
	tmp := append(s.tmp[:0], es...)
	for i, k := range keys {
		es[i] = tmp[k&0xffff]
	}
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && cmpEntry(es[j-1], es[j]) > 0; j-- {
			es[j-1], es[j] = es[j], es[j-1]
		}
	}
	s.keys, s.tmp = keys, tmp
}

// dedupe removes repeated pseudonyms from sorted es and returns how many.
func dedupe(es []entry) ([]entry, int64) {
	if len(es) < 2 {
		return es, 0
	}
	out := es[:1]
	for _, e := range es[1:] {
		if e.p != out[len(out)-1].p {
			out = append(out, e)
		}
	}
	return out, int64(len(es) - len(out))
}

// uploader runs one job.
type uploader struct {
	m      *Manager
	st     *audState
	opts   UploadOptions
	js     *jobState
	job    Job
	base   UploadTotals // the audience's totals before this job
	status string       // the audience's status before this job
	expiry int64
	body   *countingReader

	pending   []entry
	srt       sorter
	adds      []Pseudonym
	lastPub   time.Time
	sizeDelta int64 // members added (removed) by the batch being recorded
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// startJob records a running job (and the audience as building) and
// registers its progress.
func (m *Manager) startJob(st *audState, opts UploadOptions) (*uploader, error) {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if st.deleted.Load() {
		return nil, ErrNotFound
	}
	now := m.now().UTC()
	m.mu.Lock()
	meta := *st.meta
	m.mu.Unlock()
	u := &uploader{m: m, st: st, opts: opts, js: &jobState{}, base: meta.Uploads, status: meta.Status,
		lastPub: time.Now(), pending: make([]entry, 0, uploadBatch)}
	if u.status == StatusBuilding {
		u.status = StatusReady
	}
	if meta.TTLDays > 0 {
		u.expiry = now.Add(time.Duration(meta.TTLDays) * 24 * time.Hour).Unix()
	}
	u.job = Job{ID: newJobID(now), AudienceID: st.id, State: JobRunning, StartedAt: now, UpdatedAt: now}
	u.job.Remove = opts.Remove
	b := m.db.NewBatch()
	defer b.Close()
	if err := m.pruneJobs(b, st.id); err != nil {
		return nil, fmt.Errorf("upload %s: %w", st.id, err)
	}
	publish, err := u.record(b)
	if err != nil {
		return nil, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("upload %s: start job: %w", st.id, err)
	}
	publish()
	st.job.Store(u.js)
	jobsStarted.Inc()
	return u, nil
}

// record writes the job and the audience (with totals including this job)
// into b; publish makes them visible once b is committed.
func (u *uploader) record(b *pebble.Batch) (publish func(), err error) {
	j := &u.job
	j.UpdatedAt = u.m.now().UTC()
	if j.looked > 0 {
		j.MatchRate = float64(j.Matched) / float64(j.looked)
	}
	if err := putJob(b, j); err != nil {
		return nil, err
	}
	jc := j.clone()
	pubMeta, err := u.m.saveMeta(u.st, b, func(a *Audience) {
		t := u.base
		t.Jobs++
		t.RowsRead += j.RowsRead
		t.Valid += j.Valid
		t.Invalid += j.Invalid
		t.IDs += j.IDs
		t.Duplicates += j.Duplicates
		t.Matched += j.Matched
		if j.Remove {
			t.Removed += j.Applied
		} else {
			t.Added += j.Applied
		}
		if t.IDs > 0 {
			t.MatchRate = float64(t.Matched) / float64(t.IDs)
		}
		a.Uploads = t
		a.Upload = &jc
		a.Size = max(0, a.Size+u.sizeDelta)
		a.UpdatedAt = j.UpdatedAt
		switch j.State {
		case JobRunning:
			a.Status = StatusBuilding
		case JobDone:
			a.Status = StatusReady
		case JobFailed:
			a.Status = u.status
			if j.Applied > 0 {
				a.Status = StatusFailed
			}
		}
	})
	if err != nil {
		return nil, err
	}
	u.sizeDelta = 0
	return func() {
		pubMeta()
		u.js.publish(j)
	}, nil
}

func (u *uploader) run(ctx context.Context, r io.Reader) (Job, error) {
	u.body = &countingReader{r: r}
	br := bufio.NewReaderSize(u.body, 64<<10)
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return u.fail(&FieldError{"body", "bad gzip stream"})
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	rr := newRowReader(br, u.opts.Type)
	m := u.m
	j := &u.job
	var scratch [MaxIDLen]byte
	for {
		fields, err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var fe *FieldError
			switch {
			case errors.As(err, &fe):
				return u.fail(err)
			case errors.Is(err, errLongLine):
				j.RowsRead++
				j.Invalid++
				j.addError(rr.line, "", fmt.Sprintf("line longer than %d bytes", maxLineLen))
				continue
			}
			return u.fail(fmt.Errorf("read line %d: %w", rr.line+1, err))
		}
		if j.Columns == nil {
			j.Columns, j.Ignored = rr.names, rr.ignored
		}
		j.RowsRead++
		if j.RowsRead > MaxUploadRows {
			j.RowsRead--
			return u.fail(&FieldError{"body", fmt.Sprintf("more than %d rows: split the list into several uploads", MaxUploadRows)})
		}
		rowValid := false
		var rowErr error
		rowCol := ""
		for i, t := range rr.cols {
			if t == IDUnknown || i >= len(fields) || len(fields[i]) == 0 {
				continue
			}
			kind, payload, nerr := normalizeTo(scratch[:0], t, fields[i], u.opts.DefaultCountry)
			if nerr != nil {
				if rowErr == nil {
					rowErr, rowCol = nerr, rr.names[i]
				}
				continue
			}
			p := m.pz.ofPayload(kind, payload)
			rowValid = true
			j.IDs++
			if m.snap.Load().Erased(p) {
				j.Suppressed++
				continue
			}
			u.pending = append(u.pending, entry{p: p, kind: kind})
		}
		if rowValid {
			j.Valid++
		} else {
			j.Invalid++
			reason := "no identifier in row"
			if rowErr != nil {
				reason = rowErr.Error()
			}
			j.addError(rr.line, rowCol, reason)
		}
		if len(u.pending) >= uploadBatch || (j.RowsRead&1023 == 0 && time.Since(u.lastPub) >= progressEvery) {
			if err := ctx.Err(); err != nil {
				return u.fail(fmt.Errorf("interrupted: client disconnected (%w)", err))
			}
			if err := u.flush(); err != nil {
				return u.fail(err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return u.fail(fmt.Errorf("interrupted: client disconnected (%w)", err))
	}
	if j.Columns == nil {
		j.Columns, j.Ignored = rr.names, rr.ignored
	}
	if err := u.flush(); err != nil {
		return u.fail(err)
	}
	if u.opts.Remove && u.st.dirty.Load() {
		// Bloom filters cannot delete: rebuild this audience from the store.
		var expired int64
		if err := m.maintainOne(u.st, m.now().Unix(), "removed", &expired); err != nil {
			return u.fail(err)
		}
	}
	return u.finish(JobDone, nil)
}

func (j *UploadStats) addError(line int64, col, reason string) {
	if len(j.Errors) < maxReasons {
		j.Errors = append(j.Errors, RowError{Line: line, Column: col, Reason: reason})
	}
}

// flush writes the pending ids as one batch with the job's progress.
func (u *uploader) flush() error {
	m, st, j := u.m, u.st, &u.job
	j.BytesRead = u.body.n
	u.srt.sort(u.pending)
	es, dups := dedupe(u.pending)
	j.Duplicates += dups
	hook := func(b *pebble.Batch, r applyResult) (func(), error) {
		j.Applied += r.applied
		j.Duplicates += r.dups
		j.NotMembers += r.notMembers
		u.sizeDelta = r.applied
		if u.opts.Remove {
			u.sizeDelta = -r.applied
		}
		return u.record(b)
	}
	var r applyResult
	var err error
	if u.opts.Remove {
		r, err = m.applyRemove(st, es, hook)
	} else {
		r, err = m.applyAdd(st, es, u.expiry, u.expectMore(), &u.adds, hook)
	}
	u.pending = u.pending[:0]
	if err != nil {
		return fmt.Errorf("upload %s: %w", st.id, err)
	}
	j.Matched += r.matched
	j.looked += r.looked
	if j.looked > 0 {
		j.MatchRate = float64(j.Matched) / float64(j.looked)
	}
	u.js.publish(j)
	u.lastPub = time.Now()
	if u.opts.Progress != nil {
		u.opts.Progress(j.RowsRead)
	}
	return nil
}

// expectMore estimates the ids still to come, from the share of the body
// read so far (0 when the body's size is unknown).
func (u *uploader) expectMore() uint64 {
	read, total := u.body.n, u.opts.SizeHint
	if total <= read || read <= 0 {
		return 0
	}
	return uint64(float64(u.job.IDs) * float64(total-read) / float64(read))
}

// finish records the job's end. A job into an audience deleted meanwhile
// leaves no record.
func (u *uploader) finish(state string, cause error) (Job, error) {
	m, st, j := u.m, u.st, &u.job
	st.wmu.Lock()
	defer st.wmu.Unlock()
	now := m.now().UTC()
	j.State = state
	j.FinishedAt = &now
	if cause != nil {
		j.Error = cause.Error()
	}
	if state == JobDone {
		jobsDone.Inc()
	} else {
		jobsFailed.Inc()
	}
	uploadRowsValid.Add(int(j.Valid))
	uploadRowsInvalid.Add(int(j.Invalid))
	uploadIDsApplied.Add(int(j.Applied))
	if st.deleted.Load() {
		st.job.Store(nil)
		if cause == nil {
			cause = ErrNotFound
		}
		return j.clone(), cause
	}
	defer st.job.Store(nil)
	b := m.db.NewBatch()
	defer b.Close()
	publish, err := u.record(b)
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		m.log.Error("audience: record upload job", "audience", st.id, "job", j.ID, "err", err)
		if cause == nil {
			cause = fmt.Errorf("upload %s: record job: %w", st.id, err)
		}
		return j.clone(), cause
	}
	publish()
	st.job.Store(nil)
	if cause != nil {
		m.log.Warn("audience upload failed", "audience", st.id, "job", j.ID, "rows_read", j.RowsRead,
			"applied", j.Applied, "err", cause)
	} else {
		m.log.Info("audience upload done", "audience", st.id, "job", j.ID, "rows_read", j.RowsRead,
			"valid", j.Valid, "invalid", j.Invalid, "applied", j.Applied, "duplicates", j.Duplicates,
			"match_rate", j.MatchRate)
	}
	return j.clone(), cause
}

func (u *uploader) fail(err error) (Job, error) {
	return u.finish(JobFailed, err)
}

// applyResult counts what one batch did.
type applyResult struct {
	applied    int64 // added or removed
	dups       int64 // already members (adds)
	notMembers int64 // not members (removals)
	matched    int64
	looked     int64
	linked     int64 // linked ids added to the filters
}

// batchHook writes job and audience records into a batch of members.
type batchHook func(b *pebble.Batch, r applyResult) (publish func(), err error)

// applyAdd writes sorted, distinct entries as members of st with the given
// expiry (refreshing the expiry of those already members), commits them with
// what hook writes, then adds them and the ids linked to them to the filters,
// growing a filter first (from the store, which already holds the batch)
// when they would pass its capacity. expect is how many more ids the caller
// expects soon, to size a grown filter.
func (m *Manager) applyAdd(st *audState, es []entry, expiry int64, expect uint64, scratch *[]Pseudonym, hook batchHook) (applyResult, error) {
	var r applyResult
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if st.deleted.Load() {
		return r, ErrNotFound
	}
	now := m.now().Unix()
	snap := m.snap.Load()
	if len(snap.erased) > 0 {
		// Erase holds every audience's wmu while it publishes: re-check here.
		kept := es[:0]
		for _, e := range es {
			if !snap.Erased(e.p) {
				kept = append(kept, e)
			}
		}
		es = kept
	}
	if err := m.markExisting(st, es, now); err != nil {
		return r, err
	}
	// Sized once: a key is ~36 bytes, a value 9, plus the batch's framing;
	// the job and audience records need a few KB.
	b := m.db.NewBatchWithSize(len(es)*(len(st.id)+48) + 8<<10)
	defer b.Close()
	key := make([]byte, 0, 64)
	for i := range es {
		e := &es[i]
		key = appendMemKey(key[:0], st.id, e.p)
		if e.exists {
			r.dups++
			if expiry != 0 {
				_ = b.Set(key, memValue(expiry, e.kind), nil)
			}
			continue
		}
		_ = b.Set(key, memValue(expiry, e.kind), nil)
		r.applied++
	}
	publish := func() {}
	if hook != nil {
		var err error
		if publish, err = hook(b, r); err != nil {
			return r, err
		}
	} else if r.applied > 0 {
		var err error
		if publish, err = m.saveMeta(st, b, func(a *Audience) { a.Size += r.applied }); err != nil {
			return r, err
		}
	}
	if b.Count() > 0 {
		if err := b.Commit(pebble.NoSync); err != nil {
			return r, fmt.Errorf("commit: %w", err)
		}
	}
	publish()
	if expiry != 0 && es != nil {
		if ne := st.nextExpiry.Load(); ne == 0 || expiry < ne {
			st.nextExpiry.Store(expiry)
		}
	}
	// The new members enter the live filters now, before links are read:
	// OnLink, which the events code calls after committing a link, looks for
	// the e-mail in the filter first. So a link committed before the link
	// iterator below is opened is seen there, and one committed after finds
	// the member through OnLink. Passing a filter's capacity for a moment is
	// fine: it is grown (rebuilt from the store, which holds the batch) below.
	adds := (*scratch)[:0]
	for i := range es {
		if !es[i].exists {
			adds = append(adds, es[i].p)
		}
	}
	st.set.add(adds)
	snap.known.add(adds)
	members := len(adds)
	var lc linkCursor
	defer lc.close()
	for i := range es {
		e := &es[i]
		r.looked++
		if !e.kind.linkable() {
			r.matched++
			continue
		}
		n, err := lc.each(m.db, e.p, func(q Pseudonym) {
			if !e.exists && !snap.Erased(q) {
				adds = append(adds, q)
				r.linked++
			}
		})
		if err != nil {
			return r, fmt.Errorf("read identity links: %w", err)
		}
		if n > 0 {
			r.matched++
		}
	}
	*scratch = adds
	linked := adds[members:]
	st.set.add(linked)
	snap.known.add(linked)
	if r.linked > 0 {
		m.mu.Lock()
		st.meta.LinkedIDs += r.linked
		m.mu.Unlock()
	}
	if f := st.set.cur.Load(); f.full(0) {
		grown := f.added.Load()
		if _, err := m.rebuildSet(st, capacityFor(int64(max(2*grown, grown+expect))), now, false, "grow"); err != nil {
			return r, err
		}
	}
	if kf := snap.known.cur.Load(); kf.full(0) {
		grown := kf.added.Load()
		if err := m.rebuildKnown(capacityFor(int64(max(2*grown, grown+expect)))); err != nil {
			return r, err
		}
	}
	return r, nil
}

// markExisting sets exists on the sorted entries that are live members of
// st: only those its filter may hold are looked up, with one iterator
// seeking forward.
func (m *Manager) markExisting(st *audState, es []entry, now int64) error {
	var it *pebble.Iterator
	defer func() {
		if it != nil {
			it.Close()
		}
	}()
	key := make([]byte, 0, 64)
	for i := range es {
		e := &es[i]
		if !st.set.test(&e.p) {
			continue
		}
		if it == nil {
			pfx := memPrefix(st.id)
			var err error
			if it, err = m.db.NewIter(&pebble.IterOptions{LowerBound: pfx, UpperBound: store.PrefixEnd(pfx)}); err != nil {
				return err
			}
		}
		key = appendMemKey(key[:0], st.id, e.p)
		if it.SeekGE(key) && bytes.Equal(it.Key(), key) {
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			exp, _ := decodeMem(v)
			e.exists = live(exp, now)
		}
	}
	if it != nil {
		return it.Error()
	}
	return nil
}

// applyRemove deletes the sorted, distinct entries that are live members of
// st, with what hook writes, and marks the filter for a rebuild.
func (m *Manager) applyRemove(st *audState, es []entry, hook batchHook) (applyResult, error) {
	var r applyResult
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if st.deleted.Load() {
		return r, ErrNotFound
	}
	if err := m.markExisting(st, es, m.now().Unix()); err != nil {
		return r, err
	}
	b := m.db.NewBatch()
	defer b.Close()
	key := make([]byte, 0, 64)
	for i := range es {
		if !es[i].exists {
			r.notMembers++
			continue
		}
		_ = b.Delete(appendMemKey(key[:0], st.id, es[i].p), nil)
		r.applied++
	}
	publish := func() {}
	var err error
	if hook != nil {
		publish, err = hook(b, r)
	} else if r.applied > 0 {
		publish, err = m.saveMeta(st, b, func(a *Audience) { a.Size = max(0, a.Size-r.applied) })
	}
	if err != nil {
		return r, err
	}
	if b.Count() > 0 {
		if err := b.Commit(pebble.NoSync); err != nil {
			return r, fmt.Errorf("commit: %w", err)
		}
	}
	publish()
	if r.applied > 0 {
		st.dirty.Store(true)
		st.set.removed.Add(r.applied)
		m.snap.Load().known.removed.Add(r.applied)
	}
	return r, nil
}

// Member is one membership for AddMembers.
type Member struct {
	P    Pseudonym
	Kind IDType // the kind of id P was made from (uid, maid, email_sha256, …)
}

// AddMembers adds members to audience id (of any type) with the audience's
// TTL, in the store and the filters, and returns how many were new. Rule and
// lookalike builders use it; erased people are skipped.
func (m *Manager) AddMembers(id string, ms []Member) (int64, error) {
	st := m.state(id)
	if st == nil {
		return 0, ErrNotFound
	}
	m.mu.Lock()
	ttl := st.meta.TTLDays
	m.mu.Unlock()
	var expiry int64
	if ttl > 0 {
		expiry = m.now().Add(time.Duration(ttl) * 24 * time.Hour).Unix()
	}
	snap := m.snap.Load()
	var added int64
	var scratch []Pseudonym
	var srt sorter
	for len(ms) > 0 {
		n := min(len(ms), uploadBatch)
		es := make([]entry, 0, n)
		for _, mb := range ms[:n] {
			if !mb.P.IsZero() && !snap.Erased(mb.P) {
				es = append(es, entry{p: mb.P, kind: mb.Kind})
			}
		}
		ms = ms[n:]
		srt.sort(es)
		es, _ = dedupe(es)
		r, err := m.applyAdd(st, es, expiry, uint64(len(ms)), &scratch, nil)
		added += r.applied
		if err != nil {
			return added, fmt.Errorf("add members to %s: %w", id, err)
		}
	}
	return added, nil
}

// RemoveMembers removes members from audience id and rebuilds its filter;
// it returns how many were members.
func (m *Manager) RemoveMembers(id string, ps []Pseudonym) (int64, error) {
	st := m.state(id)
	if st == nil {
		return 0, ErrNotFound
	}
	es := make([]entry, 0, len(ps))
	for _, p := range ps {
		es = append(es, entry{p: p})
	}
	var srt sorter
	srt.sort(es)
	es, _ = dedupe(es)
	r, err := m.applyRemove(st, es, nil)
	if err != nil {
		return r.applied, fmt.Errorf("remove members from %s: %w", id, err)
	}
	if r.applied > 0 {
		var expired int64
		if err := m.maintainOne(st, m.now().Unix(), "removed", &expired); err != nil {
			return r.applied, err
		}
	}
	return r.applied, nil
}

var errLongLine = errors.New("line too long")

// rowReader reads the rows of an upload: lines, an optional header naming
// the columns, and CSV fields (quoted fields may hold the delimiter and
// doubled quotes; a field never spans lines).
type rowReader struct {
	br      *bufio.Reader
	line    int64 // line number of the row last returned
	buf     []byte
	unq     []byte
	fields  [][]byte
	delim   byte
	cols    []IDType // IDUnknown: an ignored column
	names   []string
	ignored []string
	defType IDType
}

func newRowReader(br *bufio.Reader, t IDType) *rowReader {
	return &rowReader{br: br, defType: t, delim: ','}
}

// next returns the fields of the next data row (valid until the next call),
// io.EOF at the end, errLongLine for a line over maxLineLen, or a
// *FieldError when the file has neither a header nor a default id type.
func (r *rowReader) next() ([][]byte, error) {
	for {
		raw, err := r.readLine()
		if err == io.EOF {
			return nil, io.EOF
		}
		r.line++
		if err != nil {
			return nil, err
		}
		raw = trimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		if r.cols == nil {
			if r.header(raw) {
				continue
			}
			if r.defType == IDUnknown {
				return nil, &FieldError{"id_type", "no id_type given and the first row is not a header naming id columns (email, email_sha256, phone, phone_sha256, maid, uid)"}
			}
			r.cols, r.names = []IDType{r.defType}, []string{r.defType.String()}
		}
		return r.split(raw, len(r.cols)), nil
	}
}

// readLine reads one line (without its end) into r.buf. Lines longer than
// maxLineLen are skipped and reported with errLongLine.
func (r *rowReader) readLine() ([]byte, error) {
	r.buf = r.buf[:0]
	long := false
	for {
		chunk, err := r.br.ReadSlice('\n')
		if !long {
			if len(r.buf)+len(chunk) > maxLineLen+2 {
				long = true
				r.buf = r.buf[:0]
			} else {
				r.buf = append(r.buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			if len(r.buf) == 0 && !long {
				return nil, io.EOF
			}
			err = nil
		}
		if err != nil {
			return nil, err
		}
		if long {
			return nil, errLongLine
		}
		return bytes.TrimRight(r.buf, "\r\n"), nil
	}
}

// header recognises a header row: every field a column name, at least one
// of them an id type. Other names (first_name, country, …) are ignored
// columns. The delimiter is the header's: comma, else tab, else semicolon.
func (r *rowReader) header(row []byte) bool {
	switch {
	case bytes.IndexByte(row, ',') >= 0:
	case bytes.IndexByte(row, '\t') >= 0:
		r.delim = '\t'
	case bytes.IndexByte(row, ';') >= 0:
		r.delim = ';'
	}
	fields := r.split(row, maxColumns+1)
	if len(fields) > maxColumns {
		r.delim = ','
		return false
	}
	cols := make([]IDType, 0, len(fields))
	names := make([]string, 0, len(fields))
	var ignored []string
	known := 0
	for _, f := range fields {
		if !columnName(f) {
			r.delim = ','
			return false
		}
		name := strings.ToLower(string(trimSpace(f)))
		t, err := ParseIDType(name)
		if err != nil {
			t = IDUnknown
			ignored = append(ignored, name)
		} else {
			known++
		}
		cols = append(cols, t)
		names = append(names, name)
	}
	if known == 0 {
		r.delim = ','
		return false
	}
	r.cols, r.names, r.ignored = cols, names, ignored
	return true
}

// columnName reports whether f looks like a column name, not a value.
func columnName(f []byte) bool {
	f = trimSpace(f)
	if len(f) == 0 || len(f) > 40 || !(f[0] >= 'a' && f[0] <= 'z' || f[0] >= 'A' && f[0] <= 'Z') {
		return false
	}
	for _, c := range f {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ' ' || c == '-') {
			return false
		}
	}
	return true
}

// split splits a row into at most max fields (the rest of the row is
// dropped), trimming spaces and removing quotes. Fields point into row or
// r.unq and are valid until the next call.
func (r *rowReader) split(row []byte, max int) [][]byte {
	out := r.fields[:0]
	if cap(r.unq) < len(row) {
		r.unq = make([]byte, 0, len(row))
	}
	unq := r.unq[:0]
	for len(out) < max {
		row = trimLeft(row)
		var f []byte
		if len(row) > 0 && row[0] == '"' {
			start := len(unq)
			i := 1
			for ; i < len(row); i++ {
				if row[i] == '"' {
					if i+1 < len(row) && row[i+1] == '"' {
						unq = append(unq, '"')
						i++
						continue
					}
					break
				}
				unq = append(unq, row[i])
			}
			f = unq[start:len(unq):len(unq)]
			row = row[min(i+1, len(row)):]
			if j := bytes.IndexByte(row, r.delim); j >= 0 {
				row = row[j:]
			} else {
				row = row[len(row):]
			}
		} else {
			j := bytes.IndexByte(row, r.delim)
			if j < 0 {
				j = len(row)
			}
			f, row = row[:j], row[j:]
		}
		out = append(out, trimSpace(f))
		if len(row) == 0 {
			break
		}
		row = row[1:] // the delimiter
	}
	r.fields = out
	return out
}

func trimLeft(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
