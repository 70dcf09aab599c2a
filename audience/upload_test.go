package audience

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestRowReader(t *testing.T) {
	tests := []struct {
		name, in string
		typ      IDType
		rows     []string // fields joined by "|"
		cols     string
		err      bool
	}{
		{"plain", "a\nb\r\n\n  c  \n", IDUID, []string{"a", "b", "c"}, "uid", false},
		{"no final newline", "a\nb", IDUID, []string{"a", "b"}, "uid", false},
		{"first field only", "a,b,c\n", IDUID, []string{"a"}, "uid", false},
		{"header", "email,phone\nx@y.z,010\n,011\n", 0, []string{"x@y.z|010", "|011"}, "email,phone", false},
		{"header wins over type", "uid\nabc\n", IDEmail, []string{"abc"}, "uid", false},
		{"header with extras", "First Name,EMAIL,zip\nA,a@b.c,123\n", 0, []string{"A|a@b.c|123"}, "first name,email,zip", false},
		{"quoted", "\"email\",\"fn\"\n\"a@b.c\",\"Doe, \"\"J\"\"\"\n", 0, []string{"a@b.c|Doe, \"J\""}, "email,fn", false},
		{"tabs", "email\tphone\na@b.c\t010\n", 0, []string{"a@b.c|010"}, "email,phone", false},
		{"semicolons", "email;phone\na@b.c;010\n", 0, []string{"a@b.c|010"}, "email,phone", false},
		{"bom", "\ufeffemail\na@b.c\n", 0, []string{"a@b.c"}, "email", false},
		{"unknown header, no type", "name,city\nA,B\n", 0, nil, "", true},
		{"no header, no type", "a@b.c\n", 0, nil, "", true},
		{"value not a header", "email\n", IDUID, nil, "email", false},
		{"data looks like names", "cookie-a\ncookie-b\n", IDUID, []string{"cookie-a", "cookie-b"}, "uid", false},
		{"unterminated quote", "uid\n\"abc\n", 0, []string{"abc"}, "uid", false},
		{"empty", "", IDUID, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := newRowReader(bufio.NewReader(strings.NewReader(tt.in)), tt.typ)
			var rows []string
			for {
				f, err := rr.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					if !tt.err {
						t.Fatalf("error %v", err)
					}
					return
				}
				parts := make([]string, len(f))
				for i := range f {
					parts[i] = string(f[i])
				}
				rows = append(rows, strings.Join(parts, "|"))
			}
			if tt.err {
				t.Fatal("want an error")
			}
			if strings.Join(rows, "\n") != strings.Join(tt.rows, "\n") {
				t.Errorf("rows %q, want %q", rows, tt.rows)
			}
			if got := strings.Join(rr.names, ","); got != tt.cols {
				t.Errorf("columns %q, want %q", got, tt.cols)
			}
		})
	}
}

type nopLogger struct{}

func (nopLogger) Infof(string, ...interface{})  {}
func (nopLogger) Errorf(string, ...interface{}) {}
func (nopLogger) Fatalf(format string, args ...interface{}) {
	panic("pebble fatal: " + format)
}

var (
	fuzzOnce sync.Once
	fuzzM    *Manager
	fuzzAud  string
)

// fuzzManager is one Manager over an in-memory Pebble for all fuzz inputs.
func fuzzManager(t testing.TB) (*Manager, string) {
	fuzzOnce.Do(func() {
		db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: nopLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		fuzzM, err = NewManager(db, Options{Secret: testSecret, Logger: quiet, ProfileCacheBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		a, err := fuzzM.Create(Audience{AdvertiserID: "adv_f", Name: "fuzz", Type: TypeList, TTLDays: 7})
		if err != nil {
			t.Fatal(err)
		}
		fuzzAud = a.ID
	})
	return fuzzM, fuzzAud
}

// FuzzUpload feeds arbitrary bodies to Upload: it must never panic, its
// counts must add up (valid + invalid == rows read), and every id it
// counted valid in a successful plain upload must then be a member.
func FuzzUpload(f *testing.F) {
	seeds := []string{
		"email\nalice@example.com\n",
		"Email,Phone,Mobile Device ID,First Name\nA@b.co,010-1234-5678,6d92078a-8246-4ba4-ae5b-76104861e7dc,A\n",
		"email_sha256\n" + sha("x@y.z") + "\n" + sha("x@y.z")[:63] + "\n",
		"uid\n\"quoted, comma\"\n\"\"\"\"\n,\n",
		"phone\n+82 (0)10 1234 5678\n0082-10-1234-5678\n(212) 555-0100\n++1\n",
		"\ufeffemail;phone\n a@b.c ; 010 \n",
		"maid\n6D92078A82464BA4AE5B76104861E7DC\n00000000-0000-0000-0000-000000000000\n",
		strings.Repeat("x", maxLineLen+1) + "\n",
		"cookie\r\n\r\n\r\nb\r\n",
		"email,email,email\na@b.c,a@b.c,A@B.C\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i%8), i%3 == 0)
	}
	f.Add(gz(f, "email\nalice@example.com\nbob@example.com\n"), uint8(0), false)
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0}, uint8(6), false)
	f.Fuzz(func(t *testing.T, data []byte, typ uint8, remove bool) {
		m, id := fuzzManager(t)
		opts := UploadOptions{Type: IDType(typ % 9), Remove: remove, DefaultCountry: "82", SizeHint: int64(len(data))}
		j, err := m.Upload(context.Background(), id, bytes.NewReader(data), opts)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "gzip") &&
				!strings.Contains(err.Error(), "flate") {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if j.ID != "" && j.State != JobFailed {
				t.Fatalf("failed upload in state %s", j.State)
			}
		} else if j.State != JobDone {
			t.Fatalf("state %s", j.State)
		}
		checkStats(t, j)
		if err != nil || remove || (len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
			return
		}
		// Re-read the body independently: every valid id is now a member.
		rr := newRowReader(bufio.NewReader(bytes.NewReader(data)), opts.Type)
		checked := 0
		for checked < 50 {
			fields, err := rr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				continue
			}
			for i, ct := range rr.cols {
				if ct == IDUnknown || i >= len(fields) {
					continue
				}
				p, kind, err := m.pz.RawKind(ct, fields[i], opts.DefaultCountry)
				if err != nil {
					continue
				}
				ok, err := m.ContainsPseudonym(id, p, kind)
				if err != nil || !ok || !m.Snapshot().Contains(id, p) {
					t.Fatalf("line %d column %d: valid id not a member (%v)", rr.line, i, err)
				}
				checked++
			}
		}
	})
}

func TestSorter(t *testing.T) {
	var s sorter
	for _, n := range []int{0, 1, 2, 1000, uploadBatch, 1<<16 + 5} {
		es := make([]entry, n)
		for i, p := range randomPseudonyms(uint64(n), n) {
			es[i].p = p
		}
		// Ties on the first 48 bits and exact duplicates.
		for i := 0; i+3 < n; i += 97 {
			copy(es[i+1].p[:6], es[i].p[:6])
			es[i+2].p = es[i].p
		}
		s.sort(es)
		for i := 1; i < n; i++ {
			if cmpEntry(es[i-1], es[i]) > 0 {
				t.Fatalf("n=%d: out of order at %d", n, i)
			}
		}
	}
}
