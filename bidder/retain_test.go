package bidder

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"unsafe"
)

// A decoded request borrows its body and the answer's strings live in the
// pooled state's arenas (decode.go, "Strings"). Once the state is reset and
// back in the pool, nothing in it may still point into the body or at the
// strings held in its arenas: the body belongs to fasthttp again, and the
// arenas are overwritten by the next request.

// TestResetDropsRequest decodes, decides and encodes each request shape
// through one pooled state, then walks the whole state after reset looking
// for any string, slice or pointer into the body or the arenas' bytes. The
// walk is checked to find the references before reset, so it cannot pass by
// looking nowhere.
func TestResetDropsRequest(t *testing.T) {
	f := benchFixture(t)
	st := newBidState()
	for _, sh := range benchShapes {
		body := bytes.Clone(benchBody(t, sh.file, sh.buyer))
		if err := decodeRequest(body, st); err != nil {
			t.Fatalf("%s: %v", sh.name, err)
		}
		resp, reason := f.srv.decideFor(&st.req, nil, &st.ans)
		if (resp != nil) != (sh.status == 200) {
			t.Fatalf("%s: response %v (%s), want status %d", sh.name, resp != nil, reason, sh.status)
		}
		if resp != nil {
			st.out = appendResponse(st.out[:0], resp)
		}
		held := []span{of(body)}
		if cap(st.ans.arena) > 0 {
			held = append(held, of(st.ans.arena[:cap(st.ans.arena)]))
		}
		if where := refInto(st, held); where == "" {
			t.Fatalf("%s: before reset, the walk found no reference to the body: it looks in the wrong place", sh.name)
		}
		st.reset()
		if where := refInto(st, held); where != "" {
			t.Errorf("%s: after reset, %s still points into the request's bytes", sh.name, where)
		}
	}
}

// span is a range of memory [lo, hi).
type span struct{ lo, hi uintptr }

func of(b []byte) span {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return span{p, p + uintptr(len(b))}
}

// ownBuffers are bidState's storage: they hold the bytes, they do not
// reference a request.
var ownBuffers = map[string]bool{".scratch": true, ".out": true, ".ans.arena": true, ".dec.data": true}

// refInto returns the path of the first string, slice or pointer reachable
// from st (unexported fields included) that points into one of spans, or "".
func refInto(st *bidState, spans []span) string {
	in := func(p uintptr) bool {
		for _, s := range spans {
			if p >= s.lo && p < s.hi {
				return true
			}
		}
		return false
	}
	seen := map[uintptr]bool{uintptr(unsafe.Pointer(st)): true} // st.dec.st points back
	var walk func(v reflect.Value, path string) string
	walk = func(v reflect.Value, path string) string {
		switch v.Kind() {
		case reflect.String:
			if s := v.String(); s != "" && in(uintptr(unsafe.Pointer(unsafe.StringData(s)))) {
				return path
			}
		case reflect.Slice:
			if ownBuffers[path] || v.Cap() == 0 {
				return ""
			}
			if in(v.Pointer()) {
				return path
			}
			full := v.Slice3(0, v.Cap(), v.Cap()) // stale elements beyond len count too
			for i := 0; i < full.Len(); i++ {
				if w := walk(full.Index(i), fmt.Sprintf("%s[%d]", path, i)); w != "" {
					return w
				}
			}
		case reflect.Array:
			for i := 0; i < v.Len(); i++ {
				if w := walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); w != "" {
					return w
				}
			}
		case reflect.Pointer:
			if v.IsNil() || seen[v.Pointer()] {
				return ""
			}
			if in(v.Pointer()) {
				return path
			}
			seen[v.Pointer()] = true
			return walk(v.Elem(), path)
		case reflect.Interface:
			if !v.IsNil() {
				return walk(v.Elem(), path)
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				if w := walk(it.Key(), path+"[key]"); w != "" {
					return w
				}
				if w := walk(it.Value(), path+"[value]"); w != "" {
					return w
				}
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				if w := walk(v.Field(i), path+"."+v.Type().Field(i).Name); w != "" {
					return w
				}
			}
		}
		return ""
	}
	return walk(reflect.ValueOf(st).Elem(), "")
}
