package bidder

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/prebid/openrtb/v20/adcom1"
	"github.com/prebid/openrtb/v20/openrtb2"
)

// The bid request decoder: one pass over the body, no reflection, filling
// st.req and the pooled objects of bidState with the fields of an OpenRTB
// 2.6 request the bidder reads (the wire types of wire_test.go define them).
// Everything else is skipped, but validated as JSON.
//
// It accepts and rejects exactly what encoding/json.Unmarshal accepts and
// rejects into the wire types, and decodes the same values
// (TestDecodeMatchesStdlib, TestDecodeCases, FuzzCodec):
//   - the whole body must be valid JSON (skipped values too), at most
//     10 000 containers deep, one value then only whitespace; top-level null
//     decodes nothing, any other non-object value is an error;
//   - keys match exactly, else case-insensitively by encoding/json's
//     foldName (so "ſite" is "site", the Kelvin sign "K" is "k"); keys may be
//     escaped;
//   - a repeated key decodes again into what is there: objects merge,
//     arrays reuse their elements (an element beyond the new array's length
//     stays in the backing array and is merged into by a later, longer
//     array; null leaves an element as it is), an empty array starts afresh,
//     null clears a pointer or slice and leaves a string or number as it is;
//   - strings are unquoted as encoding/json does (invalid UTF-8 and lone
//     surrogates become U+FFFD, control bytes are errors); integers follow
//     strconv.ParseInt with the field's size, floats strconv.ParseFloat; any
//     type mismatch is an error (encoding/json reports it after decoding the
//     rest; either way the request is refused).
//
// Strings. While decoding, a string value without escapes points into the
// body (unsafe.String, no copy); an escaped one is allocated. When the
// request has been read, finish moves every string (and user.ext,
// regs.ext) that points into the body into one new allocation, sized to
// what was read: one allocation per request for its strings, not one per
// string, and nothing of the body (which fasthttp reuses) is referenced
// after decodeRequest returns. checkDecodeMatches scribbles over the body
// after decoding to check this for every test and fuzz input. A field
// newly read must be added to finish's walk (mover.request) too.
//
// Retention audit (bidder, pacing, audience, creative, lookalike, campaign
// at the time of writing): no request string outlives the request, so the
// shared allocation pins nothing. The bid path reads the strings during the
// handler only: pseudonyms hash buyeruid, eids and ifa into fresh values
// (audience.Pseudonymizer.Raw/RawKind copy into a scratch array), the
// exchange user id is copied into an array before the lookup, consent
// strings are parsed in place, lookalike.Population.Observe turns
// site/app/device strings into hashed features before queueing them,
// pacing tokens are serialised at once, and the response's ids and URLs are
// appended into fresh buffers. Were one kept (a map key, a stored id, a
// queued value), it would keep the few hundred bytes of the request's
// strings alive, no more; strings.Clone it anyway. user.ext and regs.ext
// share that allocation too (their own bytes, capacity clipped): they are
// read, never written to.

const (
	// maxDepth is encoding/json's nesting limit (containers deep).
	maxDepth = 10000
)

// decoder reads one body. Functions that decode a value start at its first
// byte (whitespace skipped) and leave pos just after it.
type decoder struct {
	data []byte
	pos  int
	st   *bidState
	nstr int // bytes of the body strings handed out (finish moves them)
}

// decodeError is a syntax or type error, refused alike.
type decodeError struct {
	msg string
	off int
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("decode bid request: %s at offset %d", e.msg, e.off)
}

func (d *decoder) syntaxErr() error {
	if d.pos >= len(d.data) {
		return &decodeError{"unexpected end of JSON input", d.pos}
	}
	return &decodeError{fmt.Sprintf("invalid character %q", d.data[d.pos]), d.pos}
}

func (d *decoder) typeErr(what string) error {
	return &decodeError{"cannot decode " + what + " here", d.pos}
}

func (d *decoder) decode() error {
	d.ws()
	if d.pos >= len(d.data) {
		return d.syntaxErr()
	}
	switch d.data[d.pos] {
	case '{':
		if err := d.request(); err != nil {
			return err
		}
	case 'n':
		if err := d.literal("null"); err != nil {
			return err
		}
	default:
		// Another JSON value is a type error, anything else a syntax error.
		return d.typeErr("a value other than an object")
	}
	d.ws()
	if d.pos != len(d.data) {
		return d.syntaxErr()
	}
	return nil
}

// bodyString is data[start:end] as a string without a copy: finish moves
// it before decodeRequest returns.
func bodyString(data []byte, start, end int) string {
	if start == end {
		return ""
	}
	return unsafe.String(&data[start], end-start)
}

// finish moves the strings and raw bytes of st.req that point into the
// body into one new allocation.
func (d *decoder) finish() {
	if d.nstr == 0 {
		return
	}
	m := mover{lo: uintptr(unsafe.Pointer(&d.data[0])), size: uintptr(len(d.data)), buf: make([]byte, 0, d.nstr)}
	m.request(&d.st.req)
}

// mover moves the strings of a decoded request that point into the body
// (the range lo, lo+size) into buf. buf's capacity is the length of every
// body string the decoder handed out, at least what is still referenced:
// it never grows, so what was moved stays put.
type mover struct {
	lo, size uintptr
	buf      []byte
}

func (m *mover) str(p *string) {
	s := *p
	if s == "" || uintptr(unsafe.Pointer(unsafe.StringData(s)))-m.lo >= m.size {
		return
	}
	off := len(m.buf)
	m.buf = append(m.buf, s...)
	*p = unsafe.String(&m.buf[off], len(s))
}

func (m *mover) raw(p *json.RawMessage) {
	b := *p
	if len(b) == 0 || uintptr(unsafe.Pointer(&b[0]))-m.lo >= m.size {
		return
	}
	off := len(m.buf)
	m.buf = append(m.buf, b...)
	*p = m.buf[off:len(m.buf):len(m.buf)]
}

// strs walks a string slice up to its capacity: elements beyond its length
// are the stale ones of a repeated key, which a later array may bring back.
func (m *mover) strs(s []string) {
	s = s[:cap(s)]
	for i := range s {
		m.str(&s[i])
	}
}

func (m *mover) geo(g *openrtb2.Geo) {
	if g != nil {
		m.str(&g.Country)
		m.str(&g.Region)
	}
}

// request walks every string field decode.go fills.
func (m *mover) request(r *openrtb2.BidRequest) {
	m.str(&r.ID)
	imps := r.Imp[:cap(r.Imp)]
	for i := range imps {
		imp := &imps[i]
		m.str(&imp.ID)
		m.str(&imp.BidFloorCur)
		if imp.Native != nil {
			m.str(&imp.Native.Request)
		}
	}
	m.strs(r.BCat)
	m.strs(r.BAdv)
	if s := r.Site; s != nil {
		m.str(&s.Domain)
		m.str(&s.Page)
		m.strs(s.Cat)
	}
	if a := r.App; a != nil {
		m.str(&a.Bundle)
		m.strs(a.Cat)
	}
	if dv := r.Device; dv != nil {
		m.str(&dv.OS)
		m.str(&dv.IFA)
		m.geo(dv.Geo)
	}
	if u := r.User; u != nil {
		m.str(&u.ID)
		m.str(&u.BuyerUID)
		m.str(&u.Consent)
		m.raw(&u.Ext)
		m.geo(u.Geo)
		eids := u.EIDs[:cap(u.EIDs)]
		for i := range eids {
			e := &eids[i]
			m.str(&e.Source)
			uids := e.UIDs[:cap(e.UIDs)]
			for j := range uids {
				m.str(&uids[j].ID)
			}
		}
	}
	if g := r.Regs; g != nil {
		m.str(&g.USPrivacy)
		m.str(&g.GPP)
		m.raw(&g.Ext)
	}
}

// --- lexical helpers ---

// ws skips JSON whitespace.
func (d *decoder) ws() {
	if d.pos < len(d.data) && d.data[d.pos] > ' ' {
		return
	}
	d.pos = skipWS(d.data, d.pos)
}

func skipWS(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\n', '\r', '\t':
			i++
		default:
			return i
		}
	}
	return i
}

// The string scanners look at 8 bytes at a time: special returns, per
// byte, 0x80 where a byte is '"', '\\' or a control byte (and maybe at
// bytes above the first such one, which the callers never look at).
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

func special(x uint64) uint64 {
	q := x ^ ('"' * ones)
	b := x ^ ('\\' * ones)
	return ((q-ones)&^q | (b-ones)&^b | (x-0x20*ones)&^x) & highs
}

// plainRun returns the index of the first byte at or after i that is '"',
// '\\', a control byte, or (if ascii) non-ASCII.
func plainRun(data []byte, i int, ascii bool) int {
	for ; i+8 <= len(data); i += 8 {
		x := binary.LittleEndian.Uint64(data[i:])
		t := special(x)
		if ascii {
			t |= x & highs
		}
		if t != 0 {
			return i + bits.TrailingZeros64(t)/8
		}
	}
	tab := &plainSkip
	if ascii {
		tab = &plainStr
	}
	for i < len(data) && tab[data[i]] {
		i++
	}
	return i
}

func (d *decoder) literal(lit string) error {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return nil
	}
	// Point at the first wrong byte.
	for i := 0; i < len(lit) && d.pos < len(d.data) && d.data[d.pos] == lit[i]; i++ {
		d.pos++
	}
	return d.syntaxErr()
}

// key reads an object's next key and the colon after it; first is true right
// after the '{'. At the closing '}' it returns more == false. A key with
// escapes is unescaped into st.scratch, valid until the next string.
func (d *decoder) key(first bool) (key []byte, more bool, err error) {
	data := d.data
	i := d.pos
	if i >= len(data) || data[i] <= ' ' {
		i = skipWS(data, i)
	}
	if i >= len(data) {
		d.pos = i
		return nil, false, d.syntaxErr()
	}
	c := data[i]
	if c == '}' {
		d.pos = i + 1
		return nil, false, nil
	}
	if !first {
		if c != ',' {
			d.pos = i
			return nil, false, d.syntaxErr()
		}
		i++
		if i >= len(data) || data[i] <= ' ' {
			i = skipWS(data, i)
		}
		if i >= len(data) {
			d.pos = i
			return nil, false, d.syntaxErr()
		}
		c = data[i]
	}
	if c != '"' {
		d.pos = i
		return nil, false, d.syntaxErr()
	}
	start := i + 1
	i = plainRun(data, start, false)
	if i < len(data) && data[i] == '"' {
		key = data[start:i]
		i++
	} else {
		if key, err = d.unquoteSlow(start, i); err != nil {
			return nil, false, err
		}
		i = d.pos
	}
	if i >= len(data) || data[i] != ':' {
		i = skipWS(data, i)
		if i >= len(data) || data[i] != ':' {
			d.pos = i
			return nil, false, d.syntaxErr()
		}
	}
	i++
	if i >= len(data) || data[i] <= ' ' {
		i = skipWS(data, i)
	}
	d.pos = i
	return key, true, nil
}

// elem moves to an array's next element; first is true right after the '['.
// At the closing ']' it returns false.
func (d *decoder) elem(first bool) (bool, error) {
	d.ws()
	if d.pos >= len(d.data) {
		return false, d.syntaxErr()
	}
	c := d.data[d.pos]
	if c == ']' {
		d.pos++
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, d.syntaxErr()
		}
		d.pos++
		d.ws()
	}
	return true, nil
}

// peek returns the byte at pos, 0 at the end of the input (an error for
// every caller).
func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// plainStr marks the bytes a read string holds as they are: not '"',
// '\\', a control byte or non-ASCII (which must be checked as UTF-8).
// plainSkip accepts non-ASCII bytes: a skipped string or a key is not
// unquoted (a key only has to match ASCII field names, and an invalid UTF-8
// byte, like the U+FFFD it would become, matches none).
var plainStr, plainSkip = func() (s, sk [256]bool) {
	for c := 0x20; c < 256; c++ {
		sk[c] = c != '"' && c != '\\'
		s[c] = sk[c] && c < utf8.RuneSelf
	}
	return
}()

// str decodes a string value at pos (the opening quote).
func (d *decoder) str() (string, error) {
	data := d.data
	start := d.pos + 1
	i := start
	for {
		i = plainRun(data, i, true)
		if i >= len(data) {
			break
		}
		c := data[i]
		if c == '"' {
			d.pos = i + 1
			d.nstr += i - start
			return bodyString(data, start, i), nil
		}
		if c < utf8.RuneSelf {
			break // escape or control byte
		}
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	b, err := d.unquoteSlow(start, i)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// unquoteSlow finishes a string whose content starts at start and whose
// bytes before i need no work, as encoding/json's unquote does, into
// st.scratch; pos moves past the closing quote.
func (d *decoder) unquoteSlow(start, i int) ([]byte, error) {
	data := d.data
	b := append(d.st.scratch[:0], data[start:i]...)
	for {
		if i >= len(data) {
			d.pos = i
			return nil, d.syntaxErr()
		}
		c := data[i]
		switch {
		case c == '"':
			d.st.scratch = b
			d.pos = i + 1
			return b, nil
		case c == '\\':
			if i+1 >= len(data) {
				d.pos = i + 1
				return nil, d.syntaxErr()
			}
			switch e := data[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(data, i+2)
				if r < 0 {
					d.pos = i + 2
					for d.pos < len(data) && d.pos < i+6 && hexVal(data[d.pos]) >= 0 {
						d.pos++
					}
					return nil, d.syntaxErr()
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A valid pair with the next escape, else U+FFFD (and
					// the next escape is read on its own).
					if i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
						if r2 := hex4(data, i+2); r2 >= 0 {
							if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
								b = utf8.AppendRune(b, dec)
								i += 6
								continue
							}
						}
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				d.pos = i + 1
				return nil, d.syntaxErr()
			}
			i += 2
		case c < 0x20:
			d.pos = i
			return nil, d.syntaxErr()
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			b = utf8.AppendRune(b, r) // U+FFFD for an invalid byte
			i += size
		}
	}
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// hex4 reads 4 hex digits at data[i:], or returns -1.
func hex4(data []byte, i int) rune {
	if len(data)-i < 4 {
		return -1
	}
	var r rune
	for _, c := range data[i : i+4] {
		v := hexVal(c)
		if v < 0 {
			return -1
		}
		r = r<<4 | v
	}
	return r
}

// --- skipping ---

// The scanners below return the index after what they scanned, or ^i (a
// negative number) for a syntax error at i.

// scanString scans a string's content from i (after the opening quote) to
// after the closing quote, validating escapes.
func scanString(data []byte, i int) int {
	for {
		i = plainRun(data, i, false)
		if i >= len(data) {
			return ^i
		}
		switch data[i] {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= len(data) {
				return ^(i + 1)
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(data) || hexVal(data[k]) < 0 {
						return ^k
					}
				}
				i += 6
			default:
				return ^(i + 1)
			}
		default: // a control byte
			return ^i
		}
	}
}

// scanNumber scans a number at i by JSON's grammar.
func scanNumber(data []byte, i int) int {
	if i < len(data) && data[i] == '-' {
		i++
	}
	if i >= len(data) {
		return ^i
	}
	if c := data[i]; c == '0' {
		i++
	} else if '1' <= c && c <= '9' {
		i++
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	} else {
		return ^i
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			return ^i
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			return ^i
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	}
	return i
}

// scanLiteral scans true, false or null at i.
func scanLiteral(data []byte, i int) int {
	lit := "null"
	switch data[i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	}
	for k := 0; k < len(lit); k++ {
		if i+k >= len(data) || data[i+k] != lit[k] {
			return ^(i + k)
		}
	}
	return i + len(lit)
}

// scanKey scans an object key at i (after optional whitespace) and the
// colon after it, and the whitespace after that.
func scanKey(data []byte, i int) int {
	if i < len(data) && data[i] <= ' ' {
		i = skipWS(data, i)
	}
	if i >= len(data) || data[i] != '"' {
		return ^i
	}
	if i = scanString(data, i+1); i < 0 {
		return i
	}
	if i < len(data) && data[i] <= ' ' {
		i = skipWS(data, i)
	}
	if i >= len(data) || data[i] != ':' {
		return ^i
	}
	return i + 1
}

// skip validates and skips one value at pos; depth is the number of
// containers around it.
func (d *decoder) skip(depth int) error {
	data := d.data
	i := d.pos
	// Kinds of the containers opened inside the skipped value, bit set for
	// an array; deeper than 128 (hostile or odd input) on the heap.
	var small [2]uint64
	kinds := small[:]
	n := 0
	inArray := false // the innermost open container is an array
	for {
		// A value at i.
		if i < len(data) && data[i] <= ' ' {
			i = skipWS(data, i)
		}
		if i >= len(data) {
			return d.errAt(i)
		}
		switch c := data[i]; c {
		case '"':
			i = scanString(data, i+1)
		case '{', '[':
			n++
			if depth+n > maxDepth {
				return &decodeError{"exceeded max depth", i}
			}
			if n > 64*len(kinds) {
				kinds = append(kinds, make([]uint64, maxDepth/64+1-len(kinds))...)
			}
			w, bit := (n-1)/64, uint64(1)<<((n-1)%64)
			i++
			if i < len(data) && data[i] <= ' ' {
				i = skipWS(data, i)
			}
			if c == '[' {
				kinds[w] |= bit
				inArray = true
				if i < len(data) && data[i] == ']' {
					i++
					n--
					inArray = n > 0 && kinds[(n-1)/64]&(uint64(1)<<((n-1)%64)) != 0
					break
				}
				continue
			}
			kinds[w] &^= bit
			inArray = false
			if i < len(data) && data[i] == '}' {
				i++
				n--
				inArray = n > 0 && kinds[(n-1)/64]&(uint64(1)<<((n-1)%64)) != 0
				break
			}
			if i = scanKey(data, i); i < 0 {
				return d.errAt(^i)
			}
			continue
		case 't', 'f', 'n':
			i = scanLiteral(data, i)
		default:
			i = scanNumber(data, i)
		}
		if i < 0 {
			return d.errAt(^i)
		}
		// After a value: close containers until one continues.
		for {
			if n == 0 {
				d.pos = i
				return nil
			}
			if i < len(data) && data[i] <= ' ' {
				i = skipWS(data, i)
			}
			if i >= len(data) {
				return d.errAt(i)
			}
			c := data[i]
			i++
			if c == ',' {
				if !inArray {
					if i = scanKey(data, i); i < 0 {
						return d.errAt(^i)
					}
				}
				break
			}
			if inArray && c == ']' || !inArray && c == '}' {
				n--
				if n > 0 {
					inArray = kinds[(n-1)/64]&(uint64(1)<<((n-1)%64)) != 0
				}
				continue
			}
			return d.errAt(i - 1)
		}
	}
}

// errAt is a syntax error at i.
func (d *decoder) errAt(i int) error {
	d.pos = i
	return d.syntaxErr()
}

// --- typed values ---

func (d *decoder) strField(p *string) error {
	switch d.peek() {
	case '"':
		s, err := d.str()
		if err != nil {
			return err
		}
		*p = s
		return nil
	case 'n':
		return d.literal("null") // leaves a string as it is
	}
	return d.valueTypeErr("string")
}

// valueTypeErr: the value at pos does not fit the field. If it is not
// valid JSON either, that is the error (refused alike).
func (d *decoder) valueTypeErr(want string) error {
	switch d.peek() {
	case '{', '[', '"', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return d.typeErr("JSON value into " + want)
	}
	return d.syntaxErr()
}

// integer reads an integer value into the range [-1<<(bits-1), 1<<(bits-1)-1]
// as strconv.ParseInt and reflect's OverflowInt decide. ok is false for null.
func (d *decoder) integer(bits uint) (v int64, ok bool, err error) {
	data := d.data
	start := d.pos
	i := start
	c := d.peek()
	if c == 'n' {
		return 0, false, d.literal("null")
	}
	if c == '-' {
		i++
	} else if c < '0' || c > '9' {
		return 0, false, d.valueTypeErr("integer")
	}
	ds := i
	if i < len(data) && data[i] == '0' {
		i++
	} else {
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	}
	if i == ds {
		return 0, false, d.errAt(i)
	}
	if i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E') {
		return 0, false, d.typeErr("non-integer number into integer")
	}
	limit := uint64(1)<<(bits-1) - 1
	if c == '-' {
		limit++
	}
	var u uint64
	for _, c := range data[ds:i] {
		if u > limit/10 {
			return 0, false, d.typeErr("number " + string(data[start:i]) + " (out of range)")
		}
		u = u*10 + uint64(c-'0')
	}
	if u > limit {
		return 0, false, d.typeErr("number " + string(data[start:i]) + " (out of range)")
	}
	d.pos = i
	if c == '-' {
		return -int64(u), true, nil
	}
	return int64(u), true, nil
}

func (d *decoder) int64Field(p *int64) error {
	v, ok, err := d.integer(64)
	if ok {
		*p = v
	}
	return err
}

func (d *decoder) int8Field(p *int8) error {
	v, ok, err := d.integer(8)
	if ok {
		*p = int8(v)
	}
	return err
}

// int8Ptr: null sets nil; a number is stored where the pointer points,
// allocating it (from the pool) if nil.
func (d *decoder) int8Ptr(p **int8) error {
	v, ok, err := d.integer(8)
	if err != nil {
		return err
	}
	if !ok {
		*p = nil
		return nil
	}
	if *p == nil {
		*p = d.st.int8s.new()
	}
	**p = int8(v)
	return nil
}

func (d *decoder) int64Ptr(p **int64) error {
	v, ok, err := d.integer(64)
	if err != nil {
		return err
	}
	if !ok {
		*p = nil
		return nil
	}
	if *p == nil {
		*p = d.st.int64s.new()
	}
	**p = v
	return nil
}

func (d *decoder) floatField(p *float64) error {
	c := d.peek()
	if c == 'n' {
		return d.literal("null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return d.valueTypeErr("number")
	}
	start := d.pos
	end := scanNumber(d.data, start)
	if end < 0 {
		return d.errAt(^end)
	}
	d.pos = end
	s := bodyString(d.data, start, end) // ParseFloat keeps no reference
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		d.pos = start
		return d.typeErr("number " + s + " (out of range)")
	}
	*p = f
	return nil
}

// raw stores the bytes of the value at pos, as json.RawMessage does (null
// is the bytes "null").
func (d *decoder) raw(p *json.RawMessage, depth int) error {
	start := d.pos
	if err := d.skip(depth); err != nil {
		return err
	}
	*p = d.data[start:d.pos:d.pos] // moved out of the body by finish
	d.nstr += d.pos - start
	return nil
}

// arrayStart: at a slice field's value. It returns false for null (the
// slice is then nil) and an error for anything but an array or null.
func (d *decoder) arrayStart() (bool, error) {
	switch d.peek() {
	case '[':
		d.pos++
		return true, nil
	case 'n':
		return false, d.literal("null")
	}
	return false, d.valueTypeErr("array")
}

// objectStart: at a struct (or pointer to struct) field's value. It returns
// false for null and an error for anything but an object or null.
func (d *decoder) objectStart() (bool, error) {
	switch d.peek() {
	case '{':
		d.pos++
		return true, nil
	case 'n':
		return false, d.literal("null")
	}
	return false, d.valueTypeErr("object")
}

// slot returns s with room for element i as encoding/json's array decoding
// makes it: within the capacity the element is reused as it is (a stale
// one from an earlier array under a repeated key included), beyond it the
// slice grows.
func slot[T any](p *objPool[T], s []T, i int) []T {
	if i < len(s) {
		return s
	}
	if i < cap(s) {
		return s[:i+1]
	}
	return p.grow(s[:cap(s)])
}

// endArray: encoding/json keeps the first n elements, and an empty array is
// a new empty slice (the backing array is dropped).
func endArray[T any](s []T, n int) []T {
	if n == 0 {
		return make([]T, 0)
	}
	return s[:n]
}

func (d *decoder) strs(p *[]string) error {
	ok, err := d.arrayStart()
	if !ok {
		if err == nil {
			*p = nil
		}
		return err
	}
	s := *p
	i := 0
	for first := true; ; first = false {
		more, err := d.elem(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		s = slot(&d.st.strs, s, i)
		if err := d.strField(&s[i]); err != nil {
			return err
		}
		i++
	}
	*p = endArray(s, i)
	return nil
}

func (d *decoder) int8s(p *[]int8) error {
	ok, err := d.arrayStart()
	if !ok {
		if err == nil {
			*p = nil
		}
		return err
	}
	s := *p
	i := 0
	for first := true; ; first = false {
		more, err := d.elem(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		s = slot(&d.st.int8s, s, i)
		if err := d.int8Field(&s[i]); err != nil {
			return err
		}
		i++
	}
	*p = endArray(s, i)
	return nil
}

// --- key matching ---

// foldIndex returns the index of the name in names (upper-case ASCII) that
// key matches as encoding/json's foldName does, or -1. Only called when no
// name matched exactly.
func foldIndex(key []byte, names []string, maxLen int) int {
	// Each rune folds to at least one byte, and a name is at most maxLen
	// ASCII bytes of at most 4 bytes of input each.
	if len(key) > 4*maxLen {
		return -1
	}
	var arr [64]byte
	f := arr[:0]
	for i := 0; i < len(key); {
		if len(f) > maxLen {
			return -1
		}
		if c := key[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			f = append(f, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		f = utf8.AppendRune(f, foldRune(r))
		i += n
	}
	for j, name := range names {
		if string(f) == name {
			return j
		}
	}
	return -1
}

// foldRune is encoding/json's: the smallest rune of r's fold set.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// fields holds a struct's JSON keys, upper-cased for foldIndex.
type fields struct {
	folded  []string
	maxLen  int
	lengths uint64 // bit n set: a key of n bytes
}

func newFields(keys ...string) fields {
	f := fields{}
	for _, k := range keys {
		b := []byte(k)
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - ('a' - 'A')
			}
		}
		f.folded = append(f.folded, string(b))
		f.maxLen = max(f.maxLen, len(k))
		f.lengths |= 1 << len(k)
	}
	return f
}

// fold returns the field index of key (1-based, as the exact switches), 0
// for a key the struct does not have.
func (f *fields) fold(key []byte) int {
	// Most keys are fields the bidder skips: an ASCII key folds to as many
	// bytes, so one of a length no field has matches none.
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return foldIndex(key, f.folded, f.maxLen) + 1
		}
	}
	if n := len(key); n >= 64 || f.lengths&(1<<n) == 0 {
		return 0
	}
next:
	for j, name := range f.folded {
		if len(name) != len(key) {
			continue
		}
		for i, c := range key {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			if c != name[i] {
				continue next
			}
		}
		return j + 1
	}
	return 0
}

// --- the request ---

var (
	requestFields = newFields("id", "imp", "site", "app", "device", "user", "at", "tmax", "bcat", "badv", "regs")
	impFields     = newFields("id", "banner", "native", "bidfloor", "bidfloorcur", "secure")
	bannerFields  = newFields("format", "w", "h")
	formatFields  = newFields("w", "h")
	nativeFields  = newFields("request")
	siteFields    = newFields("domain", "cat", "page")
	appFields     = newFields("bundle", "cat")
	deviceFields  = newFields("geo", "lmt", "devicetype", "os", "ifa")
	geoFields     = newFields("country", "region", "utcoffset")
	userFields    = newFields("id", "buyeruid", "geo", "consent", "eids", "ext")
	eidFields     = newFields("source", "uids")
	uidFields     = newFields("id")
	regsFields    = newFields("coppa", "gdpr", "us_privacy", "gpp", "gpp_sid", "ext")
)

// request decodes the top-level object at pos into st.req.
func (d *decoder) request() error {
	const depth = 1
	d.pos++
	req := &d.st.req
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		var f int
		switch string(k) {
		case "id":
			f = 1
		case "imp":
			f = 2
		case "site":
			f = 3
		case "app":
			f = 4
		case "device":
			f = 5
		case "user":
			f = 6
		case "at":
			f = 7
		case "tmax":
			f = 8
		case "bcat":
			f = 9
		case "badv":
			f = 10
		case "regs":
			f = 11
		default:
			f = requestFields.fold(k)
		}
		switch f {
		case 1:
			err = d.strField(&req.ID)
		case 2:
			err = d.imps(depth)
		case 3:
			err = d.site(depth)
		case 4:
			err = d.app(depth)
		case 5:
			err = d.device(depth)
		case 6:
			err = d.user(depth)
		case 7:
			err = d.int64Field(&req.AT)
		case 8:
			err = d.int64Field(&req.TMax)
		case 9:
			err = d.strs(&req.BCat)
		case 10:
			err = d.strs(&req.BAdv)
		case 11:
			err = d.regs(depth)
		default:
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) imps(depth int) error {
	req := &d.st.req
	ok, err := d.arrayStart()
	if !ok {
		if err == nil {
			req.Imp = nil
		}
		return err
	}
	s := req.Imp
	i := 0
	for first := true; ; first = false {
		more, err := d.elem(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		s = slot(&d.st.imps, s, i)
		ok, err := d.objectStart()
		if ok {
			err = d.imp(&s[i], depth+2)
		}
		if err != nil {
			return err
		}
		i++
	}
	req.Imp = endArray(s, i)
	return nil
}

// imp decodes the members of an imp object (after its '{'); depth counts
// the object.
func (d *decoder) imp(imp *openrtb2.Imp, depth int) error {
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		var f int
		switch string(k) {
		case "id":
			f = 1
		case "banner":
			f = 2
		case "native":
			f = 3
		case "bidfloor":
			f = 4
		case "bidfloorcur":
			f = 5
		case "secure":
			f = 6
		default:
			f = impFields.fold(k)
		}
		switch f {
		case 1:
			err = d.strField(&imp.ID)
		case 2:
			var ok bool
			if ok, err = d.objectStart(); ok {
				if imp.Banner == nil {
					imp.Banner = d.st.banners.new()
				}
				err = d.banner(imp.Banner, depth+1)
			} else if err == nil {
				imp.Banner = nil
			}
		case 3:
			var ok bool
			if ok, err = d.objectStart(); ok {
				if imp.Native == nil {
					imp.Native = d.st.natives.new()
				}
				err = d.native(imp.Native, depth+1)
			} else if err == nil {
				imp.Native = nil
			}
		case 4:
			err = d.floatField(&imp.BidFloor)
		case 5:
			err = d.strField(&imp.BidFloorCur)
		case 6:
			err = d.int8Ptr(&imp.Secure)
		default:
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) banner(b *openrtb2.Banner, depth int) error {
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		var f int
		switch string(k) {
		case "format":
			f = 1
		case "w":
			f = 2
		case "h":
			f = 3
		default:
			f = bannerFields.fold(k)
		}
		switch f {
		case 1:
			err = d.formats(&b.Format, depth)
		case 2:
			err = d.int64Ptr(&b.W)
		case 3:
			err = d.int64Ptr(&b.H)
		default:
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) formats(p *[]openrtb2.Format, depth int) error {
	ok, err := d.arrayStart()
	if !ok {
		if err == nil {
			*p = nil
		}
		return err
	}
	s := *p
	i := 0
	for first := true; ; first = false {
		more, err := d.elem(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		s = slot(&d.st.formats, s, i)
		ok, err := d.objectStart()
		if ok {
			err = d.format(&s[i], depth+2)
		}
		if err != nil {
			return err
		}
		i++
	}
	*p = endArray(s, i)
	return nil
}

func (d *decoder) format(fm *openrtb2.Format, depth int) error {
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		var f int
		switch string(k) {
		case "w":
			f = 1
		case "h":
			f = 2
		default:
			f = formatFields.fold(k)
		}
		switch f {
		case 1:
			err = d.int64Field(&fm.W)
		case 2:
			err = d.int64Field(&fm.H)
		default:
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) native(n *openrtb2.Native, depth int) error {
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		f := 0
		if string(k) == "request" {
			f = 1
		} else {
			f = nativeFields.fold(k)
		}
		if f == 1 {
			err = d.strField(&n.Request)
		} else {
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) site(depth int) error {
	req, st := &d.st.req, d.st
	ok, err := d.objectStart()
	if !ok {
		if err == nil {
			req.Site = nil
		}
		return err
	}
	if req.Site == nil {
		st.site = openrtb2.Site{}
		st.used |= usedSite
		req.Site = &st.site
	}
	s := req.Site
	depth++
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		var f int
		switch string(k) {
		case "domain":
			f = 1
		case "cat":
			f = 2
		case "page":
			f = 3
		default:
			f = siteFields.fold(k)
		}
		switch f {
		case 1:
			err = d.strField(&s.Domain)
		case 2:
			err = d.strs(&s.Cat)
		case 3:
			err = d.strField(&s.Page)
		default:
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) app(depth int) error {
	req, st := &d.st.req, d.st
	ok, err := d.objectStart()
	if !ok {
		if err == nil {
			req.App = nil
		}
		return err
	}
	if req.App == nil {
		st.app = openrtb2.App{}
		st.used |= usedApp
		req.App = &st.app
	}
	a := req.App
	depth++
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		var f int
		switch string(k) {
		case "bundle":
			f = 1
		case "cat":
			f = 2
		default:
			f = appFields.fold(k)
		}
		switch f {
		case 1:
			err = d.strField(&a.Bundle)
		case 2:
			err = d.strs(&a.Cat)
		default:
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) device(depth int) error {
	req, st := &d.st.req, d.st
	ok, err := d.objectStart()
	if !ok {
		if err == nil {
			req.Device = nil
		}
		return err
	}
	if req.Device == nil {
		st.device = openrtb2.Device{}
		st.used |= usedDevice
		req.Device = &st.device
	}
	dev := req.Device
	depth++
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		var f int
		switch string(k) {
		case "geo":
			f = 1
		case "lmt":
			f = 2
		case "devicetype":
			f = 3
		case "os":
			f = 4
		case "ifa":
			f = 5
		default:
			f = deviceFields.fold(k)
		}
		switch f {
		case 1:
			err = d.geo(&dev.Geo, &st.deviceGeo, usedDeviceGeo, depth)
		case 2:
			err = d.int8Ptr(&dev.Lmt)
		case 3:
			var v int64
			var ok bool
			if v, ok, err = d.integer(8); ok {
				dev.DeviceType = adcom1.DeviceType(v)
			}
		case 4:
			err = d.strField(&dev.OS)
		case 5:
			err = d.strField(&dev.IFA)
		default:
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

// geo decodes a geo object into *p, which is nil or pool (a geo is
// pointed to by one field only, so a fresh one reuses it zeroed).
func (d *decoder) geo(p **openrtb2.Geo, pool *openrtb2.Geo, used uint8, depth int) error {
	ok, err := d.objectStart()
	if !ok {
		if err == nil {
			*p = nil
		}
		return err
	}
	if *p == nil {
		*pool = openrtb2.Geo{}
		d.st.used |= used
		*p = pool
	}
	g := *p
	depth++
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		var f int
		switch string(k) {
		case "country":
			f = 1
		case "region":
			f = 2
		case "utcoffset":
			f = 3
		default:
			f = geoFields.fold(k)
		}
		switch f {
		case 1:
			err = d.strField(&g.Country)
		case 2:
			err = d.strField(&g.Region)
		case 3:
			err = d.int64Field(&g.UTCOffset)
		default:
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) user(depth int) error {
	req, st := &d.st.req, d.st
	ok, err := d.objectStart()
	if !ok {
		if err == nil {
			req.User = nil
		}
		return err
	}
	if req.User == nil {
		st.user = openrtb2.User{}
		st.used |= usedUser
		req.User = &st.user
	}
	u := req.User
	depth++
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		var f int
		switch string(k) {
		case "id":
			f = 1
		case "buyeruid":
			f = 2
		case "geo":
			f = 3
		case "consent":
			f = 4
		case "eids":
			f = 5
		case "ext":
			f = 6
		default:
			f = userFields.fold(k)
		}
		switch f {
		case 1:
			err = d.strField(&u.ID)
		case 2:
			err = d.strField(&u.BuyerUID)
		case 3:
			err = d.geo(&u.Geo, &st.userGeo, usedUserGeo, depth)
		case 4:
			err = d.strField(&u.Consent)
		case 5:
			err = d.eids(&u.EIDs, depth)
		case 6:
			err = d.raw(&u.Ext, depth)
		default:
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) eids(p *[]openrtb2.EID, depth int) error {
	ok, err := d.arrayStart()
	if !ok {
		if err == nil {
			*p = nil
		}
		return err
	}
	s := *p
	i := 0
	for first := true; ; first = false {
		more, err := d.elem(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		s = slot(&d.st.eids, s, i)
		ok, err := d.objectStart()
		if ok {
			err = d.eid(&s[i], depth+2)
		}
		if err != nil {
			return err
		}
		i++
	}
	*p = endArray(s, i)
	return nil
}

func (d *decoder) eid(e *openrtb2.EID, depth int) error {
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		var f int
		switch string(k) {
		case "source":
			f = 1
		case "uids":
			f = 2
		default:
			f = eidFields.fold(k)
		}
		switch f {
		case 1:
			err = d.strField(&e.Source)
		case 2:
			err = d.uids(&e.UIDs, depth)
		default:
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) uids(p *[]openrtb2.UID, depth int) error {
	ok, err := d.arrayStart()
	if !ok {
		if err == nil {
			*p = nil
		}
		return err
	}
	s := *p
	i := 0
	for first := true; ; first = false {
		more, err := d.elem(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		s = slot(&d.st.uids, s, i)
		ok, err := d.objectStart()
		if ok {
			err = d.uid(&s[i], depth+2)
		}
		if err != nil {
			return err
		}
		i++
	}
	*p = endArray(s, i)
	return nil
}

func (d *decoder) uid(u *openrtb2.UID, depth int) error {
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		f := 0
		if string(k) == "id" {
			f = 1
		} else {
			f = uidFields.fold(k)
		}
		if f == 1 {
			err = d.strField(&u.ID)
		} else {
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) regs(depth int) error {
	req, st := &d.st.req, d.st
	ok, err := d.objectStart()
	if !ok {
		if err == nil {
			req.Regs = nil
		}
		return err
	}
	if req.Regs == nil {
		st.regs = openrtb2.Regs{}
		st.used |= usedRegs
		req.Regs = &st.regs
	}
	r := req.Regs
	depth++
	for first := true; ; first = false {
		k, more, err := d.key(first)
		if !more {
			return err
		}
		var f int
		switch string(k) {
		case "coppa":
			f = 1
		case "gdpr":
			f = 2
		case "us_privacy":
			f = 3
		case "gpp":
			f = 4
		case "gpp_sid":
			f = 5
		case "ext":
			f = 6
		default:
			f = regsFields.fold(k)
		}
		switch f {
		case 1:
			err = d.int8Field(&r.COPPA)
		case 2:
			err = d.int8Ptr(&r.GDPR)
		case 3:
			err = d.strField(&r.USPrivacy)
		case 4:
			err = d.strField(&r.GPP)
		case 5:
			err = d.int8s(&r.GPPSID)
		case 6:
			err = d.raw(&r.Ext, depth)
		default:
			err = d.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}
