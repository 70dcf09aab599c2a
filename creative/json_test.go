package creative

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// marshalNoHTML is encoding/json's quoting with HTML escaping off.
func marshalNoHTML(t testing.TB, s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestAppendJSONString(t *testing.T) {
	long := strings.Repeat("<div class=\"chaser-ad\" style=\"width:300px\">plain text run</div>", 20)
	for _, s := range []string{
		"", "a", "abcdefgh", "abcdefghi", `"`, `\`, "\x00", "\x1f", "\x7f", "é", "\xff", "\xe2\x80", "\u2028", "\u2029",
		"12345678\"", "1234567\"8", "\"1234567", "ab\\cdefghijklmnop", "plain ascii text that is long enough to take the fast path",
		"tab\there\nnewline\r\f\b", "€€€€€€€€", "12345678€", "1234567\xff89", long, long + "\xff" + long,
		"<script>&amp;</script>",
	} {
		if got, want := string(AppendJSONString([]byte("x"), s)), "x"+marshalNoHTML(t, s); got != want {
			t.Errorf("%q:\ngot  %s\nwant %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("<a href=\"https://x.test/?a=1&b=2\">\u00e9</a>")
	f.Add("12345678\x0012345678\"")
	f.Add("\xed\xa0\x80 surrogate half, \u2028")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(AppendJSONString(nil, s)), marshalNoHTML(t, s); got != want {
			t.Fatalf("%q:\ngot  %s\nwant %s", s, got, want)
		}
	})
}

func BenchmarkAppendJSONString(b *testing.B) {
	for _, single := range []bool{false, true} {
		name := "double-quoted"
		if single {
			name = "single-quoted"
		}
		b.Run(name, func(b *testing.B) { benchAppendJSONString(b, single) })
	}
}

func benchAppendJSONString(b *testing.B, single bool) {
	s := strings.Repeat(`<a class="chaser-item" target="_blank" rel="noopener" style="flex:1;text-decoration:none;color:inherit" href="https://bid.example/click?a=adv&amp;c=cmp">`, 10)
	if single {
		s = strings.ReplaceAll(s, `"`, `'`)
	}
	b.SetBytes(int64(len(s)))
	var buf []byte
	for b.Loop() {
		buf = AppendJSONString(buf[:0], s)
	}
}
