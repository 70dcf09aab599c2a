package audience

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		raw, want string // want: the normalised address before hashing; "" = invalid
	}{
		{"alice@example.com", "alice@example.com"},
		{"  Alice.Smith@Example.COM \t", "alice.smith@example.com"},
		// Dots and +tags are kept, as Google Customer Match and Meta do.
		{"john.doe+shoes@gmail.com", "john.doe+shoes@gmail.com"},
		{"JOHNDOE@GOOGLEMAIL.COM", "johndoe@googlemail.com"},
		{"\ufeffbom@example.com", "bom@example.com"},
		{"Élodie@exemple.fr", "élodie@exemple.fr"},
		{"o'brien@example.ie", "o'brien@example.ie"},
		{"", ""},
		{"   ", ""},
		{"no-at-sign.example.com", ""},
		{"two@@example.com", ""},
		{"a@b@example.com", ""},
		{"@example.com", ""},
		{"alice@", ""},
		{"alice@localhost", ""},
		{"alice@.example.com", ""},
		{"alice@example.com.", ""},
		{"alice@example..com", ""},
		{".alice@example.com", ""},
		{"alice.@example.com", ""},
		{"alice smith@example.com", ""},
		{"alice@example.com,bob@example.com", ""},
		{"<alice@example.com>", ""},
		{"\"alice\"@example.com", ""},
		{strings.Repeat("a", 65) + "@example.com", ""},
		{"al\x00ice@example.com", ""},
		{"\xff\xfe@example.com", ""},
	}
	for _, tt := range tests {
		kind, got, err := Normalize(IDEmail, tt.raw, "")
		if tt.want == "" {
			if err == nil {
				t.Errorf("Normalize(email, %q) = %q, want an error", tt.raw, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("Normalize(email, %q): %v", tt.raw, err)
			continue
		}
		if kind != IDEmailSHA256 || got != sha(tt.want) {
			t.Errorf("Normalize(email, %q) = %v %s, want email_sha256 of %q", tt.raw, kind, got, tt.want)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		raw, cc, want string // want: E.164; "" = invalid
	}{
		// Korea, default country 82: trunk 0 dropped.
		{"010-1234-5678", "82", "+821012345678"},
		{"010 1234 5678", "82", "+821012345678"},
		{"(02) 123-4567", "82", "+8221234567"},
		{"031-1234-5678", "82", "+823112345678"},
		{"1012345678", "82", "+821012345678"},
		{"821012345678", "82", "+821012345678"},
		{"+82 10-1234-5678", "82", "+821012345678"},
		{"+82 010-1234-5678", "", "+821012345678"}, // the trunk 0 written after +82
		{"+82 (0)10 1234 5678", "1", "+821012345678"},
		{"0082 10 1234 5678", "82", "+821012345678"},
		{"+82 10-123", "82", ""},         // too short for Korea
		{"+82 10 1234 5678 999", "", ""}, // too long for Korea
		{"010-1234-5678", "", ""},        // national, no default: +1 010… is not NANP
		// United States, default country 1.
		{"(212) 555-0100", "1", "+12125550100"},
		{"212.555.0100", "", "+12125550100"},
		{"1-212-555-0100", "1", "+12125550100"},
		{"+1 212 555 0100", "82", "+12125550100"},
		{"011 82 10 1234 5678", "1", "+821012345678"},
		{"(112) 555-0100", "1", ""}, // area code cannot start with 1
		{"555-0100", "1", ""},       // no area code
		{"+1 212 555 01000", "", ""},
		// Elsewhere.
		{"+44 (0)20 7946 0958", "", "+442079460958"},
		{"020 7946 0958", "44", "+442079460958"},
		{"+39 06 1234 5678", "", "+390612345678"}, // Italy keeps its 0
		{"06 1234 5678", "39", "+390612345678"},
		{"+81 90-1234-5678", "", "+819012345678"},
		{"090-1234-5678", "+81", "+819012345678"},
		// Malformed.
		{"", "82", ""},
		{"+", "82", ""},
		{"010-CALL-NOW", "82", ""},
		{"010-1234-5678 ext. 12", "82", ""},
		{"010-1234-5678#12", "82", ""},
		{"+82+10-1234-5678", "", ""},
		{"1234", "82", ""},
		{"+0 123 456 789", "", ""},
		{"0101234567812345678901234567890123", "82", ""},
		{"010-1234-5678", "KR", ""}, // the default country must be a calling code
	}
	for _, tt := range tests {
		kind, got, err := Normalize(IDPhone, tt.raw, tt.cc)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Normalize(phone, %q, %q) = %s, want an error", tt.raw, tt.cc, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("Normalize(phone, %q, %q): %v", tt.raw, tt.cc, err)
			continue
		}
		if kind != IDPhoneSHA256 || got != sha(tt.want) {
			e164, _ := normalizePhone(nil, []byte(tt.raw), tt.cc)
			t.Errorf("Normalize(phone, %q, %q) = E.164 %q, want %q", tt.raw, tt.cc, e164, tt.want)
		}
	}
}

func TestNormalizeOthers(t *testing.T) {
	h := sha("alice@example.com")
	tests := []struct {
		t        IDType
		raw      string
		wantKind IDType
		want     string // "" = invalid
		err      error
	}{
		{IDEmailSHA256, h, IDEmailSHA256, h, nil},
		{IDEmailSHA256, "  " + strings.ToUpper(h) + "\r", IDEmailSHA256, h, nil},
		{IDEmailSHA256, h[:63], 0, "", ErrBadHash},
		{IDEmailSHA256, h + "0", 0, "", ErrBadHash},
		{IDEmailSHA256, h[:63] + "g", 0, "", ErrBadHash},
		{IDEmailSHA256, "alice@example.com", 0, "", ErrBadHash},
		{IDPhoneSHA256, sha("+821012345678"), IDPhoneSHA256, sha("+821012345678"), nil},
		// An e-mail or phone column may hold digests already.
		{IDEmail, strings.ToUpper(h), IDEmailSHA256, h, nil},
		{IDPhone, h, IDPhoneSHA256, h, nil},
		{IDMAID, "6D92078A-8246-4BA4-AE5B-76104861E7DC", IDMAID, "6d92078a-8246-4ba4-ae5b-76104861e7dc", nil},
		{IDMAID, "6d92078a82464ba4ae5b76104861e7dc", IDMAID, "6d92078a-8246-4ba4-ae5b-76104861e7dc", nil},
		{IDMAID, "00000000-0000-0000-0000-000000000000", 0, "", ErrZeroMAID},
		{IDMAID, "6d92078a-8246-4ba4-ae5b-76104861e7d", 0, "", ErrBadMAID},
		{IDMAID, "6d92078a+8246-4ba4-ae5b-76104861e7dc", 0, "", ErrBadMAID},
		{IDMAID, "6d92078g-8246-4ba4-ae5b-76104861e7dc", 0, "", ErrBadMAID},
		{IDUID, " cookie-1 ", IDUID, "cookie-1", nil},
		{IDUID, "has space", 0, "", ErrBadUID},
		{IDUID, "ünïcode", 0, "", ErrBadUID},
		{IDUID, strings.Repeat("x", MaxIDLen+1), 0, "", ErrTooLong},
		{IDEID, "id5-sync.com:ID5-abc", IDEID, "id5-sync.com:ID5-abc", nil},
		{IDUnknown, "x", 0, "", ErrBadIDType},
	}
	for _, tt := range tests {
		kind, got, err := Normalize(tt.t, tt.raw, "")
		if tt.want == "" {
			if !errors.Is(err, tt.err) {
				t.Errorf("Normalize(%v, %q) = %q, %v; want error %v", tt.t, tt.raw, got, err, tt.err)
			}
			continue
		}
		if err != nil || kind != tt.wantKind || got != tt.want {
			t.Errorf("Normalize(%v, %q) = %v %q %v, want %v %q", tt.t, tt.raw, kind, got, err, tt.wantKind, tt.want)
		}
	}
}

func TestParseIDType(t *testing.T) {
	for in, want := range map[string]IDType{
		"email": IDEmail, " Email ": IDEmail, "EMAIL_SHA256": IDEmailSHA256, "hashed_email": IDEmailSHA256,
		"Phone": IDPhone, "phone_sha256": IDPhoneSHA256, "Mobile Device ID": IDMAID, "madid": IDMAID,
		"IDFA": IDMAID, "uid": IDUID, "buyeruid": IDUID, "em": IDEmail, "ph": IDPhone, "eid": IDEID,
	} {
		if got, err := ParseIDType(in); err != nil || got != want {
			t.Errorf("ParseIDType(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "first_name", "emails", strings.Repeat("x", 100)} {
		if _, err := ParseIDType(bad); err == nil {
			t.Errorf("ParseIDType(%q): want an error", bad)
		} else if len(err.Error()) > 200 {
			t.Errorf("ParseIDType error echoes too much input: %d bytes", len(err.Error()))
		}
	}
}

var testSecret = []byte("audience-test-secret-0123456789")

func TestPseudonymizer(t *testing.T) {
	pz, err := NewPseudonymizer(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPseudonymizer([]byte("short")); err == nil {
		t.Error("a short secret must be refused")
	}
	// The definition: HMAC-SHA256(secret, kind ‖ compact payload), 16 bytes.
	h := sha("alice@example.com")
	digest, _ := hex.DecodeString(h)
	mac := hmac.New(sha256.New, testSecret)
	mac.Write(append([]byte{byte(IDEmailSHA256)}, digest...))
	var want Pseudonym
	copy(want[:], mac.Sum(nil))
	if got := pz.Of(IDEmailSHA256, h); got != want {
		t.Fatalf("Of(email_sha256) = %s, want %s", got, want)
	}
	// Every route to the same person gives the same pseudonym.
	routes := []Pseudonym{
		pz.Of(IDEmailSHA256, strings.ToUpper(h)),
		pz.OfBytes(IDEmailSHA256, []byte(h)),
	}
	for _, raw := range []string{"alice@example.com", " ALICE@Example.com ", h} {
		p, err := pz.Raw(IDEmail, raw, "")
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, p)
	}
	p, _ := pz.Raw(IDEmailSHA256, strings.ToUpper(h), "")
	routes = append(routes, p)
	for i, r := range routes {
		if r != want {
			t.Errorf("route %d: %s, want %s", i, r, want)
		}
	}
	// Same value, different kinds or keys: different pseudonyms.
	if pz.Of(IDPhoneSHA256, h) == want || pz.Of(IDUID, "x") == pz.Of(IDEID, "x") {
		t.Error("kinds must be separated")
	}
	other, _ := NewPseudonymizer([]byte("another-secret-0123456789abcdef"))
	if other.Of(IDEmailSHA256, h) == want {
		t.Error("the secret must key the pseudonym")
	}
	maid := "6d92078a-8246-4ba4-ae5b-76104861e7dc"
	if pz.Of(IDMAID, maid) != pz.Of(IDMAID, strings.ToUpper(maid)) {
		t.Error("ad ids: case must not matter")
	}
	long := strings.Repeat("z", 2*MaxIDLen)
	if pz.Of(IDUID, long) == pz.Of(IDUID, long[:MaxIDLen]) {
		t.Error("long values must not be truncated")
	}
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(100, func() { _ = pz.Of(IDUID, "cookie-123") }); n != 0 {
		t.Errorf("Of allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _ = pz.RawKind(IDEmailSHA256, []byte(h), "") }); n != 0 {
		t.Errorf("RawKind allocates %v times", n)
	}
}

func BenchmarkPseudonymize(b *testing.B) {
	pz, _ := NewPseudonymizer(testSecret)
	h := sha("alice@example.com")
	hb := []byte(h)
	b.Run("email_sha256/Of", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = pz.Of(IDEmailSHA256, h)
		}
	})
	b.Run("email_sha256/RawKind", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = pz.RawKind(IDEmailSHA256, hb, "")
		}
	})
	b.Run("email/RawKind", func(b *testing.B) {
		raw := []byte(" Alice.Smith+shoes@Example.com ")
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = pz.RawKind(IDEmail, raw, "")
		}
	})
	b.Run("phone/RawKind", func(b *testing.B) {
		raw := []byte("010-1234-5678")
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = pz.RawKind(IDPhone, raw, "82")
		}
	})
	b.Run("uid/Of", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = pz.Of(IDUID, "3f1c9b9e-6a51-4c7e-9f0e-2b8d1f6c7a10")
		}
	})
	// The former message: kind ‖ 64 hex characters (two SHA-256 blocks).
	b.Run("email_sha256/hex-message-HMAC", func(b *testing.B) {
		mac := hmac.New(sha256.New, testSecret)
		msg := append([]byte{byte(IDEmailSHA256)}, h...)
		var sum []byte
		b.ReportAllocs()
		for b.Loop() {
			mac.Reset()
			mac.Write(msg)
			sum = mac.Sum(sum[:0])
		}
	})
	b.Run("parallel/email_sha256/RawKind", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _, _ = pz.RawKind(IDEmailSHA256, hb, "")
			}
		})
	})
}
