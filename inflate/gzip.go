package inflate

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
)

// gzip header flags (RFC 1952 2.3.1).
const (
	flagHdrCrc  = 1 << 1
	flagExtra   = 1 << 2
	flagName    = 1 << 3
	flagComment = 1 << 4
)

// maxHeaderString is the longest FNAME or FCOMMENT, its NUL included, that
// klauspost's (and compress/gzip's) reader accepts.
const maxHeaderString = 512

// Gunzip appends to dst the data of the gzip body src, refusing more than
// limit bytes of output. Several members in a row are one body; after the
// last one only the end of src may follow (or, as klauspost's reader
// allows, the start of a header cut inside its name or comment). It checks what klauspost's
// gzip.Reader checks (magic, method, reserved flags, the header CRC when
// present, each member's CRC-32 and size) and accepts exactly what it
// accepts.
func (d *Decoder) Gunzip(dst, src []byte, limit int) ([]byte, error) {
	out := dst
	max := len(dst) + limit
	if len(src) >= 18 {
		// A single-member body's inflated size is its last 4 bytes: grow
		// once (a lie costs at most limit bytes, as inflating would).
		if size := int(binary.LittleEndian.Uint32(src[len(src)-4:])); size <= limit && cap(out)-len(out) < size+8 {
			out = slices.Grow(out, size+8)
		}
	}
	for first := true; ; first = false {
		if len(src) == 0 && !first {
			return out, nil
		}
		h, err := headerLen(src)
		if err == errStringCut && !first {
			// klauspost's reader (and compress/gzip's) ends the body
			// cleanly here: its string reader passes the end of input on
			// as io.EOF. Accepted alike; nothing of it is data.
			return out, nil
		}
		if err != nil {
			return out, err
		}
		member := len(out)
		var n int
		if out, n, err = d.Inflate(out, src[h:], max); err != nil {
			return out, err
		}
		t := src[h+n:]
		if len(t) < 8 {
			return out, ErrTruncated
		}
		if binary.LittleEndian.Uint32(t) != crc32.ChecksumIEEE(out[member:]) ||
			binary.LittleEndian.Uint32(t[4:]) != uint32(len(out)-member) {
			return out, ErrChecksum
		}
		src = t[8:]
	}
}

// errStringCut: the input ends inside the header's FNAME or FCOMMENT.
var errStringCut = errors.New("inflate: gzip header cut in its name or comment")

// headerLen validates the gzip member header at the start of src and
// returns its length.
func headerLen(src []byte) (int, error) {
	if len(src) < 10 || src[0] != 0x1f || src[1] != 0x8b || src[2] != 8 {
		return 0, ErrHeader
	}
	flg := src[3]
	p := 10
	if flg&flagExtra != 0 {
		if p+2 > len(src) {
			return 0, ErrHeader
		}
		p += 2 + int(binary.LittleEndian.Uint16(src[p:]))
		if p > len(src) {
			return 0, ErrHeader
		}
	}
	for _, f := range [...]byte{flagName, flagComment} {
		if flg&f == 0 {
			continue
		}
		s := src[p:min(len(src), p+maxHeaderString)]
		i := slices.Index(s, 0)
		if i < 0 {
			if len(s) < maxHeaderString {
				return 0, errStringCut
			}
			return 0, ErrHeader
		}
		p += i + 1
	}
	if flg&flagHdrCrc != 0 {
		if p+2 > len(src) || binary.LittleEndian.Uint16(src[p:]) != uint16(crc32.ChecksumIEEE(src[:p])) {
			return 0, ErrHeader
		}
		p += 2
	}
	if flg>>5 != 0 {
		return 0, ErrHeader
	}
	return p, nil
}
