package audience

import (
	"encoding/binary"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// defaultProfileCacheBytes bounds the profile cache when Options leave it 0.
const defaultProfileCacheBytes = 64 << 20

// profileTTL bounds how long a cached profile lives even if nothing
// invalidates it.
const profileTTL = time.Minute

// epochStripes is how many invalidation counters the cache keeps.
const epochStripes = 4096

// profileCache is a ristretto cache of decoded profiles in front of Pebble.
// Decoding a profile's JSON costs far more than the Pebble read on the bid
// path; the cache keeps the decoded *Profile. Invalidation cannot race with a
// fill: every entry records the epoch of its key's stripe when the store was
// read, a write bumps the stripe's epoch after it commits, and a lookup whose
// entry carries an older epoch is a miss.
type profileCache struct {
	c      *ristretto.Cache[uint64, *cachedProfile]
	seed   maphash.Seed
	epochs [epochStripes]atomic.Uint64
}

type cachedProfile struct {
	adv   string
	p     Pseudonym
	epoch uint64
	prof  *Profile
}

func newProfileCache(maxBytes int64) *profileCache {
	if maxBytes < 0 {
		return nil
	}
	if maxBytes == 0 {
		maxBytes = defaultProfileCacheBytes
	}
	c, err := ristretto.NewCache(&ristretto.Config[uint64, *cachedProfile]{
		NumCounters: max(maxBytes/256*10, 1000), // ~10 counters per expected entry
		MaxCost:     maxBytes,
		BufferItems: 64,
	})
	if err != nil {
		return nil // only for invalid settings, which these are not
	}
	return &profileCache{c: c, seed: maphash.MakeSeed()}
}

func (pc *profileCache) key(adv string, p Pseudonym) uint64 {
	return maphash.String(pc.seed, adv) ^ binary.LittleEndian.Uint64(p[:8])
}

func (pc *profileCache) invalidate(adv string, p Pseudonym) {
	if pc == nil {
		return
	}
	k := pc.key(adv, p)
	pc.epochs[k%epochStripes].Add(1)
	pc.c.Del(k)
}

func (pc *profileCache) close() {
	if pc != nil {
		pc.c.Close()
	}
}

// CachedProfile is Profile through the profile cache, for the bid path. The
// returned profile is shared: callers must not modify it. It is only fresh if
// every writer of profiles calls InvalidateProfile after committing.
func (m *Manager) CachedProfile(adv string, p Pseudonym) (*Profile, error) {
	pc := m.profiles
	if pc == nil {
		return m.Profile(adv, p)
	}
	k := pc.key(adv, p)
	epoch := pc.epochs[k%epochStripes].Load()
	if v, ok := pc.c.Get(k); ok && v.epoch == epoch && v.p == p && v.adv == adv {
		return v.prof, nil
	}
	prof, err := m.Profile(adv, p)
	if err != nil {
		return nil, err
	}
	cost := int64(96 + len(adv))
	for _, e := range prof.Events {
		cost += int64(48 + len(e.Type))
		for _, id := range e.Products {
			cost += int64(16 + len(id))
		}
	}
	pc.c.SetWithTTL(k, &cachedProfile{adv: adv, p: p, epoch: epoch, prof: prof}, cost, profileTTL)
	return prof, nil
}

// InvalidateProfile drops the cached profile of p at adv. Whoever writes a
// profile (RecordEvent) calls it after the write is committed.
func (m *Manager) InvalidateProfile(adv string, p Pseudonym) { m.profiles.invalidate(adv, p) }
