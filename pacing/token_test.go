package pacing

import (
	"bytes"
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	s := NewSigner(testSecret)
	cases := []Token{
		{Campaign: "cmp_1", AuctionID: "req-1", ImpID: "1", BidMicros: 2_500_000, Unix: 1_790_000_000, User: [16]byte{1, 2, 3}},
		{Campaign: "cmp_2", AuctionID: strings.Repeat("a", 256), ImpID: "", BidMicros: 0, Unix: 0, FirstPrice: true},
		{Campaign: "c", AuctionID: "ü-ñ\x00", ImpID: "imp/2?x=y", BidMicros: 1 << 40, Unix: 1 << 35, User: [16]byte{255, 255}},
	}
	for _, tc := range cases {
		enc := s.Append(nil, &tc)
		got, err := s.Parse(string(enc))
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if got != tc {
			t.Fatalf("round trip: got %+v, want %+v", got, tc)
		}
		if bytes.ContainsAny(enc, "+/=&?#% ") {
			t.Fatalf("token %q is not URL-safe", enc)
		}
	}
	// Over-long fields are cut, not refused.
	long := Token{Campaign: "c", AuctionID: strings.Repeat("x", 1000)}
	got, err := s.Parse(string(s.Append(nil, &long)))
	if err != nil || len(got.AuctionID) != maxTokenField {
		t.Fatalf("long auction id: %v, len %d", err, len(got.AuctionID))
	}
}

func TestTokenTamper(t *testing.T) {
	s := NewSigner(testSecret)
	tok := Token{Campaign: "cmp_1", AuctionID: "req-1", ImpID: "1", BidMicros: 2_500_000, Unix: 1_790_000_000}
	enc := s.Append(nil, &tok)
	raw, _ := base64.RawURLEncoding.DecodeString(string(enc))
	for i := range raw {
		for _, bit := range []byte{1, 0x80} {
			b := append([]byte(nil), raw...)
			b[i] ^= bit
			if _, err := s.ParseBytes([]byte(base64.RawURLEncoding.EncodeToString(b))); err == nil {
				t.Fatalf("flipping bit %#x of byte %d went unnoticed", bit, i)
			}
		}
	}
	if _, err := NewSigner([]byte("another secret, same length......")).ParseBytes(enc); err != ErrBadSig {
		t.Fatalf("other key: %v, want ErrBadSig", err)
	}
	for _, bad := range []string{"", "!!!", "AAAA", strings.Repeat("A", MaxTokenLen+1), string(enc[:len(enc)-1]), string(enc) + "A"} {
		if _, err := s.Parse(bad); err == nil {
			t.Fatalf("%q parsed", bad)
		}
	}
}

// FuzzParseToken: no input panics, and whatever parses re-encodes to itself.
func FuzzParseToken(f *testing.F) {
	s := NewSigner(testSecret)
	good := Token{Campaign: "cmp_1", AuctionID: "req-1", ImpID: "1", BidMicros: 2_500_000, Unix: 1_790_000_000, FirstPrice: true}
	f.Add(string(s.Append(nil, &good)))
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("${AUCTION_PRICE}")
	f.Fuzz(func(t *testing.T, in string) {
		tok, err := s.Parse(in)
		if err != nil {
			return
		}
		again, err := s.Parse(string(s.Append(nil, &tok)))
		if err != nil || again != tok {
			t.Fatalf("re-encoding %+v: %+v, %v", tok, again, err)
		}
	})
}

func TestParsePrice(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1.5", 1_500_000, true},
		{"0", 0, true},
		{"2", 2_000_000, true},
		{"0.000001", 1, true},
		{"0.0000005", 1, true}, // rounds half up
		{"0.0000004", 0, true},
		{"12.3456789", 12_345_679, true},
		{".5", 500_000, true},
		{"5.", 5_000_000, true},
		{"1000000000", 1_000_000_000_000_000, true},
		{"1000000001", 0, false},
		{"", 0, false},
		{".", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1e3", 0, false},
		{"1.2.3", 0, false},
		{" 1", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"${AUCTION_PRICE}", 0, false},
		{"1,5", 0, false},
		{strings.Repeat("0", 65), 0, false},
	}
	for _, tc := range cases {
		got, ok := ParsePrice([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParsePrice(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParsePrice: never panics, never negative, and agrees with
// strconv.ParseFloat to the micro on what it accepts.
func FuzzParsePrice(f *testing.F) {
	for _, s := range []string{"1.5", "0", "0.0000005", "999999999.999999", "1e3", "-0", "", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := ParsePrice([]byte(in))
		if !ok {
			return
		}
		if got < 0 || got > MaxPriceUnits*1_000_000+1 {
			t.Fatalf("%q: %d out of range", in, got)
		}
		fl, err := strconv.ParseFloat(in, 64)
		if err != nil {
			t.Fatalf("%q accepted but not a float: %v", in, err)
		}
		if d := math.Abs(fl*1e6 - float64(got)); d > 1+fl*1e-9 {
			t.Fatalf("%q: %d micros, float says %f", in, got, fl*1e6)
		}
	})
}

func TestRates(t *testing.T) {
	r := DefaultRates
	if v, ok := r.Convert(1_000_000, "USD", "KRW"); !ok || v != 1_380_000_000 {
		t.Fatalf("1 USD in KRW = %d, %v", v, ok)
	}
	if v, ok := r.Convert(1_380_000_000, "KRW", "USD"); !ok || v != 1_000_000 {
		t.Fatalf("1380 KRW in USD = %d, %v", v, ok)
	}
	if _, ok := r.Convert(1, "XYZ", "USD"); ok {
		t.Fatal("unknown currency converted")
	}
	if v, ok := r.Convert(5, "XYZ", "XYZ"); !ok || v != 5 {
		t.Fatal("same currency must pass through")
	}
	p, err := ParseRates("eur=0.9, KRW=1400")
	if err != nil || p["EUR"] != 0.9 || p["KRW"] != 1400 || p["USD"] != 1 {
		t.Fatalf("ParseRates: %v %v", p, err)
	}
	for _, bad := range []string{"EUR", "EUR=-1", "EUR=0", "EURO=1", "EUR=x", "EUR=NaN", "EUR=Inf"} {
		if _, err := ParseRates(bad); err == nil {
			t.Errorf("ParseRates(%q) accepted", bad)
		}
	}
}
