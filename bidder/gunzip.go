package bidder

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// gunzipper inflates gzipped bid request bodies. It is pooled with its
// reader and output buffer, so a gzipped request allocates nothing once the
// pool is warm. The compressed bytes are read through a bytes.Reader: the
// inflater has a fast path for it (fasthttp's own BodyGunzip hands it a
// reader type without one, which measured 2× slower per byte).
type gunzipper struct {
	src bytes.Reader
	zr  gzip.Reader
	buf []byte
}

// maxPooledGunzip bounds the output buffer a pooled gunzipper keeps, so one
// large body does not pin its memory.
const maxPooledGunzip = 64 << 10

var gunzippers = sync.Pool{New: func() any { return &gunzipper{buf: make([]byte, 0, 8<<10)} }}

var errInflateLimit = errors.New("gzip body inflates beyond the limit")

// gunzip returns src inflated, refusing more than limit bytes of output (a
// gzip bomb) and anything that is not gzip (several gzip members in a row
// are one body, as encoding and fasthttp treat them). The result is valid
// until release.
func (g *gunzipper) gunzip(src []byte, limit int) ([]byte, error) {
	g.src.Reset(src)
	if err := g.zr.Reset(&g.src); err != nil {
		return nil, err
	}
	out := g.buf[:0]
	for {
		if len(out) == cap(out) {
			if len(out) > limit {
				g.buf = out[:0]
				return nil, errInflateLimit
			}
			out = append(out, 0)[:len(out)]
		}
		n, err := g.zr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if len(out) > limit {
			g.buf = out[:0]
			return nil, errInflateLimit
		}
		if err == io.EOF {
			g.buf = out
			return out, nil
		}
		if err != nil {
			g.buf = out[:0]
			return nil, err
		}
	}
}

func (g *gunzipper) release() {
	if cap(g.buf) > maxPooledGunzip {
		g.buf = make([]byte, 0, 8<<10)
	}
	g.buf = g.buf[:0]
	g.src.Reset(nil)
	gunzippers.Put(g)
}
