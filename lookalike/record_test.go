package lookalike

import (
	"slices"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	fs := []feat{{id: 1, count: 2, day: 3}, {id: 7, count: maxCount, day: 20000}, {id: 1 << 31, count: 1, day: 65535}}
	rec := encodeRecord(nil, 1_790_000_000, fs)
	if len(rec) != recordHeaderSize+len(fs)*recordFeatSize {
		t.Fatalf("record of %d bytes", len(rec))
	}
	last, got, err := decodeRecord(nil, rec)
	if err != nil || last != 1_790_000_000 || !slices.Equal(got, fs) {
		t.Fatalf("round trip: %d %+v %v", last, got, err)
	}
}

func TestMergeFeatures(t *testing.T) {
	fs := []feat{
		{id: 5, count: 1, day: 10},
		{id: 3, count: maxCount, day: 12},
		{id: 5, count: 2, day: 11},
		{id: 3, count: 9, day: 9},
		{id: 9, count: 1, day: 2}, // stale
		{id: 1, count: 4, day: 8},
	}
	got := mergeFeatures(fs, 5, 10)
	want := []feat{{id: 1, count: 4, day: 8}, {id: 3, count: maxCount, day: 12}, {id: 5, count: 3, day: 11}}
	if !slices.Equal(got, want) {
		t.Errorf("merge: got %+v, want %+v", got, want)
	}
	// Over the limit: the most recent, then the most frequent, stay.
	fs = []feat{{id: 1, count: 1, day: 5}, {id: 2, count: 7, day: 4}, {id: 3, count: 3, day: 4}, {id: 4, count: 1, day: 6}}
	got = mergeFeatures(fs, 0, 3)
	want = []feat{{id: 1, count: 1, day: 5}, {id: 2, count: 7, day: 4}, {id: 4, count: 1, day: 6}}
	if !slices.Equal(got, want) {
		t.Errorf("evict: got %+v, want %+v", got, want)
	}
}

func TestFeatureHashing(t *testing.T) {
	if featureString(nsDomain, "news.example") != featureString(nsDomain, stripWWW("WWW.NEWS.example")) {
		t.Error("domain hashing is not case-insensitive or www. is kept")
	}
	if featureString(nsDomain, "x") == featureString(nsCategory, "x") {
		t.Error("namespaces collide")
	}
	if featurePair(nsRegion, "KOR", "11") == featurePair(nsRegion, "KOR1", "1") {
		t.Error("pair hashing is ambiguous")
	}
	if stripWWW("www.") != "www." || stripWWW("wwwx.example") != "wwwx.example" {
		t.Error("stripWWW strips too much")
	}
	// Stored ids must never change: pin a few.
	for _, tc := range []struct {
		got, want uint32
	}{
		{featureString(nsDomain, "news.example"), pinned["domain"]},
		{featureInt(nsHour, 5), pinned["hour"]},
		{featurePair(nsSiteEvent, "adv_1", "purchase"), pinned["event"]},
	} {
		if tc.got != tc.want {
			t.Errorf("feature id %#x, pinned %#x: the hash changed, stored populations would be misread", tc.got, tc.want)
		}
	}
	// An observation yields at most maxObsFeatures features, whatever it holds.
	var f featureSet
	observationFeatures(&f, &Observation{
		Domain: "a", Bundle: "b", Categories: []string{"IAB1-1", "IAB2-2", "IAB3-3", "IAB4-4", "IAB5-5", "IAB6-6"},
		Country: "KOR", Region: "11", DeviceType: 1, OS: "ios", Hour: 3,
	})
	if int(f.n) > maxObsFeatures || f.n < 14 {
		t.Errorf("%d features from a full observation", f.n)
	}
}

var pinned = map[string]uint32{
	"domain": 0xe3c83257,
	"hour":   0x9117cbbb,
	"event":  0x67eebeba,
}

// FuzzDecodeRecord: a stored value of any shape is either decoded
// consistently or refused, never a panic.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(nil, 1_790_000_000, []feat{{id: 1, count: 1, day: 1}}))
	f.Add([]byte{recordVersion})
	f.Add([]byte{recordVersion, 0, 0, 0, 0, 0, 0, 0, 0, 255})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		last, fs, err := decodeRecord(nil, b)
		if err != nil {
			return
		}
		if again := encodeRecord(nil, last, fs); !slices.Equal(again, b) {
			t.Fatalf("decode/encode not inverse: %x vs %x", b, again)
		}
		merged := mergeFeatures(slices.Clone(fs), 0, 255)
		if len(merged) > len(fs) {
			t.Fatal("merge grew the features")
		}
	})
}

// FuzzObservationFeatures: any observation hashes without panicking and
// within bounds.
func FuzzObservationFeatures(f *testing.F) {
	f.Add("www.example.com", "com.app", "IAB1-2", "KOR", "11", 4, "android", 21)
	f.Add("", "", "-", "", "", -5, "", 99)
	f.Fuzz(func(t *testing.T, domain, bundle, cat, country, region string, dev int, os string, hour int) {
		var fs featureSet
		observationFeatures(&fs, &Observation{Domain: domain, Bundle: bundle, Categories: []string{cat, cat}, Country: country, Region: region, DeviceType: dev, OS: os, Hour: hour})
		siteEventFeatures(&fs, domain, bundle, cat)
		if int(fs.n) > maxObsFeatures {
			t.Fatalf("%d features", fs.n)
		}
	})
}
