package bidder

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"
)

// decodeCases are the corners of encoding/json's behaviour decode.go must
// copy. Each is checked against encoding/json by checkDecodeMatches; ok is
// what we expect encoding/json to say (so a change of its behaviour, or a
// case that tests nothing, shows).
var decodeCases = []struct {
	name string
	body string
	ok   bool
}{
	// top level
	{"null", `null`, true},
	{"null ws", " \t\r\nnull \n", true},
	{"empty object", `{}`, true},
	{"array", `[]`, false},
	{"string", `"x"`, false},
	{"number", `1`, false},
	{"true", `true`, false},
	{"two values", `{}{}`, false},
	{"trailing garbage", `{} x`, false},
	{"trailing null byte", "{}\x00", false},
	{"bom", "\xef\xbb\xbf{}", false},
	{"empty", ``, false},
	{"ws only", "  ", false},
	{"nul", `nul`, false},
	{"nullx", `nullx`, false},
	{"vertical tab", "{\"id\":\v\"x\"}", false},
	{"unclosed", `{"id":"x"`, false},
	{"trailing comma", `{"id":"x",}`, false},
	{"missing colon", `{"id" "x"}`, false},
	{"missing comma", `{"id":"x" "at":1}`, false},
	{"comma first", `{,"id":"x"}`, false},
	{"single quotes", `{'id':'x'}`, false},
	{"bare key", `{id:"x"}`, false},
	{"ws everywhere", " {\n\t\"id\" :\r \"x\" , \"imp\" : [ { \"id\" : \"1\" } , { } ] , \"ext\" : { \"a\" : [ 1 , { } , [ ] ] } } ", true},

	// every field read, set
	{"all fields", `{"id":"r","imp":[{"id":"1","banner":{"format":[{"w":300,"h":250}],"w":300,"h":250},"native":{"request":"{}"},"bidfloor":0.5,"bidfloorcur":"EUR","secure":1}],` +
		`"site":{"domain":"d.example","cat":["IAB1"],"page":"https://d.example/"},"app":{"bundle":"com.x","cat":["IAB2"]},` +
		`"device":{"geo":{"country":"KOR","region":"11","utcoffset":540},"lmt":0,"devicetype":4,"os":"iOS","ifa":"abc"},` +
		`"user":{"id":"u","buyeruid":"b","geo":{"country":"USA","region":"CA","utcoffset":-480},"consent":"CP","eids":[{"source":"s.example","uids":[{"id":"e"}]}],"ext":{"consent":"x"}},` +
		`"at":1,"tmax":120,"bcat":["IAB25"],"badv":["a.example"],"regs":{"coppa":0,"gdpr":1,"us_privacy":"1YNN","gpp":"DBAB","gpp_sid":[2,6],"ext":{"gdpr":1}}}`, true},

	// keys
	{"exact keys", `{"id":"x","at":2,"tmax":100}`, true},
	{"upper keys", `{"ID":"x","AT":2,"TMax":100,"IMP":[{"ID":"1","BIDFLOOR":1.5,"BidFloorCur":"EUR"}]}`, true},
	{"escaped key", `{"\u0069d":"x","\u0049MP":[{"\u0069\u0064":"1"}]}`, true},
	{"escaped key slash", `{"i\/d":"x","us\/privacy":"y"}`, true},
	{"long s", `{"ſite":{"domain":"d"},"regs":{"uſ_privacy":"1YNN","gpp_ſid":[2]},"imp":[{"id":"1","ſecure":1}]}`, true},
	{"kelvin and long s as escapes", `{"\u017fite":{"page":"p"},"user":{"eid\u017f":[{"\u017fource":"s","uid\u017f":[{"id":"u"}]}]}}`, true},
	{"kelvin sign key", `{"\u212aeep":1,"device":{"o\u212a":"x"}}`, true},
	{"dotless i does not fold", `{"ıd":"x","İD":"y"}`, true},
	{"invalid utf8 key", "{\"i\xffd\":\"x\",\"\xff\":1}", true},
	{"key with escaped quote", `{"i\"d":"x"}`, true},
	{"unknown keys", `{"id":"x","ua":"Mozilla","sua":{"browsers":[{"brand":"x","version":["1","2"]}]},"cur":["USD"],"wlang":null}`, true},
	{"control byte in key", "{\"i\x01d\":\"x\"}", false},

	// repeated keys
	{"repeated string", `{"id":"a","id":"b"}`, true},
	{"repeated object merges", `{"site":{"domain":"a","cat":["x"]},"site":{"page":"p"}}`, true},
	{"null resets object", `{"site":{"domain":"a"},"site":null,"site":{"page":"p"}}`, true},
	{"null resets nested object", `{"device":{"geo":{"country":"A"}},"device":null,"device":{"geo":{"region":"R"}}}`, true},
	{"nested merge", `{"device":{"geo":{"country":"A"},"os":"x"},"device":{"geo":{"region":"R"},"lmt":1},"device":{"lmt":null}}`, true},
	{"repeated imps merge elements", `{"imp":[{"id":"a","bidfloor":1},{"id":"b","secure":1}],"imp":[{"bidfloor":2}]}`, true},
	{"stale imp comes back", `{"imp":[{"id":"a"},{"id":"b","banner":{"w":1}},{"id":"c"}],"imp":[{"id":"x"}],"imp":[{"bidfloor":1},{"bidfloorcur":"EUR"},null,{}]}`, true},
	{"empty array drops stale", `{"imp":[{"id":"a"},{"id":"b"}],"imp":[],"imp":[{"bidfloor":1},{"bidfloor":2}]}`, true},
	{"null array drops stale", `{"imp":[{"id":"a"},{"id":"b"}],"imp":null,"imp":[{"bidfloor":1},{"bidfloor":2}]}`, true},
	{"null element keeps element", `{"imp":[{"id":"a"},{"id":"b"}],"imp":[null,null]}`, true},
	{"null element fresh", `{"imp":[null,{"id":"b"}]}`, true},
	{"stale strings", `{"bcat":["a","b","c"],"bcat":["x"],"bcat":["y",null,null,null]}`, true},
	{"stale strings across arrays", `{"bcat":["a","b"],"badv":["c"],"bcat":[null,null,null,"d"],"site":{"cat":["e"]},"badv":[null,"f"]}`, true},
	{"stale formats", `{"imp":[{"id":"1","banner":{"format":[{"w":1,"h":2},{"w":3,"h":4}]}},{"id":"2","banner":{"format":[{"w":5}]}}],"imp":[{"banner":{"format":[{"h":9}]}},{"banner":{"format":[{"h":8},{"w":7},null]}}]}`, true},
	{"stale formats same banner", `{"imp":[{"id":"1","banner":{"format":[{"w":1,"h":2},{"w":3,"h":4}],"format":[{"w":5}],"format":[null,null,{"w":6}]}}]}`, true},
	{"stale eids", `{"user":{"eids":[{"source":"a","uids":[{"id":"1"},{"id":"2"}]},{"source":"b"}],"eids":[{"uids":[null]}],"eids":[null,{"uids":[{"id":"3"}]}]}}`, true},
	{"stale gpp sid", `{"regs":{"gpp_sid":[1,2,3],"gpp_sid":[4],"gpp_sid":[null,null,5,null]}}`, true},
	{"repeated banner pointers", `{"imp":[{"id":"1","banner":{"w":300,"h":250},"banner":{"w":null},"banner":{"h":50}}]}`, true},
	{"repeated native", `{"imp":[{"id":"1","native":{"request":"a"},"native":{"ver":"1.2"},"native":null,"native":{}}]}`, true},
	{"repeated int8 pointers", `{"regs":{"gdpr":1,"gdpr":0},"device":{"lmt":1,"lmt":null},"imp":[{"id":"1","secure":0,"secure":1}]}`, true},
	{"repeated ext", `{"user":{"ext":{"consent":"a"},"ext":[1,2]},"regs":{"ext":{"gdpr":1},"ext":null}}`, true},
	{"many imps beyond the pool", `{"imp":[` + strings.Repeat(`{"id":"x","banner":{"format":[{"w":1},{"h":2}]}},`, 100) + `{"id":"y"}],"imp":[{},{},{}]}`, true},
	{"many strings beyond the pool", `{"bcat":[` + strings.Repeat(`"IAB1",`, 300) + `"z"],"badv":["a"],"bcat":["q"],"bcat":[` + strings.Repeat(`null,`, 400) + `"r"]}`, true},

	// null
	{"null scalars", `{"id":null,"at":null,"tmax":null,"imp":[{"id":"1","bidfloor":null,"bidfloorcur":null,"secure":null}]}`, true},
	{"null objects", `{"site":null,"app":null,"device":null,"user":null,"regs":null,"imp":null,"bcat":null}`, true},
	{"null after value keeps scalars", `{"id":"a","id":null,"at":2,"at":null,"regs":{"coppa":1,"coppa":null}}`, true},
	{"null ext", `{"user":{"ext":null},"regs":{"ext":null}}`, true},
	{"null in nested", `{"imp":[{"id":"1","banner":{"format":null,"w":null}}],"user":{"eids":[{"uids":null}],"geo":null}}`, true},

	// empty arrays
	{"empty arrays", `{"imp":[],"bcat":[],"badv":[],"site":{"cat":[]},"regs":{"gpp_sid":[]},"user":{"eids":[{"uids":[]}]}}`, true},
	{"empty formats", `{"imp":[{"id":"1","banner":{"format":[]}}]}`, true},

	// raw ext
	{"raw ext keeps bytes", "{\"user\":{\"ext\": {\"consent\" : \"a\\u0041\" ,\n\"x\":[1, 2.5e3]} },\"regs\":{\"ext\":\"s\"}}", true},
	{"raw ext scalars", `{"user":{"ext":1.5},"regs":{"ext":true}}`, true},
	{"raw ext invalid", `{"user":{"ext":{"a":}}}`, false},
	{"raw ext unterminated", `{"user":{"ext":[1,2}}`, false},

	// strings
	{"escapes", `{"id":"a\"b\\c\/d\be\ff\ng\rh\ti\u0000j\u00e9k\u20ACl"}`, true},
	{"surrogate pair", `{"id":"\ud83d\ude00"}`, true},
	{"lone high", `{"id":"\ud83dx"}`, true},
	{"lone high at end", `{"id":"\ud83d"}`, true},
	{"lone low", `{"id":"\ude00x"}`, true},
	{"high then non low escape", `{"id":"\ud83d\u0041"}`, true},
	{"high high low", `{"id":"\ud83d\ud83d\ude00"}`, true},
	{"high then other escape", `{"id":"\ud83d\n"}`, true},
	{"invalid utf8", "{\"id\":\"a\xffb\xc0\xafc\xed\xa0\x80d\"}", true},
	{"truncated utf8 at end", "{\"id\":\"a\xe2\x82\"}", true},
	{"valid utf8", `{"id":"é☃😀` + "\uFFFD" + `"}`, true},
	{"utf8 in skipped", "{\"ua\":\"\xff\xfe\",\"id\":\"x\"}", true},
	{"raw control", "{\"id\":\"a\x1fb\"}", false},
	{"raw newline", "{\"id\":\"a\nb\"}", false},
	{"raw tab", "{\"id\":\"a\tb\"}", false},
	{"raw control skipped", "{\"ua\":\"a\x01b\"}", false},
	{"del is fine", "{\"id\":\"a\x7fb\"}", true},
	{"bad escape", `{"id":"\x"}`, false},
	{"single quote escape", `{"id":"\'"}`, false},
	{"short unicode escape", `{"id":"\u12"}`, false},
	{"bad unicode escape", `{"id":"\u12g4"}`, false},
	{"bad unicode after high", `{"id":"\ud83d\u12g4"}`, false},
	{"bad escape skipped", `{"ua":"\q"}`, false},
	{"unterminated string", `{"id":"abc`, false},
	{"unterminated escape", `{"id":"abc\`, false},
	{"long string", `{"id":"` + strings.Repeat("abcdefgh", 40) + `","site":{"page":"` + strings.Repeat("é", 50) + `\n"}}`, true},

	// numbers
	{"ints", `{"at":-0,"tmax":9223372036854775807,"device":{"devicetype":127,"geo":{"utcoffset":-9223372036854775808}}}`, true},
	{"int overflow", `{"tmax":9223372036854775808}`, false},
	{"int underflow", `{"tmax":-9223372036854775809}`, false},
	{"int long overflow", `{"tmax":123456789012345678901234567890}`, false},
	{"int8 bounds", `{"regs":{"coppa":-128,"gdpr":127},"device":{"lmt":-1,"devicetype":0}}`, true},
	{"int8 overflow", `{"regs":{"coppa":128}}`, false},
	{"int8 underflow", `{"regs":{"gdpr":-129}}`, false},
	{"devicetype overflow", `{"device":{"devicetype":300}}`, false},
	{"gpp sid overflow", `{"regs":{"gpp_sid":[1,200]}}`, false},
	{"fraction into int", `{"at":1.5}`, false},
	{"exponent into int", `{"at":1e3}`, false},
	{"zero fraction into int", `{"at":1.0}`, false},
	{"int banner w", `{"imp":[{"id":"1","banner":{"w":1.5}}]}`, false},
	{"floats", `{"imp":[{"id":"1","bidfloor":-0.0},{"id":"2","bidfloor":1E+2},{"id":"3","bidfloor":0.1e-2},{"id":"4","bidfloor":12345678901234567890123}]}`, true},
	{"float overflow", `{"imp":[{"id":"1","bidfloor":1e400}]}`, false},
	{"float underflow", `{"imp":[{"id":"1","bidfloor":1e-400}]}`, true},
	{"float max", `{"imp":[{"id":"1","bidfloor":1.7976931348623157e308}]}`, true},
	{"float in skipped huge", `{"ext":1e99999}`, true},
	{"leading zero", `{"at":01}`, false},
	{"leading zero skipped", `{"ext":01}`, false},
	{"leading zero float", `{"imp":[{"id":"1","bidfloor":00.5}]}`, false},
	{"plus sign", `{"at":+1}`, false},
	{"bare minus", `{"at":-}`, false},
	{"minus space", `{"at":- 1}`, false},
	{"dot first", `{"imp":[{"id":"1","bidfloor":.5}]}`, false},
	{"dot last", `{"imp":[{"id":"1","bidfloor":5.}]}`, false},
	{"exponent empty", `{"ext":1e}`, false},
	{"exponent sign only", `{"ext":1e+}`, false},
	{"hex", `{"at":0x10}`, false},
	{"nan", `{"imp":[{"id":"1","bidfloor":NaN}]}`, false},
	{"infinity", `{"imp":[{"id":"1","bidfloor":Infinity}]}`, false},

	// type errors
	{"number into string", `{"id":1}`, false},
	{"bool into string", `{"id":true}`, false},
	{"object into string", `{"id":{}}`, false},
	{"array into string", `{"id":[]}`, false},
	{"string into int", `{"at":"1"}`, false},
	{"bool into int", `{"at":false}`, false},
	{"string into float", `{"imp":[{"id":"1","bidfloor":"1"}]}`, false},
	{"string into pointer int", `{"regs":{"gdpr":"1"}}`, false},
	{"object into array", `{"imp":{}}`, false},
	{"string into array", `{"bcat":"IAB1"}`, false},
	{"array into object", `{"site":[]}`, false},
	{"string into object", `{"device":"x"}`, false},
	{"number in string array", `{"bcat":["a",1]}`, false},
	{"string in int array", `{"regs":{"gpp_sid":["1"]}}`, false},
	{"array in imp array", `{"imp":[[]]}`, false},
	{"string in imp array", `{"imp":["x"]}`, false},
	{"true into object", `{"user":true}`, false},
	{"type error then syntax error", `{"id":1,"x":}`, false},
	{"unknown field type is fine", `{"id":"x","device":{"ua":5,"w":"wide"},"imp":[{"id":"1","tagid":7}]}`, true},

	// nesting
	{"depth limit ok", `{"ext":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`, true},
	{"depth limit exceeded", `{"ext":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, false},
	{"depth limit objects", `{"ext":` + strings.Repeat(`{"a":`, 9999) + "1" + strings.Repeat("}", 9999) + `}`, true},
	{"depth limit objects exceeded", `{"ext":` + strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000) + `}`, false},
	{"depth limit in imp ext", `{"imp":[{"id":"1","ext":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `}]}`, true},
	{"depth limit in imp ext exceeded", `{"imp":[{"id":"1","ext":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}]}`, false},
	{"depth limit in user ext", `{"user":{"ext":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}}`, true},
	{"depth limit in user ext exceeded", `{"user":{"ext":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}}`, false},
	{"depth limit in format ext", `{"imp":[{"banner":{"format":[{"ext":` + strings.Repeat("[", 9994) + strings.Repeat("]", 9994) + `}]}}]}`, true},
	{"depth limit in format ext exceeded", `{"imp":[{"banner":{"format":[{"ext":` + strings.Repeat("[", 9995) + strings.Repeat("]", 9995) + `}]}}]}`, false},
	{"deep but unbalanced", `{"ext":` + strings.Repeat("[", 300) + strings.Repeat("]", 299) + `}`, false},
	{"mismatched brackets", `{"ext":[{]}`, false},
	{"mismatched brackets 2", `{"ext":{"a":[}]}`, false},
	{"mixed deep", `{"ext":` + strings.Repeat(`[{"a":`, 200) + "null" + strings.Repeat("}]", 200) + `}`, true},
	{"mixed deep wrong close", `{"ext":` + strings.Repeat(`[{"a":`, 200) + "null" + strings.Repeat("]}", 200) + `}`, false},
	{"empty containers deep", `{"ext":[[],{},[{}],{"a":[]},[[[]]]]}`, true},
	// found while writing the skipper: an empty container inside an object
	// must give the object back its kind for the members after it
	{"empty container then member", `{"ext":{"a":[],"b":{},"c":[1],"d":{"e":[]}},"id":"x"}`, true},
	{"empty container then element", `{"ext":[{"a":{}},[],{},"s"],"id":"x"}`, true},
	{"trailing comma array skipped", `{"ext":[1,]}`, false},
	{"trailing comma object skipped", `{"ext":{"a":1,}}`, false},
	{"trailing comma imps", `{"imp":[{"id":"1"},]}`, false},
	{"trailing comma strings", `{"bcat":["a",]}`, false},
	{"missing value skipped", `{"ext":{"a"}}`, false},
	{"literals skipped", `{"ext":[true,false,null,tru]}`, false},
	{"literals skipped ok", `{"ext":[true,false,null]}`, true},
}

// TestDecodeCases: the corner cases above, each against encoding/json.
func TestDecodeCases(t *testing.T) {
	for _, c := range decodeCases {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			if err := json.Unmarshal(body, &wireRequest{}); (err == nil) != c.ok {
				t.Fatalf("encoding/json says %v, the case expects ok=%v", err, c.ok)
			}
			checkDecodeMatches(t, body)
		})
	}
}

// TestDecodeValues spells out a few of encoding/json's behaviours the
// cases above rely on, so they are visible here and not only in the oracle.
func TestDecodeValues(t *testing.T) {
	dec := func(body string) *openrtb2.BidRequest {
		t.Helper()
		st := newBidState()
		if err := decodeRequest([]byte(body), st); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return &st.req
	}
	r := dec(`{"imp":[{"id":"a"},{"id":"b","bidfloor":2}],"imp":[{"bidfloor":1}],"imp":[{},{}]}`)
	if len(r.Imp) != 2 || r.Imp[0].ID != "a" || r.Imp[0].BidFloor != 1 || r.Imp[1].ID != "b" || r.Imp[1].BidFloor != 2 {
		t.Errorf("stale imps: %+v", r.Imp)
	}
	r = dec(`{"bcat":["a","b"],"bcat":[],"bcat":[null,null]}`)
	if !reflect.DeepEqual(r.BCat, []string{"", ""}) {
		t.Errorf("empty array drops stale strings: %q", r.BCat)
	}
	r = dec(`{"bcat":[],"badv":null,"user":{"ext":null}}`)
	if r.BCat == nil || len(r.BCat) != 0 || r.BAdv != nil || string(r.User.Ext) != "null" {
		t.Errorf("empty/null: bcat %#v badv %#v ext %q", r.BCat, r.BAdv, r.User.Ext)
	}
	r = dec(`{"ſite":{"domain":"a"},"Site":{"PAGE":"p"},"\u017fite":{"cat":["c"]}}`)
	if r.Site == nil || r.Site.Domain != "a" || r.Site.Page != "p" || len(r.Site.Cat) != 1 {
		t.Errorf("folded keys merge: %+v", r.Site)
	}
	r = dec(`{"id":"\ud800\udc00\ud800x\udc00` + "\xff" + `"}`)
	if r.ID != "\U00010000\uFFFDx\uFFFD\uFFFD" {
		t.Errorf("surrogates and invalid bytes: %q", r.ID)
	}
	r = dec(`{"user":{"ext": {"a" : 1} }}`)
	if string(r.User.Ext) != `{"a" : 1}` {
		t.Errorf("raw ext: %q", r.User.Ext)
	}
}

// TestSkipMatchesValid: the skipping scanner accepts exactly the JSON
// values json.Valid accepts.
func TestSkipMatchesValid(t *testing.T) {
	for _, c := range decodeCases {
		checkSkip(t, []byte(c.body))
	}
	for _, s := range []string{`[]`, `[1,2,{"a":[]}]`, `"x"`, `1.5e3`, `-0`, `{"a":{"b":{}}}`, `[`, `]`, `{"a":1]`, `[1}`, `["a":1]`, `{"a",1}`, `[,1]`, `[1,,2]`, `{"a":1,,"b":2}`, `tru`, `falsee`, `[nul]`} {
		checkSkip(t, []byte(s))
	}
}

func checkSkip(t testing.TB, body []byte) {
	t.Helper()
	d := decoder{data: body, st: newBidState()}
	i, err := d.skip(ws(body, 0), 0)
	if err == nil {
		if i = ws(body, i); i != len(body) {
			err = d.syntaxErr(i)
		}
	}
	if want := json.Valid(body); want != (err == nil) {
		t.Fatalf("%q: json.Valid %v, skip error %v", body, want, err)
	}
}

// FuzzSkip: the skipping scanner against json.Valid.
func FuzzSkip(f *testing.F) {
	for _, c := range decodeCases {
		if len(c.body) < 1000 {
			f.Add([]byte(c.body))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkSkip(t, body) })
}

// TestObjPool: objects and slices come from the pool until it is full, then
// from the heap; a slice keeps its elements as it grows, in place or not.
func TestObjPool(t *testing.T) {
	p := newObjPool[int](6)
	a := p.grow(nil)
	a[0] = 1
	a = p.grow(a)
	a[1] = 2
	if len(p.buf) != 2 || &a[0] != &p.buf[0] {
		t.Fatalf("last slice did not grow in place: pool %v, a %v", p.buf, a)
	}
	b := p.grow(nil)
	b[0] = 3
	a = p.grow(a) // not the last any more: copied to the end
	a[2] = 4
	if !reflect.DeepEqual(a, []int{1, 2, 4}) || b[0] != 3 || p.over || &a[0] != &p.buf[3] {
		t.Fatalf("a %v b %v over %v pool %v", a, b, p.over, p.buf)
	}
	a = p.grow(a) // beyond the pool
	if !reflect.DeepEqual(a, []int{1, 2, 4, 0}) || !p.over {
		t.Fatalf("a %v over %v", a, p.over)
	}
	if x := p.new(); *x != 0 {
		t.Fatal("new beyond the pool")
	}
	p.reset(8)
	if cap(p.buf) != 8 || len(p.buf) != 0 || p.over {
		t.Fatalf("after reset: cap %d len %d over %v", cap(p.buf), len(p.buf), p.over)
	}
	p.reset(8)
	if cap(p.buf) != 8 {
		t.Fatalf("reset without overflow changed the pool: cap %d", cap(p.buf))
	}
	for i := range 10 {
		*p.new() = i + 1
	}
	p.reset(8)
	if cap(p.buf) != 8 || p.buf[:cap(p.buf)][7] != 0 {
		t.Fatalf("pool at its limit: cap %d, %v", cap(p.buf), p.buf[:cap(p.buf)])
	}
}

// TestDecodeReuse: a pooled state decodes one request after another without
// leaking fields from the previous one.
func TestDecodeReuse(t *testing.T) {
	st := newBidState()
	bodies := []string{
		`{"id":"a","imp":[{"id":"1","banner":{"w":1,"format":[{"w":1}]},"secure":1}],"site":{"domain":"d","cat":["c"]},"device":{"geo":{"country":"K"},"lmt":1},"user":{"ext":{"x":1},"eids":[{"source":"s","uids":[{"id":"u"}]}]},"regs":{"gdpr":1,"gpp_sid":[2]},"bcat":["b"]}`,
		`{"id":"b","imp":[{"id":"2"}],"site":{},"device":{},"user":{},"regs":{}}`,
		`{"id":"c","imp":[{"id":"3","banner":{}},{"id":"4","native":{}}],"bcat":[null],"user":{"eids":[{}]}}`,
	}
	for range 3 {
		for _, b := range bodies {
			if err := decodeRequest([]byte(b), st); err != nil {
				t.Fatal(err)
			}
			var w wireRequest
			if err := json.Unmarshal([]byte(b), &w); err != nil {
				t.Fatal(err)
			}
			want := newBidState()
			w.copyInto(want)
			if !reflect.DeepEqual(want.req, st.req) {
				t.Fatalf("%s after reuse:\nwant %+v\n got %+v", b, want.req, st.req)
			}
			st.reset()
		}
	}
}
