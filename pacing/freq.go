package pacing

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// Frequency counts impressions per campaign and user for frequency caps.
// Count is on the bid path and must be cheap; Record runs on notices. The
// single-node implementation is PebbleFrequency; one on Redis (a sorted set
// of impression times per campaign and user, trimmed to the cap window)
// would share counts between bidders.
type Frequency interface {
	// Count returns how many impressions user had from campaign cmp in the
	// window (now−per, now], counting at most MaxFrequencyCap.
	Count(cmp string, user [16]byte, per time.Duration, now time.Time) int
	// Record counts one impression at t.
	Record(cmp string, user [16]byte, t time.Time) error
	// Forget drops what no campaign's window can still see: impressions
	// older than keep(cmp) for each campaign (keep returns 0 for campaigns
	// that no longer exist or have no cap).
	Forget(now time.Time, keep func(cmp string) time.Duration) error
	// Erase forgets every count of user, for every campaign (a data
	// subject's erasure). It is idempotent.
	Erase(user [16]byte) error
}

// MaxFrequencyCap is the largest cap enforced exactly: a user's last 255
// impression times per campaign are kept.
const MaxFrequencyCap = 255

const freqShards = 32

// PebbleFrequency keeps each user's recent impression times per campaign in
// memory (sharded maps under short read-write locks that are never held
// across I/O) and in Pebble under "frq/<campaign>/<user>" so counts survive
// a restart. Writes are not synced on their own: the win notice that caused
// them syncs the WAL right after, so a crash loses at most the counts of
// notices still being answered.
type PebbleFrequency struct {
	db    *pebble.DB
	camps atomic.Pointer[map[string]*freqCamp]
	mu    sync.Mutex // creates campaigns
}

type freqCamp struct {
	wmu    sync.Mutex // orders Pebble writes of this campaign
	shards [freqShards]freqShard
}

type freqShard struct {
	mu sync.RWMutex
	m  map[[16]byte][]uint32 // impression times, oldest first
}

func freqPrefix(cmp string) []byte { return []byte(store.PrefixFrequency + cmp + "/") }

// OpenPebbleFrequency loads the counts kept in db.
func OpenPebbleFrequency(db *pebble.DB) (*PebbleFrequency, error) {
	f := &PebbleFrequency{db: db}
	m := map[string]*freqCamp{}
	f.camps.Store(&m)
	err := store.Scan(db, []byte(store.PrefixFrequency), func(k, v []byte) error {
		rest := k[len(store.PrefixFrequency):]
		if len(rest) < 18 || rest[len(rest)-17] != '/' || len(v)%4 != 0 {
			return nil // not ours or corrupt: skip
		}
		cmp := string(rest[:len(rest)-17])
		var user [16]byte
		copy(user[:], rest[len(rest)-16:])
		ts := make([]uint32, len(v)/4)
		for i := range ts {
			ts[i] = binary.BigEndian.Uint32(v[4*i:])
		}
		c := m[cmp]
		if c == nil {
			c = newFreqCamp()
			m[cmp] = c
		}
		c.shard(user).m[user] = ts
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("frequency: load: %w", err)
	}
	return f, nil
}

func newFreqCamp() *freqCamp {
	c := &freqCamp{}
	for i := range c.shards {
		c.shards[i].m = map[[16]byte][]uint32{}
	}
	return c
}

func (c *freqCamp) shard(u [16]byte) *freqShard { return &c.shards[u[0]%freqShards] }

func (f *PebbleFrequency) camp(cmp string, create bool) *freqCamp {
	if c := (*f.camps.Load())[cmp]; c != nil || !create {
		return c
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.camps.Load()
	if c := old[cmp]; c != nil {
		return c
	}
	n := make(map[string]*freqCamp, len(old)+1)
	for k, v := range old {
		n[k] = v
	}
	c := newFreqCamp()
	n[cmp] = c
	f.camps.Store(&n)
	return c
}

// Count implements Frequency. It does not allocate.
func (f *PebbleFrequency) Count(cmp string, user [16]byte, per time.Duration, now time.Time) int {
	c := f.camp(cmp, false)
	if c == nil {
		return 0
	}
	since := now.Unix() - int64(per/time.Second)
	sh := c.shard(user)
	sh.mu.RLock()
	ts := sh.m[user]
	n := 0
	for i := len(ts) - 1; i >= 0 && int64(ts[i]) > since; i-- {
		n++
	}
	sh.mu.RUnlock()
	return n
}

// Record implements Frequency.
func (f *PebbleFrequency) Record(cmp string, user [16]byte, t time.Time) error {
	c := f.camp(cmp, true)
	sec := uint32(max(t.Unix(), 0))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	sh := c.shard(user)
	sh.mu.Lock()
	old := sh.m[user]
	ts := make([]uint32, 0, min(len(old)+1, MaxFrequencyCap))
	if len(old) >= MaxFrequencyCap {
		old = old[len(old)-MaxFrequencyCap+1:]
	}
	// Keep times ordered: notices arrive out of order.
	i := len(old)
	for i > 0 && old[i-1] > sec {
		i--
	}
	ts = append(append(append(ts, old[:i]...), sec), old[i:]...)
	sh.m[user] = ts
	sh.mu.Unlock()
	v := make([]byte, 4*len(ts))
	for i, s := range ts {
		binary.BigEndian.PutUint32(v[4*i:], s)
	}
	k := append(freqPrefix(cmp), user[:]...)
	if err := f.db.Set(k, v, pebble.NoSync); err != nil {
		return fmt.Errorf("frequency: record %s: %w", cmp, err)
	}
	return nil
}

// Forget implements Frequency.
func (f *PebbleFrequency) Forget(now time.Time, keep func(cmp string) time.Duration) error {
	for cmp, c := range *f.camps.Load() {
		since := now.Unix() - int64(keep(cmp)/time.Second)
		c.wmu.Lock()
		b := f.db.NewBatch()
		for i := range c.shards {
			sh := &c.shards[i]
			sh.mu.Lock()
			for u, ts := range sh.m {
				if len(ts) == 0 || int64(ts[len(ts)-1]) <= since {
					delete(sh.m, u)
					_ = b.Delete(append(freqPrefix(cmp), u[:]...), nil)
				}
			}
			sh.mu.Unlock()
		}
		err := b.Commit(pebble.NoSync)
		b.Close()
		c.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("frequency: forget %s: %w", cmp, err)
		}
	}
	return nil
}

// Erase implements Frequency.
func (f *PebbleFrequency) Erase(user [16]byte) error {
	b := f.db.NewBatch()
	defer b.Close()
	for cmp, c := range *f.camps.Load() {
		c.wmu.Lock()
		sh := c.shard(user)
		sh.mu.Lock()
		delete(sh.m, user)
		sh.mu.Unlock()
		c.wmu.Unlock()
		_ = b.Delete(append(freqPrefix(cmp), user[:]...), nil)
	}
	// Every campaign with a stored count is in memory (loaded at open, or
	// created by Record), so the map is the index of keys to delete.
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("frequency: erase: %w", err)
	}
	return nil
}
