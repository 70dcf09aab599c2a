package loadtest

import (
	"encoding/base64"
	"time"
)

// tcfMaxVendor is the highest vendor id the generated consent strings cover,
// so whatever vendor id the bidder registers under (below it) gets a definite
// answer.
const tcfMaxVendor = 1500

// bitWriter appends big-endian bit fields, the encoding of IAB TCF strings.
type bitWriter struct {
	buf  []byte
	nbit uint
}

func (w *bitWriter) put(v uint64, bits uint) {
	for i := int(bits) - 1; i >= 0; i-- {
		if w.nbit%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.buf[len(w.buf)-1] |= 0x80 >> (w.nbit % 8)
		}
		w.nbit++
	}
}

// tcfString returns a TCF v2.2 core string (base64url, no padding). With
// consent it grants consent to purposes 1–10 and to every vendor from 1 to
// tcfMaxVendor; without it grants nothing. The string parses with the IAB
// reference decoders (the tests check it with prebid's go-gdpr).
func tcfString(consent bool, at time.Time, cmpID uint64) string {
	var w bitWriter
	deci := uint64(at.UnixMilli() / 100)
	w.put(2, 6)     // Version
	w.put(deci, 36) // Created
	w.put(deci, 36) // LastUpdated
	w.put(cmpID, 12)
	w.put(1, 12)             // CmpVersion
	w.put(1, 6)              // ConsentScreen
	w.put(letters("EN"), 12) // ConsentLanguage
	w.put(150, 12)           // VendorListVersion
	w.put(5, 6)              // TcfPolicyVersion (TCF 2.2)
	w.put(1, 1)              // IsServiceSpecific
	w.put(0, 1)              // UseNonStandardTexts
	w.put(0, 12)             // SpecialFeatureOptIns
	purposes := uint64(0)    // PurposesConsent, purpose 1 is the highest bit
	if consent {
		purposes = 0xFFC000 // purposes 1–10
	}
	w.put(purposes, 24)
	w.put(purposes, 24)      // PurposesLITransparency
	w.put(0, 1)              // PurposeOneTreatment
	w.put(letters("AA"), 12) // PublisherCC
	// Vendor consent section, range encoded.
	w.put(tcfMaxVendor, 16) // MaxVendorId
	w.put(1, 1)             // IsRangeEncoding
	if consent {
		w.put(1, 12)            // NumEntries
		w.put(1, 1)             // IsARange
		w.put(1, 16)            // StartVendorId
		w.put(tcfMaxVendor, 16) // EndVendorId
	} else {
		w.put(0, 12)
	}
	// Vendor legitimate interest section: none.
	w.put(0, 16) // MaxVendorId
	w.put(0, 1)  // IsRangeEncoding (bit field of length 0)
	w.put(0, 12) // NumPubRestrictions
	for len(w.buf) < 32 {
		w.buf = append(w.buf, 0)
	}
	return base64.RawURLEncoding.EncodeToString(w.buf)
}

// letters encodes a two-letter code the TCF way: 6 bits a letter, A = 0.
func letters(s string) uint64 {
	return uint64(s[0]-'A')<<6 | uint64(s[1]-'A')
}
