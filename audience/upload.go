package audience

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// MaxUploadRows bounds the rows of one upload job.
const MaxUploadRows = 50_000_000

// maxLineLen bounds one upload line.
const maxLineLen = 4096

// maxReasons is how many invalid-row reasons an upload report keeps.
const maxReasons = 10

// uploadBatch is how many members are written per Pebble batch.
const uploadBatch = 16384

// UploadStats reports one upload (or removal) job.
type UploadStats struct {
	Remove     bool       `json:"remove,omitempty"`
	RowsRead   int64      `json:"rows_read"`
	Valid      int64      `json:"valid"`
	Invalid    int64      `json:"invalid"`
	Duplicates int64      `json:"duplicates"`
	Applied    int64      `json:"applied"` // members added (or removed)
	Matched    int64      `json:"matched"` // ids that resolve to an id seen in the bid stream
	MatchRate  float64    `json:"match_rate"`
	Errors     []RowError `json:"errors,omitempty"`
	Columns    []string   `json:"columns,omitempty"`
	Failed     string     `json:"failed,omitempty"`
}

// RowError is one invalid row of an upload.
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
	// Progress, when set, is called after each batch with the rows read so far.
	Progress func(rows int64)
}

// Upload streams a member list (text/csv, plain or gzip) into audience id.
// Memory stays flat in the size of the file: rows are normalised,
// pseudonymised and written in batches. No raw identifier is kept.
func (m *Manager) Upload(ctx context.Context, id string, r io.Reader, opts UploadOptions) (UploadStats, error) {
	m.mu.Lock()
	a := m.auds[id]
	m.mu.Unlock()
	if a == nil {
		return UploadStats{}, ErrNotFound
	}
	if a.Type != TypeList {
		return UploadStats{}, &FieldError{"type", "members can only be uploaded to a list audience"}
	}
	mu := m.uploadLock(id)
	mu.Lock()
	defer mu.Unlock()

	st := UploadStats{Remove: opts.Remove}
	br := bufio.NewReaderSize(r, 64<<10)
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return st, &FieldError{"body", "bad gzip: " + err.Error()}
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	var expiry int64
	if a.TTLDays > 0 {
		expiry = m.now().Add(timeDays(a.TTLDays)).Unix()
	}
	var (
		cols    []IDType
		names   []string
		line    int64
		batch   = m.db.NewBatch()
		pending = make([]Pseudonym, 0, uploadBatch)
		inBatch = map[Pseudonym]struct{}{}
		buf     []byte
	)
	defer func() { batch.Close() }()
	flush := func(final bool) error {
		if batch.Count() > 0 {
			wo := pebble.NoSync
			if final {
				wo = pebble.Sync
			}
			if err := batch.Commit(wo); err != nil {
				return fmt.Errorf("upload %s: commit: %w", id, err)
			}
		} else if final {
			if err := m.db.LogData(nil, pebble.Sync); err != nil {
				return fmt.Errorf("upload %s: sync: %w", id, err)
			}
		}
		batch.Close()
		batch = m.db.NewBatch()
		m.mu.Lock()
		if m.auds[id] == nil {
			m.mu.Unlock()
			return ErrNotFound
		}
		if !opts.Remove {
			m.addMembersLocked(id, pending)
		}
		m.mu.Unlock()
		pending = pending[:0]
		clear(inBatch)
		if opts.Progress != nil {
			opts.Progress(st.RowsRead)
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			st.Failed = err.Error()
			m.recordUpload(id, st)
			return st, err
		}
		raw, err := readLine(br, &buf)
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			if errors.Is(err, errLongLine) {
				st.RowsRead++
				st.Invalid++
				st.addError(line, "", fmt.Sprintf("line longer than %d bytes", maxLineLen))
				continue
			}
			st.Failed = err.Error()
			m.recordUpload(id, st)
			return st, fmt.Errorf("upload %s: read line %d: %w", id, line, err)
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		if cols == nil {
			if hdr, hn, ok := parseHeader(raw); ok {
				cols, names = hdr, hn
				st.Columns = names
				continue
			}
			if opts.Type == IDUnknown {
				return st, &FieldError{"id_type", "no id_type given and the first row is not a header naming id columns"}
			}
			cols, names = []IDType{opts.Type}, []string{opts.Type.String()}
			st.Columns = names
		}
		st.RowsRead++
		if st.RowsRead > MaxUploadRows {
			st.Failed = fmt.Sprintf("more than %d rows (limit MaxUploadRows)", MaxUploadRows)
			m.recordUpload(id, st)
			return st, &FieldError{"body", st.Failed}
		}
		rowValid := false
		var rowErr string
		var rowCol string
		fields := splitCSV(raw, len(cols))
		for i, t := range cols {
			if i >= len(fields) {
				break
			}
			f := fields[i]
			if len(f) == 0 {
				continue
			}
			kind, val, nerr := Normalize(t, string(f), opts.DefaultCountry)
			if nerr != nil {
				if rowErr == "" {
					rowErr, rowCol = nerr.Error(), names[i]
				}
				continue
			}
			p := m.pz.Of(kind, val)
			rowValid = true
			if _, dup := inBatch[p]; dup {
				st.Duplicates++
				continue
			}
			key := memKey(id, p)
			if opts.Remove {
				if ok, _ := m.isMember(id, p); ok {
					_ = batch.Delete(key, nil)
					st.Applied++
				}
			} else {
				if m.snap.Load().Contains(id, p) {
					if ok, _ := m.isMember(id, p); ok {
						st.Duplicates++
						continue
					}
				}
				_ = batch.Set(key, memValue(expiry, kind), nil)
				pending = append(pending, p)
				st.Applied++
			}
			inBatch[p] = struct{}{}
			if m.visible(kind, p) {
				st.Matched++
			}
		}
		if rowValid {
			st.Valid++
		} else {
			st.Invalid++
			if rowErr == "" {
				rowErr = "no identifier in row"
			}
			st.addError(line, rowCol, rowErr)
		}
		if len(inBatch) >= uploadBatch {
			if err := flush(false); err != nil {
				st.Failed = err.Error()
				m.recordUpload(id, st)
				return st, err
			}
		}
	}
	if err := flush(true); err != nil {
		st.Failed = err.Error()
		m.recordUpload(id, st)
		return st, err
	}
	if st.Valid > 0 {
		st.MatchRate = float64(st.Matched) / float64(st.Valid)
	}
	if opts.Remove && st.Applied > 0 {
		// Bloom filters cannot delete: rebuild this audience from the store.
		if err := m.RebuildAudience(id); err != nil {
			return st, err
		}
	}
	m.recordUpload(id, st)
	return st, nil
}

// visible reports whether a member id can be seen in the bid stream: cookie
// ids and ad ids directly, e-mails and phones through an identity link.
func (m *Manager) visible(kind IDType, p Pseudonym) bool {
	switch kind {
	case IDUID, IDMAID, IDEID:
		return true
	}
	return m.hasLink(p)
}

func (st *UploadStats) addError(line int64, col, reason string) {
	if len(st.Errors) < maxReasons {
		st.Errors = append(st.Errors, RowError{Line: line, Column: col, Reason: reason})
	}
}

// recordUpload adds st to the audience's totals and recounts its size.
func (m *Manager) recordUpload(id string, st UploadStats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.auds[id]
	if a == nil {
		return
	}
	a.Uploads.Jobs++
	a.Uploads.RowsRead += st.RowsRead
	a.Uploads.Valid += st.Valid
	a.Uploads.Invalid += st.Invalid
	a.Uploads.Duplicates += st.Duplicates
	a.Uploads.Matched += st.Matched
	if st.Remove {
		a.Uploads.Removed += st.Applied
		a.Size -= st.Applied
		if a.Size < 0 {
			a.Size = 0
		}
	} else {
		a.Size += st.Applied
	}
	if a.Uploads.Valid > 0 {
		a.Uploads.MatchRate = float64(a.Uploads.Matched) / float64(a.Uploads.Valid)
	}
	a.LastUpload = &st
	a.UpdatedAt = m.now().UTC()
	if st.Failed != "" && st.Applied == 0 {
		// Nothing was applied: the audience keeps its previous status.
	}
	if err := m.putLocked(a); err != nil {
		m.log.Error("audience: save upload stats", "audience", id, "err", err)
	}
}

// RebuildAudience rebuilds one audience's filter from the store (after
// removals, expiry or erasure, which bloom filters cannot express).
func (m *Manager) RebuildAudience(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.auds[id]
	if a == nil {
		return ErrNotFound
	}
	set, n, err := m.buildSet(id, m.now().Unix())
	if err != nil {
		return fmt.Errorf("rebuild audience %s: %w", id, err)
	}
	a.Size = int64(n)
	next := m.cloneSnapshot(m.snap.Load())
	next.sets[id] = set
	m.snap.Store(next)
	return nil
}

var errLongLine = errors.New("line too long")

// readLine reads one line (without its end) into *buf. Lines longer than
// maxLineLen are skipped and reported with errLongLine.
func readLine(br *bufio.Reader, buf *[]byte) ([]byte, error) {
	*buf = (*buf)[:0]
	long := false
	for {
		chunk, err := br.ReadSlice('\n')
		if !long {
			if len(*buf)+len(chunk) > maxLineLen {
				long = true
				*buf = (*buf)[:0]
			} else {
				*buf = append(*buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && (len(*buf) > 0 || long) {
			err = nil
		} else if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		if long {
			return nil, errLongLine
		}
		return bytes.TrimRight(*buf, "\r\n"), nil
	}
}

// parseHeader recognises a header row naming one id type per column.
func parseHeader(row []byte) ([]IDType, []string, bool) {
	fields := splitCSV(row, 16)
	types := make([]IDType, 0, len(fields))
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		t, err := ParseIDType(string(f))
		if err != nil {
			return nil, nil, false
		}
		types = append(types, t)
		names = append(names, strings.ToLower(strings.TrimSpace(string(f))))
	}
	return types, names, len(types) > 0
}

// splitCSV splits a simple CSV row (ids never contain commas; surrounding
// quotes are removed) into at most max fields, reusing no memory of row.
func splitCSV(row []byte, max int) [][]byte {
	out := make([][]byte, 0, 4)
	for len(out) < max {
		i := bytes.IndexByte(row, ',')
		f := row
		if i >= 0 {
			f = row[:i]
		}
		f = bytes.TrimSpace(f)
		if len(f) >= 2 && f[0] == '"' && f[len(f)-1] == '"' {
			f = bytes.TrimSpace(f[1 : len(f)-1])
		}
		out = append(out, f)
		if i < 0 {
			break
		}
		row = row[i+1:]
	}
	return out
}
