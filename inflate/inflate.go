package inflate

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// Errors. Every refusal is one of these; callers need not tell them apart.
var (
	ErrCorrupt   = errors.New("inflate: corrupt or truncated deflate data")
	ErrLimit     = errors.New("inflate: output beyond the limit")
	ErrHeader    = errors.New("inflate: invalid or truncated gzip header")
	ErrChecksum  = errors.New("inflate: gzip checksum or size mismatch")
	ErrTruncated = errors.New("inflate: gzip data truncated")
)

const (
	maxNumLit  = 286 // literal/length symbols a dynamic block may define
	maxNumDist = 30  // distance symbols a dynamic block may define
	numCodes   = 19  // code-length code symbols
	maxCodeLen = 15

	litBits  = 10 // main table index bits, literal/length code
	distBits = 8  // main table index bits, distance code
	clenBits = 7  // the code-length code is at most 7 bits: no subtables

	// Room for the main table and, for codes longer than its bits, one
	// subtable of 1<<(maxLen-bits) entries per main-table prefix that
	// leads to long codes: at most one prefix per long code.
	litSize  = 1<<litBits + maxNumLit<<(maxCodeLen-litBits)
	distSize = 1<<distBits + maxNumDist<<(maxCodeLen-distBits)
)

// A table entry is sym<<16 | n, n the code's length in bits (taken as
// e&63, which the compiler turns into a bare shift count), or, in a main
// table, off<<16 | entrySub | subBits<<8 pointing at a subtable indexed by
// the subBits stream bits after the main table's. An entry without a code
// is noCode: a symbol no table has, of length 0, which decoding refuses
// (and, being no literal, off the literals' fast path).
const (
	entrySub = 1 << 7
	noCode   = 0xffff << 16
)

// Decoder inflates. The zero value is ready to use; a Decoder is not safe
// for concurrent use. It holds about 58 KB of tables: reuse it (pool it).
type Decoder struct {
	lit  [litSize]uint32
	dist [distSize]uint32
	clen [1 << clenBits]uint32
	lens [maxNumLit + maxNumDist]uint8
}

// Fixed Huffman tables (RFC 1951 3.2.6): 288 literal/length codes and 32
// distance codes, the last two of each invalid when met.
// They have the dynamic tables' types (block takes either), unused room
// included.
var fixedLit, fixedDist = func() (lt *[litSize]uint32, dt *[distSize]uint32) {
	lt, dt = new([litSize]uint32), new([distSize]uint32)
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	var d [32]uint8
	for i := range d {
		d[i] = 5
	}
	if !build(lt[:], l[:], litBits) || !build(dt[:], d[:], distBits) {
		panic("inflate: fixed tables")
	}
	return
}()

// Length and distance bases and extra bits (RFC 1951 3.2.5), by symbol
// minus 257 and by distance symbol.
var (
	lenBase = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
		35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
		3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
		257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
		7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// codeOrder is the order of the code-length code's lengths in a dynamic
// block header.
var codeOrder = [numCodes]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// build fills t (a main table of 1<<b entries, then subtables) for the
// canonical Huffman code with code lengths lens. It reports false for an
// over-subscribed or incomplete code, except the two that zlib and
// klauspost accept: no code at all and a single code of one bit. Their
// unused entries are noCode, which decoding refuses when it meets them.
//
// Codes of up to b bits are written once each, length by length, into the
// first 1<<len entries, which are doubled before the next length (a code
// of l bits owns every entry whose low l bits are its reversed bits): one
// store per code and a few copies, instead of a loop of 1<<(b-l) stores
// per code, whose varying trip counts cost a mispredicted branch each.
func build(t []uint32, lens []uint8, b uint) bool {
	var count [maxCodeLen + 1]uint16
	for _, l := range lens {
		count[l&maxCodeLen]++
	}
	count[0] = 0
	maxLen := uint(maxCodeLen)
	for maxLen > 0 && count[maxLen] == 0 {
		maxLen--
	}
	main := t[:1<<b]
	if maxLen == 0 {
		fill(main, noCode)
		return true
	}
	// Canonical first codes, completeness, and each length's place in the
	// symbols sorted by length.
	var next [maxCodeLen + 1]uint32
	var offs [maxCodeLen + 2]uint16
	code := uint32(0)
	for l := uint(1); l <= maxLen; l++ {
		code <<= 1
		next[l] = code
		code += uint32(count[l])
		offs[l+1] = offs[l] + count[l]
	}
	if code != 1<<maxLen {
		if code != 1 || maxLen != 1 {
			return false
		}
		fill(main, noCode) // the single one-bit code leaves half the table empty
	}
	var sorted [maxNumLit + 2]uint16 // symbols by code length, then value
	for s, l := range lens {
		if l != 0 {
			sorted[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	// offs[l] is now the end of length l's symbols, offs[l-1] its start.
	i := 0
	size := uint32(1)
	for l := uint(1); l <= min(maxLen, b); l++ {
		copy(main[size:2*size], main[:size])
		size *= 2
		c := next[l]
		for ; i < int(offs[l]); i++ {
			main[bits.Reverse16(uint16(c))>>(16-l)] = uint32(sorted[i])<<16 | uint32(l)
			c++
		}
	}
	for ; size < 1<<b; size *= 2 {
		copy(main[size:2*size], main[:size])
	}
	if maxLen <= b {
		return true
	}
	// Long codes start at canonical prefix link; every prefix from there
	// to the end of the main table gets a subtable of 1<<subBits entries.
	subBits := uint32(maxLen - b)
	link := next[b+1] >> 1
	if int(1<<b+(1<<b-link)<<subBits) > len(t) {
		return false // cannot happen for a complete code of len(lens) symbols
	}
	for j := link; j < 1<<b; j++ {
		off := 1<<b + (j-link)<<subBits
		main[bits.Reverse16(uint16(j))>>(16-b)] = off<<16 | entrySub | subBits<<8
	}
	for l := b + 1; l <= maxLen; l++ {
		c := next[l]
		low := l - b
		for ; i < int(offs[l]); i++ {
			e := uint32(sorted[i])<<16 | uint32(l)
			off := 1<<b + (c>>low-link)<<subBits
			sub := t[off : off+1<<subBits]
			for k := uint32(bits.Reverse16(uint16(c&(1<<low-1))) >> (16 - low)); k < 1<<subBits; k += 1 << low {
				sub[k] = e
			}
			c++
		}
	}
	return true
}

func fill(t []uint32, v uint32) {
	for i := range t {
		t[i] = v
	}
}

// bitReader reads a deflate stream's bits, least significant first, 8 bytes
// at a time. Past the end of the input it reads zeros, counting them; a
// stream that used them is truncated (checked by the callers), and reading
// more than 8 of them fails at once, so a decoding loop always ends.
type bitReader struct {
	in  []byte
	pos int    // next input byte to load
	bb  uint64 // bits loaded, not yet consumed, low first; above nb: zeros or the next input bits
	nb  uint   // number of valid bits in bb
}

// refill makes nb at least 56.
func (r *bitReader) refill() error {
	if r.pos+8 <= len(r.in) {
		r.bb |= binary.LittleEndian.Uint64(r.in[r.pos:]) << (r.nb & 63)
		r.pos += int((63 - r.nb) >> 3)
		r.nb |= 56
		return nil
	}
	for r.nb < 56 {
		if r.pos < len(r.in) {
			r.bb |= uint64(r.in[r.pos]) << r.nb
		} else if r.pos-len(r.in) >= 8 {
			return ErrCorrupt
		}
		r.pos++
		r.nb += 8
	}
	return nil
}

// overrun reports whether more bits were consumed than the input holds.
func (r *bitReader) overrun() bool {
	return r.pos*8-int(r.nb) > len(r.in)*8
}

// alignedPos drops the bits up to the next byte boundary and returns the
// index of the next unread input byte, emptying the bit buffer.
func (r *bitReader) alignedPos() (int, error) {
	r.nb &^= 7
	p := r.pos - int(r.nb>>3)
	r.bb, r.nb, r.pos = 0, 0, p
	if p > len(r.in) {
		return p, ErrCorrupt
	}
	return p, nil
}

func (r *bitReader) take(n uint) uint32 {
	v := uint32(r.bb & (1<<n - 1))
	r.bb >>= n
	r.nb -= n
	return v
}

// Inflate appends to dst the decoded raw deflate stream at the start of
// src, refusing to let dst grow beyond max bytes in all. It returns the
// grown slice and the number of input bytes the stream took (its last
// byte's unused bits included).
func (d *Decoder) Inflate(dst, src []byte, max int) (out []byte, n int, err error) {
	r := bitReader{in: src}
	out = dst
	start := len(dst)
	for {
		if err := r.refill(); err != nil {
			return out, 0, err
		}
		final := r.take(1) == 1
		switch r.take(2) {
		case 0:
			p, err := r.alignedPos()
			if err != nil || p+4 > len(src) {
				return out, 0, ErrCorrupt
			}
			length := int(binary.LittleEndian.Uint16(src[p:]))
			if uint16(length) != ^binary.LittleEndian.Uint16(src[p+2:]) || p+4+length > len(src) {
				return out, 0, ErrCorrupt
			}
			if len(out)+length > max {
				return out, 0, ErrLimit
			}
			out = append(out, src[p+4:p+4+length]...)
			r.pos = p + 4 + length
		case 1:
			out, err = d.block(&r, out, start, max, fixedLit, fixedDist)
		case 2:
			if err = d.header(&r); err == nil {
				out, err = d.block(&r, out, start, max, &d.lit, &d.dist)
			}
		default:
			err = ErrCorrupt
		}
		if err != nil {
			return out, 0, err
		}
		if r.overrun() {
			return out, 0, ErrCorrupt
		}
		if final {
			p, _ := r.alignedPos()
			return out, p, nil
		}
	}
}

// header reads a dynamic block's code lengths and builds its tables.
func (d *Decoder) header(r *bitReader) error {
	if err := r.refill(); err != nil {
		return err
	}
	nlit := int(r.take(5)) + 257
	ndist := int(r.take(5)) + 1
	nclen := int(r.take(4)) + 4
	if nlit > maxNumLit || ndist > maxNumDist {
		return ErrCorrupt
	}
	var cl [numCodes]uint8
	for i := range nclen {
		if r.nb < 3 {
			if err := r.refill(); err != nil {
				return err
			}
		}
		cl[codeOrder[i]] = uint8(r.take(3))
	}
	if !build(d.clen[:], cl[:], clenBits) {
		return ErrCorrupt
	}
	lens := d.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		if r.nb < 7+7 {
			if err := r.refill(); err != nil {
				return err
			}
		}
		e := d.clen[r.bb&(1<<clenBits-1)]
		n := uint(e & 63)
		if n == 0 {
			return ErrCorrupt
		}
		r.bb >>= n
		r.nb -= n
		sym := uint8(e >> 16)
		if sym < 16 {
			lens[i] = sym
			i++
			continue
		}
		var rep int
		var v uint8
		switch sym {
		case 16:
			if i == 0 {
				return ErrCorrupt
			}
			rep, v = 3+int(r.take(2)), lens[i-1]
		case 17:
			rep = 3 + int(r.take(3))
		default:
			rep = 11 + int(r.take(7))
		}
		if i+rep > len(lens) {
			return ErrCorrupt
		}
		for end := i + rep; i < end; i++ {
			lens[i] = v
		}
	}
	if r.overrun() {
		return ErrCorrupt
	}
	if !build(d.lit[:], lens[:nlit], litBits) || !build(d.dist[:], lens[nlit:], distBits) {
		return ErrCorrupt
	}
	return nil
}

// block decodes one Huffman-coded block into out; start is where this
// stream's output began (no distance reaches before it).
//
// The bit buffer lives in locals (registers), written back on the way out,
// and the output is written by index into out's capacity (op), grown only
// when full. At the top of the loop the buffer holds at least 56 bits and
// e is the table entry they start with: a symbol with its extra bits and
// distance takes at most 15+5+15+13 = 48 of them. Literals, most symbols,
// have an inner loop of their own; in it the next entry is looked up from
// the bits left (at least 41) before the buffer is refilled, so the two
// run side by side instead of one after the other.
func (d *Decoder) block(r *bitReader, out []byte, start, max int, lt *[litSize]uint32, dt *[distSize]uint32) ([]byte, error) {
	if err := r.refill(); err != nil {
		return out, err
	}
	in, pos, bb, nb := r.in, r.pos, r.bb, r.nb
	buf, op := out[:cap(out)], len(out)
	lim := min(len(buf), max)
	e := lookup(lt[:], bb, litBits)
	for {
		pos, bb, nb, e, op = literals(lt, in, pos, bb, nb, e, buf[:lim], op)
		n := uint(e & 63)
		if n == 0 {
			return buf[:op], ErrCorrupt
		}
		bb >>= n
		nb -= n
		if e < 256<<16 { // a literal, off the fast path
			if op >= lim {
				if op >= max {
					return buf[:op], ErrLimit
				}
				buf = grow(buf, op, 1)
				lim = min(len(buf), max)
			}
			buf[op] = byte(e >> 16)
			op++
		} else {
			sym := e>>16 - 257
			if sym >= 29 {
				if e>>16 == 256 { // end of block
					r.pos, r.bb, r.nb = pos, bb, nb
					return buf[:op], nil
				}
				return buf[:op], ErrCorrupt // 286 and 287, fixed code only
			}
			x := uint(lenExtra[sym])
			length := int(lenBase[sym]) + int(uint32(bb)&(1<<x-1))
			bb >>= x
			nb -= x

			e = lookup(dt[:], bb, distBits)
			n = uint(e & 63)
			if n == 0 {
				return buf[:op], ErrCorrupt
			}
			bb >>= n
			nb -= n
			ds := e >> 16
			if ds >= 30 {
				return buf[:op], ErrCorrupt // 30 and 31, fixed code only
			}
			x = uint(distExtra[ds])
			dist := int(distBase[ds]) + int(uint32(bb)&(1<<x-1))
			bb >>= x
			nb -= x

			if dist > op-start {
				return buf[:op], ErrCorrupt
			}
			if op+length > lim {
				if op+length > max {
					return buf[:op], ErrLimit
				}
				buf = grow(buf, op, length)
				lim = min(len(buf), max)
			}
			copyMatch(buf, op, dist, length)
			op += length
		}
		// As few as 8 bits may be left: refill, then look up.
		if pos+8 <= len(in) {
			bb |= binary.LittleEndian.Uint64(in[pos:]) << (nb & 63)
			pos += int((63 - nb) >> 3)
			nb |= 56
		} else {
			r.pos, r.bb, r.nb = pos, bb, nb
			if err := r.refill(); err != nil {
				return buf[:op], err
			}
			pos, bb, nb = r.pos, r.bb, r.nb
		}
		e = lookup(lt[:], bb, litBits)
	}
}

// literals is block's fast path: while e is a literal, there is room in buf
// (its length: the room up to the limit) and 8 input bytes are left, it
// writes the literal at op, looks up the next entry and refills. Its own
// function, so that its few variables stay in registers.
func literals(lt *[litSize]uint32, in []byte, pos int, bb uint64, nb uint, e uint32, buf []byte, op int) (int, uint64, uint, uint32, int) {
	for e < 256<<16 && op+1 < len(buf) && pos+8 <= len(in) {
		// Up to two literals a refill: 56 bits hold two codes and the
		// lookup after them.
		for range 2 {
			bb >>= e & 63
			nb -= uint(e & 63)
			buf[op] = byte(e >> 16)
			op++
			e = lt[bb&(1<<litBits-1)]
			if e&entrySub != 0 {
				e = lt[e>>16+uint32(bb>>litBits)&(1<<(e>>8&15)-1)]
			}
			if e >= 256<<16 {
				break
			}
		}
		bb |= binary.LittleEndian.Uint64(in[pos:]) << (nb & 63)
		pos += int((63 - nb) >> 3)
		nb |= 56
	}
	return pos, bb, nb, e, op
}

// grow returns buf (full length, op bytes of it output) with room for n
// more bytes.
func grow(buf []byte, op, n int) []byte {
	buf = append(buf[:op], make([]byte, n+8)...)
	return buf[:cap(buf)]
}

// lookup returns the entry of table t (main table of 1<<b entries) for the
// code at the start of bb, following a subtable pointer.
func lookup(t []uint32, bb uint64, b uint) uint32 {
	e := t[bb&(1<<b-1)]
	if e&entrySub != 0 {
		e = t[e>>16+uint32(bb>>b)&(1<<(e>>8&15)-1)]
	}
	return e
}

// copyMatch copies length bytes to buf[op:] from dist bytes back, which may
// overlap what is being written (a run). buf has room for them.
func copyMatch(buf []byte, op, dist, length int) {
	from := op - dist
	end := op + length
	if dist >= 8 && len(buf)-end >= 8 {
		// 8 bytes at a time; each load reads only bytes already final (dist
		// >= 8 back) and the last store may spill into spare room.
		for ; op < end; op, from = op+8, from+8 {
			binary.LittleEndian.PutUint64(buf[op:], binary.LittleEndian.Uint64(buf[from:]))
		}
		return
	}
	if dist >= length {
		copy(buf[op:end], buf[from:])
		return
	}
	// A run: the bytes from `from` repeat with period dist, so the source
	// may stay put while each copy doubles what it can take.
	for op < end {
		op += copy(buf[op:end], buf[from:op])
	}
}
