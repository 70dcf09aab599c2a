package inflate

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	kflate "github.com/klauspost/compress/flate"
	kgzip "github.com/klauspost/compress/gzip"
)

// refInflate is the reference: compress/flate's reader on src, reading at
// most max bytes. n is the input it took. (Not klauspost's: its reader
// takes a stream cut inside a length's or distance's extra bits for a
// clean end. Inside a gzip body that cannot pass, as the trailer would be
// missing, so FuzzGunzip compares with klauspost's gzip reader, which
// the bidder used.)
func refInflate(src []byte, max int) (out []byte, n int, ok bool) {
	br := bytes.NewReader(src)
	zr := flate.NewReader(br)
	out, err := io.ReadAll(io.LimitReader(zr, int64(max)+1))
	if err != nil || len(out) > max {
		return nil, 0, false
	}
	return out, len(src) - br.Len(), true
}

// refGunzip is the reference: klauspost's gzip reader (multistream, as
// fasthttp uses it) on src, reading at most limit bytes.
func refGunzip(src []byte, limit int) ([]byte, bool) {
	zr, err := kgzip.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, false
	}
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil || len(out) > limit {
		return nil, false
	}
	return out, true
}

// checkInflate decodes src with a reused decoder, after a prefix in dst,
// and compares with the reference.
func checkInflate(t *testing.T, d *Decoder, src []byte, max int) {
	t.Helper()
	want, wantN, wantOK := refInflate(src, max)
	prefix := []byte("prefix")
	got, n, err := d.Inflate(append([]byte(nil), prefix...), src, len(prefix)+max)
	if (err == nil) != wantOK {
		t.Fatalf("%x (max %d): error %v, klauspost ok=%v", src, max, err, wantOK)
	}
	if !wantOK {
		return
	}
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("%x (max %d): inflated %q, want %q", src, max, got, want)
	}
	if n != wantN {
		t.Fatalf("%x (max %d): took %d input bytes, klauspost %d", src, max, n, wantN)
	}
}

func checkGunzip(t *testing.T, d *Decoder, src []byte, limit int) {
	t.Helper()
	want, wantOK := refGunzip(src, limit)
	got, err := d.Gunzip(nil, src, limit)
	if (err == nil) != wantOK {
		t.Fatalf("%d bytes (limit %d): error %v, klauspost ok=%v", len(src), limit, err, wantOK)
	}
	if wantOK && !bytes.Equal(got, want) {
		t.Fatalf("%d bytes (limit %d): inflated %d bytes, want %d", len(src), limit, len(got), len(want))
	}
}

// samples are inputs of the shapes deflate handles differently: empty,
// one byte, text, a long run, incompressible bytes, a JSON bid request.
func samples() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 3000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	skewed := make([]byte, 20000) // long codes: a few frequent bytes, many rare ones
	for i := range skewed {
		if rng.IntN(64) == 0 {
			skewed[i] = byte(rng.Uint32())
		} else {
			skewed[i] = "ab"[rng.IntN(2)]
		}
	}
	req := []byte(`{"id":"8f6c1c0e-3a7b-4b9e-9d55-2f0c6a1e7b42","imp":[{"id":"1","banner":{"w":300,"h":250,"format":[{"w":300,"h":250},{"w":320,"h":50}]},"bidfloor":0.35,"bidfloorcur":"USD","secure":1}],"site":{"id":"s1","domain":"news.example","page":"https://news.example/a/b?c=d","publisher":{"id":"p1"}},"device":{"ua":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36","ip":"203.0.113.7","devicetype":2,"geo":{"country":"DEU"}},"user":{"buyeruid":"member-cookie","eids":[{"source":"id5-sync.com","uids":[{"id":"ID5*abc","atype":1}]}]},"regs":{"gdpr":1},"tmax":100,"at":1,"cur":["USD"]}`)
	return [][]byte{nil, []byte("a"), []byte("hello, hello, hello world"), bytes.Repeat([]byte("ab"), 40000), random, skewed, req, bytes.Repeat(req, 20)}
}

// deflated compresses p at level, with a sync flush in the middle when
// flush is set (an empty stored block between two blocks).
func deflated(tb testing.TB, p []byte, level int, flush bool) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := kflate.NewWriter(&buf, level)
	if err != nil {
		tb.Fatal(err)
	}
	half := len(p) / 2
	if !flush {
		half = len(p)
	}
	w.Write(p[:half])
	if flush {
		w.Flush()
		w.Write(p[half:])
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(tb testing.TB, level int, parts ...[]byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	for _, p := range parts {
		w, err := kgzip.NewWriterLevel(&buf, level)
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(p)
		if err := w.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

// streams reads testdata/streams.txt.
func streams(tb testing.TB) [][]byte {
	f, err := os.Open("testdata/streams.txt")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

var levels = []int{kflate.HuffmanOnly, kflate.NoCompression, kflate.BestSpeed, 5, kflate.DefaultCompression, kflate.BestCompression}

func TestInflate(t *testing.T) {
	var d Decoder
	for _, p := range samples() {
		for _, level := range levels {
			for _, flush := range []bool{false, true} {
				src := deflated(t, p, level, flush)
				checkInflate(t, &d, src, 1<<20)
				checkInflate(t, &d, append(src, "trailing"...), 1<<20) // stops at the final block
				checkInflate(t, &d, src, len(p))                       // exactly the limit
				if len(p) > 0 {
					checkInflate(t, &d, src, len(p)-1) // one byte past it
				}
				for _, cut := range []int{1, len(src) / 2, len(src) - 1} {
					if cut > 0 && cut < len(src) {
						checkInflate(t, &d, src[:cut], 1<<20) // truncated
					}
				}
			}
		}
	}
}

func TestInflateStreams(t *testing.T) {
	var d Decoder
	for _, s := range streams(t) {
		checkInflate(t, &d, s, 1<<20)
		checkInflate(t, &d, s, 3)
	}
}

func TestInflateRefuses(t *testing.T) {
	var d Decoder
	cases := []struct {
		name string
		src  []byte
		want error
	}{
		{"nothing", nil, ErrCorrupt},
		{"reserved block type", []byte{0x07}, ErrCorrupt},
		{"stored length mismatch", []byte{0x01, 0x05, 0x00, 0x00, 0x00}, ErrCorrupt},
		{"stored block cut", []byte{0x01, 0x05, 0x00, 0xfa, 0xff, 'a'}, ErrCorrupt},
		{"fixed symbol 287", []byte{0x33, 0x18, 0x07, 0x00}, ErrCorrupt},
		{"distance before the start", []byte{0x03, 0x02, 0x00}, ErrCorrupt}, // fixed block: length 3, distance 1, nothing before
		{"limit", deflated(t, bytes.Repeat([]byte("x"), 1000), 6, false), ErrLimit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := d.Inflate(nil, c.src, 100); !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			checkInflate(t, &d, c.src, 100)
		})
	}
}

func TestGunzip(t *testing.T) {
	var d Decoder
	req := samples()[6]
	whole := gzipped(t, 6, bytes.Repeat(req, 50))
	withHeader := func(flags byte, extra ...byte) []byte {
		h := []byte{0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 0xff}
		h = append(h, extra...)
		body := gzipped(t, 6, req)
		return append(h, body[10:]...)
	}
	name := append([]byte("request.json"), 0)
	longName := append(bytes.Repeat([]byte("n"), 511), 0)
	tooLong := append(bytes.Repeat([]byte("n"), 512), 0)
	hdr := append([]byte{0x1f, 0x8b, 8, flagName | flagHdrCrc, 0, 0, 0, 0, 0, 0xff}, name...)
	crc := crc16(hdr)
	cases := []struct {
		name  string
		src   []byte
		limit int
	}{
		{"request", gzipped(t, 6, req), 1 << 20},
		{"every level", gzipped(t, 9, req), 1 << 20},
		{"stored", gzipped(t, 0, req), 1 << 20},
		{"empty member", gzipped(t, 6, nil), 1 << 20},
		{"two members are one body", gzipped(t, 6, req[:100], req[100:]), 1 << 20},
		{"empty then full member", gzipped(t, 6, nil, req), 1 << 20},
		{"large", whole, 1 << 20},
		{"exactly the limit", whole, 50 * len(req)},
		{"one byte past the limit", whole, 50*len(req) - 1},
		{"bomb", gzipped(t, 6, bytes.Repeat([]byte(" "), 8<<20)), 1 << 20},
		{"truncated", whole[:len(whole)/2], 1 << 20},
		{"trailer cut", whole[:len(whole)-4], 1 << 20},
		{"crc wrong", flip(whole, len(whole)-8), 1 << 20},
		{"size wrong", flip(whole, len(whole)-1), 1 << 20},
		{"not gzip", []byte("not gzip at all"), 1 << 20},
		{"nothing", nil, 1 << 20},
		{"garbage after a member", append(gzipped(t, 6, req), "xyz"...), 1 << 20},
		{"header cut in its name after a member", append(gzipped(t, 6, req), 0x1f, 0x8b, 8, flagName, 0, 0, 0, 0, 0, 0xff, 'a'), 1 << 20},
		{"header cut in its comment after a member", append(gzipped(t, 6, req), 0x1f, 0x8b, 8, flagComment|1<<5, 0, 0, 0, 0, 0, 0xff), 1 << 20},
		{"header cut in its extra field after a member", append(gzipped(t, 6, req), 0x1f, 0x8b, 8, flagExtra, 0, 0, 0, 0, 0, 0xff, 9, 0), 1 << 20},
		{"header cut in its name", append([]byte{0x1f, 0x8b, 8, flagName, 0, 0, 0, 0, 0, 0xff}, "abc"...), 1 << 20},
		{"ten bytes of garbage after a member", append(gzipped(t, 6, req), "0123456789"...), 1 << 20},
		{"size field lies", func() []byte { b := gzipped(t, 6, req); b[len(b)-4] = 0xff; b[len(b)-1] = 0x7f; return b }(), 1 << 20},
		{"extra field", withHeader(flagExtra, 3, 0, 'a', 'b', 'c'), 1 << 20},
		{"extra field cut", withHeader(flagExtra, 0xff, 0xff, 'a'), 1 << 20},
		{"name", withHeader(flagName, name...), 1 << 20},
		{"name of 511 bytes", withHeader(flagName, longName...), 1 << 20},
		{"name of 512 bytes", withHeader(flagName, tooLong...), 1 << 20},
		{"name and comment", withHeader(flagName|flagComment, append(name, name...)...), 1 << 20},
		{"header crc", withHeader(flagName|flagHdrCrc, append(name, byte(crc), byte(crc>>8))...), 1 << 20},
		{"header crc wrong", withHeader(flagName|flagHdrCrc, append(name, byte(crc)+1, byte(crc>>8))...), 1 << 20},
		{"reserved flag", withHeader(1 << 5), 1 << 20},
		{"text flag", withHeader(1), 1 << 20},
		{"method not deflate", func() []byte { b := gzipped(t, 6, req); b[2] = 7; return b }(), 1 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkGunzip(t, &d, c.src, c.limit)
			checkGunzip(t, &d, c.src, c.limit) // again, tables reused
		})
	}
}

// crc16 is the gzip header CRC of h (FHCRC): the low half of its CRC-32.
func crc16(h []byte) uint16 { return uint16(crc32.ChecksumIEEE(h)) }

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return c
}

// FuzzInflate: any input, as raw deflate, decodes as compress/flate
// decodes it: the same refusals, bytes and input length.
func FuzzInflate(f *testing.F) {
	for _, p := range samples()[:7] {
		for _, level := range levels {
			f.Add(deflated(f, p, level, level == kflate.BestSpeed), uint16(4096))
		}
	}
	for _, s := range streams(f) {
		f.Add(s, uint16(300))
	}
	var d Decoder
	f.Fuzz(func(t *testing.T, src []byte, max uint16) {
		checkInflate(t, &d, src, int(max))
	})
}

// FuzzGunzip: any input, as a gzip body, decodes as klauspost's gzip
// reader decodes it.
func FuzzGunzip(f *testing.F) {
	s := samples()
	f.Add(gzipped(f, 6, s[6]), uint16(4096))
	f.Add(gzipped(f, 1, s[2], s[1]), uint16(4096))
	f.Add(gzipped(f, 0, nil), uint16(10))
	f.Add([]byte("\x1f\x8b\x08\x1c\x00\x00\x00\x00\x00\xff\x02\x00ab\x00c\x00"), uint16(10))
	var d Decoder
	f.Fuzz(func(t *testing.T, src []byte, limit uint16) {
		checkGunzip(t, &d, src, int(limit))
	})
}
