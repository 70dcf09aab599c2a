package bidder

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp"
)

func gzipBytes(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range parts { // one gzip member each
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// refGunzip is the reference: fasthttp's BodyGunzipWithLimit, what the bid
// handler used before the pooled inflater (same klauspost inflater, a
// slower reader path).
func refGunzip(src []byte, limit int) ([]byte, bool) {
	var req fasthttp.Request
	req.SetBody(src)
	out, err := req.BodyGunzipWithLimit(limit)
	return out, err == nil
}

func checkGunzip(t *testing.T, src []byte, limit int) {
	t.Helper()
	want, wantOK := refGunzip(src, limit)
	g := gunzippers.Get().(*gunzipper)
	defer g.release()
	got, err := g.gunzip(src, limit)
	if (err == nil) != wantOK {
		t.Fatalf("%d bytes, limit %d: error %v, fasthttp ok=%v", len(src), limit, err, wantOK)
	}
	if wantOK && !bytes.Equal(got, want) {
		t.Fatalf("%d bytes, limit %d: inflated %d bytes, want %d", len(src), limit, len(got), len(want))
	}
}

func TestGunzip(t *testing.T) {
	big := bytes.Repeat([]byte(`{"id":"x","imp":[{"id":"1"}]} `), 5000) // 150 KB, past the pooled buffer
	whole := gzipBytes(t, big)
	cases := []struct {
		name  string
		src   []byte
		limit int
	}{
		{"small", gzipBytes(t, []byte(`{"id":"x"}`)), 1 << 20},
		{"empty member", gzipBytes(t, nil), 1 << 20},
		{"two members are one body", gzipBytes(t, []byte(`{"id":`), []byte(`"x"}`)), 1 << 20},
		{"large", whole, 1 << 20},
		{"exactly the limit", whole, len(big)},
		{"one byte past the limit", whole, len(big) - 1},
		{"bomb", gzipBytes(t, bytes.Repeat([]byte(" "), 8<<20)), 1 << 20},
		{"truncated", whole[:len(whole)/2], 1 << 20},
		{"trailer cut", whole[:len(whole)-4], 1 << 20},
		{"not gzip", []byte("not gzip at all"), 1 << 20},
		{"nothing", nil, 1 << 20},
		{"garbage after a member", append(gzipBytes(t, []byte("{}")), "xyz"...), 1 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkGunzip(t, c.src, c.limit)
			checkGunzip(t, c.src, c.limit) // again, from the pool
		})
	}
}

// FuzzGunzip: the pooled inflater accepts and returns exactly what
// fasthttp's BodyGunzipWithLimit does, under the same limit.
func FuzzGunzip(f *testing.F) {
	f.Add(gzipBytes(f, []byte(`{"id":"x","imp":[{"id":"1"}]}`)), 64)
	f.Add(gzipBytes(f, []byte("a"), []byte("b")), 1)
	f.Add([]byte("\x1f\x8b\x08\x00"), 10)
	f.Fuzz(func(t *testing.T, src []byte, limit int) {
		if limit < 1 || limit > 1<<20 { // fasthttp reads 0 as "no limit"; the bidder always has one
			return
		}
		checkGunzip(t, src, limit)
	})
}

// BenchmarkGunzip: a gzipped typical request, through the pooled inflater
// and through fasthttp's BodyGunzipWithLimit (what the handler used before).
func BenchmarkGunzip(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "requests", "typical_2k.json"))
	if err != nil {
		b.Fatal(err)
	}
	src := gzipBytes(b, body)
	b.Run("pooled", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			g := gunzippers.Get().(*gunzipper)
			if _, err := g.gunzip(src, MaxBodyBytes); err != nil {
				b.Fatal(err)
			}
			g.release()
		}
	})
	b.Run("fasthttp", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		var req fasthttp.Request
		req.SetBody(src)
		for b.Loop() {
			if _, err := req.BodyGunzipWithLimit(MaxBodyBytes); err != nil {
				b.Fatal(err)
			}
		}
	})
}
