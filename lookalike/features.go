package lookalike

// Feature hashing. Every fact about a user becomes a 32-bit feature id: a
// keyed FNV-1a hash of a namespace byte and the (ASCII lower-cased) value,
// finished with a 64-bit mixer. Ids are stored, so the function must never
// change; the namespaces keep a domain "x" and a category "x" apart.
//
// Hashing happens on the caller's goroutine and allocates nothing.

const (
	nsDomain     = 1 + iota // site.domain ("www." stripped)
	nsBundle                // app.bundle
	nsCategory              // IAB content category, and its parent ("IAB1-2" → "IAB1")
	nsCountry               // country
	nsRegion                // country/region
	nsDevice                // OpenRTB device type
	nsOS                    // operating system
	nsHour                  // 4-hour bucket of the local hour
	nsSiteAdv               // visited advertiser's site
	nsSiteEvent             // advertiser and event ("adv_1", "add_to_cart")
	nsSiteCat               // category viewed on any advertiser's site
	nsSiteAdvCat            // advertiser and category
)

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	// maxObsFeatures bounds the features one observation yields.
	maxObsFeatures = 16
	// maxObsCategories bounds the categories taken from one observation
	// (each may add its parent too).
	maxObsCategories = 4
)

func hashStart(ns byte) uint64 {
	return (fnvOffset ^ uint64(ns)) * fnvPrime
}

func hashByte(h uint64, c byte) uint64 {
	return (h ^ uint64(c)) * fnvPrime
}

// hashString folds s into h, lower-casing ASCII letters.
func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

// finish mixes h (the murmur3 finaliser) and folds it to 32 bits.
func finish(h uint64) uint32 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return uint32(h)
}

func featureString(ns byte, s string) uint32 {
	return finish(hashString(hashStart(ns), s))
}

func featurePair(ns byte, a, b string) uint32 {
	h := hashString(hashStart(ns), a)
	h = hashByte(h, 0)
	return finish(hashString(h, b))
}

func featureInt(ns byte, v int) uint32 {
	h := hashStart(ns)
	u := uint64(v)
	for i := 0; i < 8; i++ {
		h = hashByte(h, byte(u))
		u >>= 8
	}
	return finish(h)
}

func stripWWW(d string) string {
	if len(d) > 4 && (d[0]|0x20) == 'w' && (d[1]|0x20) == 'w' && (d[2]|0x20) == 'w' && d[3] == '.' {
		return d[4:]
	}
	return d
}

// featureSet is a small fixed-capacity list of feature ids.
type featureSet struct {
	n  uint8
	id [maxObsFeatures]uint32
}

func (f *featureSet) add(id uint32) {
	if int(f.n) < len(f.id) {
		f.id[f.n] = id
		f.n++
	}
}

// observationFeatures appends the features of one bid-stream observation.
func observationFeatures(f *featureSet, o *Observation) {
	if o.Domain != "" {
		f.add(featureString(nsDomain, stripWWW(o.Domain)))
	}
	if o.Bundle != "" {
		f.add(featureString(nsBundle, o.Bundle))
	}
	for i, c := range o.Categories {
		if i == maxObsCategories {
			break
		}
		if c == "" {
			continue
		}
		f.add(featureString(nsCategory, c))
		for j := 1; j < len(c); j++ {
			if c[j] == '-' {
				f.add(featureString(nsCategory, c[:j]))
				break
			}
		}
	}
	if o.Country != "" {
		f.add(featureString(nsCountry, o.Country))
		if o.Region != "" {
			f.add(featurePair(nsRegion, o.Country, o.Region))
		}
	}
	if o.DeviceType > 0 {
		f.add(featureInt(nsDevice, o.DeviceType))
	}
	if o.OS != "" {
		f.add(featureString(nsOS, o.OS))
	}
	if o.Hour >= 0 && o.Hour <= 23 {
		f.add(featureInt(nsHour, o.Hour/4))
	}
}

// siteEventFeatures appends the features of one advertiser-site event.
func siteEventFeatures(f *featureSet, advertiser, event, category string) {
	if advertiser != "" {
		f.add(featureString(nsSiteAdv, advertiser))
		if event != "" {
			f.add(featurePair(nsSiteEvent, advertiser, event))
		}
		if category != "" {
			f.add(featurePair(nsSiteAdvCat, advertiser, category))
		}
	}
	if category != "" {
		f.add(featureString(nsSiteCat, category))
	}
}
