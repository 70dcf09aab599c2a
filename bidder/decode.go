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
// Strings. A decoded request borrows its body: a string value without
// escapes points into it (unsafe.String, no copy), and so do user.ext and
// regs.ext (capacity clipped); an unescaped string is copied into the
// pooled state's arena (bidState.keep). No allocation per request for its
// strings. The request is valid while the body is unchanged and until
// st.reset: the handler decodes, decides and encodes before it returns,
// and fasthttp (or the pooled gunzip buffer) reuses the body only after
// that. Nothing may keep a request string past the handler without
// strings.Clone: a kept one would change under it when the buffer is
// reused for another request.
//
// Retention audit (bidder, pacing, audience, creative, lookalike, campaign
// at the time of writing): no request string outlives the request. The bid
// path reads the strings during the handler only: pseudonyms hash
// buyeruid, eids and ifa into fresh values (audience.Pseudonymizer.Raw and
// RawKind copy into a scratch array), the exchange user id is copied into
// an array before the lookup, consent strings are parsed in place and the
// TCF memo keeps a strings.Clone of its key (TestTCFMemo), lookalike
// Population.Observe turns site/app/device strings into hashed features
// before queueing them, pacing tokens are serialised at once, and the
// response's ids and URLs are appended into the answer's buffers, which
// the handler copies into the response before it returns. The pooled state
// drops every reference at reset (TestResetDropsRequest).

const (
	// maxDepth is encoding/json's nesting limit (containers deep).
	maxDepth = 10000
)

// decoder reads one body. Its methods take the index of a value's first
// byte (whitespace skipped) and return the index after it, or an error.
type decoder struct {
	data []byte
	st   *bidState
}

// decodeError is a syntax or type error, refused alike.
type decodeError struct {
	msg string
	off int
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("decode bid request: %s at offset %d", e.msg, e.off)
}

func (d *decoder) syntaxErr(i int) error {
	if i >= len(d.data) {
		return &decodeError{"unexpected end of JSON input", i}
	}
	return &decodeError{fmt.Sprintf("invalid character %q", d.data[i]), i}
}

// typeErr: the value at i does not fit the field (want). If it is not a
// JSON value either, that is the error (refused alike).
func (d *decoder) typeErr(i int, want string) error {
	switch d.at(i) {
	case '{', '[', '"', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return &decodeError{"cannot decode this value into " + want, i}
	}
	return d.syntaxErr(i)
}

// at returns the byte at i, 0 at the end of the input (an error for every
// caller).
func (d *decoder) at(i int) byte {
	if i < len(d.data) {
		return d.data[i]
	}
	return 0
}

func (d *decoder) decode() error {
	data := d.data
	i := ws(data, 0)
	var err error
	switch d.at(i) {
	case '{':
		i, err = d.request(i)
	case 'n':
		i, err = d.literal(i, "null")
	default:
		err = d.typeErr(i, "a bid request (an object)")
	}
	if err != nil {
		return err
	}
	if i = ws(data, i); i != len(data) {
		return d.syntaxErr(i)
	}
	return nil
}

// --- lexical helpers ---

// ws skips JSON whitespace from i.
func ws(data []byte, i int) int {
	if i < len(data) && data[i] > ' ' {
		return i
	}
	return skipWS(data, i)
}

//go:noinline
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

func (d *decoder) literal(i int, lit string) (int, error) {
	j := scanLiteral(d.data, i, lit)
	if j < 0 {
		return ^j, d.syntaxErr(^j)
	}
	return j, nil
}

// key reads an object's next key at i and the colon after it, and moves to
// the value; first is true right after the '{'. At the closing '}' it
// returns more == false and the index after it. A key with escapes is
// unescaped into st.scratch, valid until the next string.
func (d *decoder) key(i int, first bool) (key []byte, next int, more bool, err error) {
	data := d.data
	i = ws(data, i)
	if i >= len(data) {
		return nil, i, false, d.syntaxErr(i)
	}
	c := data[i]
	if c == '}' {
		return nil, i + 1, false, nil
	}
	if !first {
		if c != ',' {
			return nil, i, false, d.syntaxErr(i)
		}
		i = ws(data, i+1)
		if i >= len(data) {
			return nil, i, false, d.syntaxErr(i)
		}
		c = data[i]
	}
	if c != '"' {
		return nil, i, false, d.syntaxErr(i)
	}
	start := i + 1
	i = plainRun(data, start, false)
	if i < len(data) && data[i] == '"' {
		key = data[start:i]
		i++
	} else if key, i, err = d.unquoteSlow(start, i); err != nil {
		return nil, i, false, err
	}
	i = ws(data, i)
	if i >= len(data) || data[i] != ':' {
		return nil, i, false, d.syntaxErr(i)
	}
	return key, ws(data, i+1), true, nil
}

// str decodes the string at i (the opening quote).
func (d *decoder) str(i int) (string, int, error) {
	data := d.data
	start := i + 1
	i = start
	for {
		i = plainRun(data, i, true)
		if i >= len(data) {
			break
		}
		c := data[i]
		if c == '"' {
			return bodyString(data, start, i), i + 1, nil
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
	b, i, err := d.unquoteSlow(start, i)
	if err != nil {
		return "", i, err
	}
	return d.st.keep(b), i, nil
}

// unquoteSlow finishes a string whose content starts at start and whose
// bytes before i need no work, as encoding/json's unquote does, into
// st.scratch, and returns the index after the closing quote.
func (d *decoder) unquoteSlow(start, i int) ([]byte, int, error) {
	data := d.data
	b := append(d.st.scratch[:0], data[start:i]...)
	for {
		if i >= len(data) {
			return nil, i, d.syntaxErr(i)
		}
		c := data[i]
		switch {
		case c == '"':
			d.st.scratch = b
			return b, i + 1, nil
		case c == '\\':
			if i+1 >= len(data) {
				return nil, i + 1, d.syntaxErr(i + 1)
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
				r, j := hex4(data, i+2)
				if j >= 0 {
					return nil, j, d.syntaxErr(j)
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A valid pair with the next escape, else U+FFFD (and
					// the next escape is read on its own).
					if i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
						if r2, j := hex4(data, i+2); j < 0 {
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
				return nil, i + 1, d.syntaxErr(i + 1)
			}
			i += 2
		case c < 0x20:
			return nil, i, d.syntaxErr(i)
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

// hex4 reads 4 hex digits at data[i:]; bad is the index of the first byte
// that is not one, or -1.
func hex4(data []byte, i int) (r rune, bad int) {
	for k := i; k < i+4; k++ {
		if k >= len(data) {
			return 0, k
		}
		v := hexVal(data[k])
		if v < 0 {
			return 0, k
		}
		r = r<<4 | v
	}
	return r, -1
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
				if _, bad := hex4(data, i+2); bad >= 0 {
					return ^bad
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

// scanLiteral scans lit (true, false or null) at i.
func scanLiteral(data []byte, i int, lit string) int {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(data) || data[i+k] != lit[k] {
			return ^(i + k)
		}
	}
	return i + len(lit)
}

// scanKey scans an object key at i (after optional whitespace) and the
// colon after it.
func scanKey(data []byte, i int) int {
	i = ws(data, i)
	if i >= len(data) || data[i] != '"' {
		return ^i
	}
	if i = scanString(data, i+1); i < 0 {
		return i
	}
	i = ws(data, i)
	if i >= len(data) || data[i] != ':' {
		return ^i
	}
	return i + 1
}

// skip validates and skips the value at i; depth is the number of
// containers around it.
func (d *decoder) skip(i, depth int) (int, error) {
	data := d.data
	// Kinds of the containers opened inside the skipped value, bit set for
	// an array; deeper than 128 (hostile or odd input) on the heap.
	var small [2]uint64
	kinds := small[:]
	n := 0
	inArray := false // the innermost open container is an array
	for {
		// A value at i.
		i = ws(data, i)
		if i >= len(data) {
			return i, d.syntaxErr(i)
		}
		switch c := data[i]; c {
		case '"':
			i = scanString(data, i+1)
		case '{', '[':
			n++
			if depth+n > maxDepth {
				return i, &decodeError{"exceeded max depth", i}
			}
			if n > 64*len(kinds) {
				kinds = append(kinds, make([]uint64, maxDepth/64+1-len(kinds))...)
			}
			w, bit := (n-1)/64, uint64(1)<<((n-1)%64)
			i = ws(data, i+1)
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
				return ^i, d.syntaxErr(^i)
			}
			continue
		case 't':
			i = scanLiteral(data, i, "true")
		case 'f':
			i = scanLiteral(data, i, "false")
		case 'n':
			i = scanLiteral(data, i, "null")
		default:
			i = scanNumber(data, i)
		}
		if i < 0 {
			return ^i, d.syntaxErr(^i)
		}
		// After a value: close containers until one continues.
		for {
			if n == 0 {
				return i, nil
			}
			i = ws(data, i)
			if i >= len(data) {
				return i, d.syntaxErr(i)
			}
			c := data[i]
			i++
			if c == ',' {
				if !inArray {
					if i = scanKey(data, i); i < 0 {
						return ^i, d.syntaxErr(^i)
					}
				}
				break
			}
			if inArray && c == ']' || !inArray && c == '}' {
				n--
				inArray = n > 0 && kinds[(n-1)/64]&(uint64(1)<<((n-1)%64)) != 0
				continue
			}
			return i - 1, d.syntaxErr(i - 1)
		}
	}
}

// --- typed values ---

func (d *decoder) strField(i int, p *string) (int, error) {
	switch d.at(i) {
	case '"':
		s, i, err := d.str(i)
		if err == nil {
			*p = s
		}
		return i, err
	case 'n':
		return d.literal(i, "null") // leaves a string as it is
	}
	return i, d.typeErr(i, "a string")
}

// integer reads the integer at i into the range [-1<<(bits-1),
// 1<<(bits-1)-1] as strconv.ParseInt and reflect's OverflowInt decide. ok
// is false for null.
func (d *decoder) integer(i int, bits uint) (v int64, next int, ok bool, err error) {
	data := d.data
	c := d.at(i)
	if c == 'n' {
		next, err = d.literal(i, "null")
		return 0, next, false, err
	}
	start := i
	if c == '-' {
		i++
	} else if c < '0' || c > '9' {
		return 0, i, false, d.typeErr(i, "an integer")
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
		return 0, i, false, d.syntaxErr(i)
	}
	if i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E') {
		return 0, start, false, &decodeError{"cannot decode a number with a fraction or exponent into an integer", start}
	}
	limit := uint64(1)<<(bits-1) - 1
	if c == '-' {
		limit++
	}
	var u uint64
	for _, c := range data[ds:i] {
		if u > limit/10 {
			return 0, start, false, &decodeError{"integer " + string(data[start:i]) + " out of range", start}
		}
		u = u*10 + uint64(c-'0')
	}
	if u > limit {
		return 0, start, false, &decodeError{"integer " + string(data[start:i]) + " out of range", start}
	}
	if c == '-' {
		return -int64(u), i, true, nil
	}
	return int64(u), i, true, nil
}

func (d *decoder) int64Field(i int, p *int64) (int, error) {
	v, i, ok, err := d.integer(i, 64)
	if ok {
		*p = v
	}
	return i, err
}

func (d *decoder) int8Field(i int, p *int8) (int, error) {
	v, i, ok, err := d.integer(i, 8)
	if ok {
		*p = int8(v)
	}
	return i, err
}

// int8Ptr: null sets nil; a number is stored where the pointer points,
// allocating it (from the pool) if nil.
func (d *decoder) int8Ptr(i int, p **int8) (int, error) {
	v, i, ok, err := d.integer(i, 8)
	if err != nil || !ok {
		if err == nil {
			*p = nil
		}
		return i, err
	}
	if *p == nil {
		*p = d.st.int8s.new()
	}
	**p = int8(v)
	return i, nil
}

func (d *decoder) int64Ptr(i int, p **int64) (int, error) {
	v, i, ok, err := d.integer(i, 64)
	if err != nil || !ok {
		if err == nil {
			*p = nil
		}
		return i, err
	}
	if *p == nil {
		*p = d.st.int64s.new()
	}
	**p = v
	return i, nil
}

func (d *decoder) floatField(i int, p *float64) (int, error) {
	c := d.at(i)
	if c == 'n' {
		return d.literal(i, "null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return i, d.typeErr(i, "a number")
	}
	end := scanNumber(d.data, i)
	if end < 0 {
		return ^end, d.syntaxErr(^end)
	}
	f, err := strconv.ParseFloat(bodyString(d.data, i, end), 64) // keeps no reference
	if err != nil {
		return i, &decodeError{"number " + string(d.data[i:end]) + " out of range", i}
	}
	*p = f
	return end, nil
}

// raw stores the bytes of the value at i, as json.RawMessage does (null
// is the bytes "null").
func (d *decoder) raw(i int, p *json.RawMessage, depth int) (int, error) {
	end, err := d.skip(i, depth)
	if err != nil {
		return end, err
	}
	*p = d.data[i:end:end] // borrowed from the body, like the strings
	return end, nil
}

// open is at a struct (or pointer to struct) field's value: it returns the
// index after the '{', or ok false for null (then the index after it).
func (d *decoder) open(i int) (next int, ok bool, err error) {
	switch d.at(i) {
	case '{':
		return i + 1, true, nil
	case 'n':
		next, err = d.literal(i, "null")
		return next, false, err
	}
	return i, false, d.typeErr(i, "an object")
}

// slot returns s with room for element n as encoding/json's array decoding
// makes it: within the capacity the element is reused as it is (a stale
// one from an earlier array under a repeated key included), beyond it the
// slice grows.
func slot[T any](p *objPool[T], s []T, n int) []T {
	if n < len(s) {
		return s
	}
	if n < cap(s) {
		return s[:n+1]
	}
	return p.grow(s[:cap(s)])
}

// array decodes the array at i into *p as encoding/json decodes into a
// slice, each element with elem (at depth, the array's own included):
// elements are decoded into what is there, an empty array is a new empty
// slice (the backing array is dropped), null sets nil.
func array[T any](d *decoder, i int, p *[]T, pool *objPool[T], depth int, elem func(*decoder, int, *T, int) (int, error)) (int, error) {
	data := d.data
	switch d.at(i) {
	case '[':
	case 'n':
		i, err := d.literal(i, "null")
		if err == nil {
			*p = nil
		}
		return i, err
	default:
		return i, d.typeErr(i, "an array")
	}
	s := *p
	n := 0
	for i = ws(data, i+1); ; i = ws(data, i) {
		if i >= len(data) {
			return i, d.syntaxErr(i)
		}
		if data[i] == ']' {
			i++
			break
		}
		if n > 0 {
			if data[i] != ',' {
				return i, d.syntaxErr(i)
			}
			i = ws(data, i+1)
		}
		s = slot(pool, s, n)
		var err error
		if i, err = elem(d, i, &s[n], depth+1); err != nil {
			return i, err
		}
		n++
	}
	if n == 0 {
		*p = make([]T, 0)
	} else {
		*p = s[:n]
	}
	return i, nil
}

func strElem(d *decoder, i int, p *string, _ int) (int, error) { return d.strField(i, p) }
func int8Elem(d *decoder, i int, p *int8, _ int) (int, error)  { return d.int8Field(i, p) }

func (d *decoder) strs(i int, p *[]string, depth int) (int, error) {
	return array(d, i, p, &d.st.strs, depth, strElem)
}

// bodyString is data[start:end] as a string without a copy, borrowed from
// the body (see "Strings" above).
func bodyString(data []byte, start, end int) string {
	if start == end {
		return ""
	}
	return unsafe.String(&data[start], end-start)
}

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

// objPtr decodes the object at i into *p, a pointer field: null sets nil,
// an object is decoded into what *p points to (merging, as encoding/json
// does with a repeated key), allocated with alloc if nil. members reads
// the members after the '{'.
func objPtr[T any](d *decoder, i int, p **T, depth int, alloc func(*bidState) *T, members func(*decoder, int, *T, int) (int, error)) (int, error) {
	i, ok, err := d.open(i)
	if !ok {
		if err == nil {
			*p = nil
		}
		return i, err
	}
	if *p == nil {
		*p = alloc(d.st)
	}
	return members(d, i, *p, depth+1)
}

// objElem decodes the object at i into an array element: null leaves it as
// it is.
func objElem[T any](d *decoder, i int, v *T, depth int, members func(*decoder, int, *T, int) (int, error)) (int, error) {
	i, ok, err := d.open(i)
	if !ok {
		return i, err
	}
	return members(d, i, v, depth+1)
}

func newBanner(st *bidState) *openrtb2.Banner { return st.banners.new() }
func newNative(st *bidState) *openrtb2.Native { return st.natives.new() }

// The request's single objects are pointed to by one field each: a fresh
// one (after null) reuses the pooled one, zeroed.
func newSite(st *bidState) *openrtb2.Site {
	st.site, st.used = openrtb2.Site{}, st.used|usedSite
	return &st.site
}

func newApp(st *bidState) *openrtb2.App {
	st.app, st.used = openrtb2.App{}, st.used|usedApp
	return &st.app
}

func newDevice(st *bidState) *openrtb2.Device {
	st.device, st.used = openrtb2.Device{}, st.used|usedDevice
	return &st.device
}

func newDeviceGeo(st *bidState) *openrtb2.Geo {
	st.deviceGeo, st.used = openrtb2.Geo{}, st.used|usedDeviceGeo
	return &st.deviceGeo
}

func newUser(st *bidState) *openrtb2.User {
	st.user, st.used = openrtb2.User{}, st.used|usedUser
	return &st.user
}

func newUserGeo(st *bidState) *openrtb2.Geo {
	st.userGeo, st.used = openrtb2.Geo{}, st.used|usedUserGeo
	return &st.userGeo
}

func newRegs(st *bidState) *openrtb2.Regs {
	st.regs, st.used = openrtb2.Regs{}, st.used|usedRegs
	return &st.regs
}

// The member readers below read an object's members from i (after its
// '{') to after its '}'; depth counts the containers around the members.

// request reads the top-level object at i.
func (d *decoder) request(i int) (int, error) {
	const depth = 1
	req := &d.st.req
	i++
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
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
			i, err = d.strField(i, &req.ID)
		case 2:
			i, err = array(d, i, &req.Imp, &d.st.imps, depth, impElem)
		case 3:
			i, err = objPtr(d, i, &req.Site, depth, newSite, (*decoder).site)
		case 4:
			i, err = objPtr(d, i, &req.App, depth, newApp, (*decoder).app)
		case 5:
			i, err = objPtr(d, i, &req.Device, depth, newDevice, (*decoder).device)
		case 6:
			i, err = objPtr(d, i, &req.User, depth, newUser, (*decoder).user)
		case 7:
			i, err = d.int64Field(i, &req.AT)
		case 8:
			i, err = d.int64Field(i, &req.TMax)
		case 9:
			i, err = d.strs(i, &req.BCat, depth)
		case 10:
			i, err = d.strs(i, &req.BAdv, depth)
		case 11:
			i, err = objPtr(d, i, &req.Regs, depth, newRegs, (*decoder).regs)
		default:
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func impElem(d *decoder, i int, imp *openrtb2.Imp, depth int) (int, error) {
	return objElem(d, i, imp, depth, (*decoder).imp)
}

func (d *decoder) imp(i int, imp *openrtb2.Imp, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
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
			i, err = d.strField(i, &imp.ID)
		case 2:
			i, err = objPtr(d, i, &imp.Banner, depth, newBanner, (*decoder).banner)
		case 3:
			i, err = objPtr(d, i, &imp.Native, depth, newNative, (*decoder).native)
		case 4:
			i, err = d.floatField(i, &imp.BidFloor)
		case 5:
			i, err = d.strField(i, &imp.BidFloorCur)
		case 6:
			i, err = d.int8Ptr(i, &imp.Secure)
		default:
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func (d *decoder) banner(i int, b *openrtb2.Banner, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
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
			i, err = array(d, i, &b.Format, &d.st.formats, depth, formatElem)
		case 2:
			i, err = d.int64Ptr(i, &b.W)
		case 3:
			i, err = d.int64Ptr(i, &b.H)
		default:
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func formatElem(d *decoder, i int, fm *openrtb2.Format, depth int) (int, error) {
	return objElem(d, i, fm, depth, (*decoder).format)
}

func (d *decoder) format(i int, fm *openrtb2.Format, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
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
			i, err = d.int64Field(i, &fm.W)
		case 2:
			i, err = d.int64Field(i, &fm.H)
		default:
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func (d *decoder) native(i int, n *openrtb2.Native, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
		}
		if string(k) == "request" || nativeFields.fold(k) == 1 {
			i, err = d.strField(i, &n.Request)
		} else {
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func (d *decoder) site(i int, s *openrtb2.Site, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
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
			i, err = d.strField(i, &s.Domain)
		case 2:
			i, err = d.strs(i, &s.Cat, depth)
		case 3:
			i, err = d.strField(i, &s.Page)
		default:
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func (d *decoder) app(i int, a *openrtb2.App, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
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
			i, err = d.strField(i, &a.Bundle)
		case 2:
			i, err = d.strs(i, &a.Cat, depth)
		default:
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func (d *decoder) device(i int, dev *openrtb2.Device, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
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
			i, err = objPtr(d, i, &dev.Geo, depth, newDeviceGeo, (*decoder).geo)
		case 2:
			i, err = d.int8Ptr(i, &dev.Lmt)
		case 3:
			var v int64
			var ok bool
			if v, i, ok, err = d.integer(i, 8); ok {
				dev.DeviceType = adcom1.DeviceType(v)
			}
		case 4:
			i, err = d.strField(i, &dev.OS)
		case 5:
			i, err = d.strField(i, &dev.IFA)
		default:
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func (d *decoder) geo(i int, g *openrtb2.Geo, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
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
			i, err = d.strField(i, &g.Country)
		case 2:
			i, err = d.strField(i, &g.Region)
		case 3:
			i, err = d.int64Field(i, &g.UTCOffset)
		default:
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func (d *decoder) user(i int, u *openrtb2.User, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
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
			i, err = d.strField(i, &u.ID)
		case 2:
			i, err = d.strField(i, &u.BuyerUID)
		case 3:
			i, err = objPtr(d, i, &u.Geo, depth, newUserGeo, (*decoder).geo)
		case 4:
			i, err = d.strField(i, &u.Consent)
		case 5:
			i, err = array(d, i, &u.EIDs, &d.st.eids, depth, eidElem)
		case 6:
			i, err = d.raw(i, &u.Ext, depth)
		default:
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func eidElem(d *decoder, i int, e *openrtb2.EID, depth int) (int, error) {
	return objElem(d, i, e, depth, (*decoder).eid)
}

func (d *decoder) eid(i int, e *openrtb2.EID, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
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
			i, err = d.strField(i, &e.Source)
		case 2:
			i, err = array(d, i, &e.UIDs, &d.st.uids, depth, uidElem)
		default:
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func uidElem(d *decoder, i int, u *openrtb2.UID, depth int) (int, error) {
	return objElem(d, i, u, depth, (*decoder).uid)
}

func (d *decoder) uid(i int, u *openrtb2.UID, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
		}
		if string(k) == "id" || uidFields.fold(k) == 1 {
			i, err = d.strField(i, &u.ID)
		} else {
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}

func (d *decoder) regs(i int, r *openrtb2.Regs, depth int) (int, error) {
	for first := true; ; first = false {
		var k []byte
		var more bool
		var err error
		if k, i, more, err = d.key(i, first); !more {
			return i, err
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
			i, err = d.int8Field(i, &r.COPPA)
		case 2:
			i, err = d.int8Ptr(i, &r.GDPR)
		case 3:
			i, err = d.strField(i, &r.USPrivacy)
		case 4:
			i, err = d.strField(i, &r.GPP)
		case 5:
			i, err = array(d, i, &r.GPPSID, &d.st.int8s, depth, int8Elem)
		case 6:
			i, err = d.raw(i, &r.Ext, depth)
		default:
			i, err = d.skip(i, depth)
		}
		if err != nil {
			return i, err
		}
	}
}
