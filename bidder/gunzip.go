package bidder

import (
	"sync"

	"github.com/chaser-dsp/chaser/inflate"
)

// gunzipper inflates gzipped bid request bodies in one call (package
// inflate: no history window, each byte copied once). It is pooled with its
// decoding tables and output buffer, so a gzipped request allocates
// nothing once the pool is warm.
type gunzipper struct {
	dec inflate.Decoder
	buf []byte
}

// maxPooledGunzip bounds the output buffer a pooled gunzipper keeps, so one
// large body does not pin its memory.
const maxPooledGunzip = 64 << 10

var gunzippers = sync.Pool{New: func() any { return &gunzipper{buf: make([]byte, 0, 8<<10)} }}

// gunzip returns src inflated, refusing more than limit bytes of output (a
// gzip bomb) and anything that is not gzip (several gzip members in a row
// are one body, as klauspost's reader in fasthttp treats them). The result
// is valid until release.
func (g *gunzipper) gunzip(src []byte, limit int) ([]byte, error) {
	out, err := g.dec.Gunzip(g.buf[:0], src, limit)
	if cap(out) > cap(g.buf) {
		g.buf = out[:0]
	}
	return out, err
}

func (g *gunzipper) release() {
	if cap(g.buf) > maxPooledGunzip {
		g.buf = make([]byte, 0, 8<<10)
	}
	g.buf = g.buf[:0]
	gunzippers.Put(g)
}
