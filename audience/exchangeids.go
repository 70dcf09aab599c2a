package audience

import (
	"github.com/dgraph-io/ristretto/v2"

	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// Exchange id mappings (cookie sync). An exchange that cannot send Chaser's
// own cookie id back as user.buyeruid sends its own user id in user.id; its
// /setuid call taught Chaser which Chaser uid that id belongs to. Both ids
// are kept only as pseudonyms:
//
//	syn/<exchange>/<pseudonym of "exchange:id">  → Chaser uid pseudonym (16) + expiry (8, unix s)
//	syn/~/<Chaser uid pseudonym><exchange>/<…>   → "" (reverse index, for Erase)
//
// Exchange names are lower-case letters, digits, '_' and '-' ('~' never
// clashes). Lookup ignores a mapping past its expiry; SweepExpired
// (exchangeids_sweep.go, run hourly by serve) deletes it. Lookups read
// Pebble directly (memtable and block cache; see
// BenchmarkExchangeIDsLookup): no copy of the table is held in memory.

// DefaultExchangeIDTTL is how long a mapping lives after its last /setuid.
const DefaultExchangeIDTTL = 90 * 24 * time.Hour

// MaxExchangeIDLen bounds an exchange's user id.
const MaxExchangeIDLen = 128

const reverseSync = store.PrefixSync + "~/"

// ExchangeIDs maps exchange user ids to Chaser uid pseudonyms.
type ExchangeIDs struct {
	db    *pebble.DB
	pz    *Pseudonymizer
	now   func() time.Time
	ttl   time.Duration
	names map[string]bool
	mu    sync.Mutex // writers (Set, Erase, the sweep's commits)
	// gen counts writes (Set, Erase), bumped under mu: the expiry sweep
	// commits its deletes only if no write happened since it read them.
	gen atomic.Uint64
	// afterSweepRead, if set (tests), runs between a sweep step's read and
	// its commit.
	afterSweepRead func()
	// cache holds recent lookups, hits and misses, in front of Pebble (a
	// miss read from Pebble costs tens of µs); writers delete what they change.
	cache *ristretto.Cache[string, exchangeEntry]
}

// exchangeEntry is a cached lookup: the uid and expiry, or found=false.
type exchangeEntry struct {
	uid    Pseudonym
	expiry int64
	found  bool
}

// NewExchangeIDs returns the mapping table over db for the named exchanges
// (other names are refused). ttl 0 means DefaultExchangeIDTTL; now nil means
// time.Now.
func NewExchangeIDs(db *pebble.DB, pz *Pseudonymizer, exchanges []string, ttl time.Duration, now func() time.Time) (*ExchangeIDs, error) {
	if ttl <= 0 {
		ttl = DefaultExchangeIDTTL
	}
	if now == nil {
		now = time.Now
	}
	cache, err := ristretto.NewCache(&ristretto.Config[string, exchangeEntry]{
		NumCounters: 1 << 20, MaxCost: 1 << 17, BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("exchange id cache: %w", err)
	}
	x := &ExchangeIDs{db: db, pz: pz, now: now, ttl: ttl, names: map[string]bool{}, cache: cache}
	for _, n := range exchanges {
		if !ValidExchangeName(n) {
			return nil, fmt.Errorf("exchange name %q: want 1-32 of a-z, 0-9, '_', '-'", truncate(n, 40))
		}
		x.names[n] = true
	}
	return x, nil
}

// ValidExchangeName reports whether n may name an exchange.
func ValidExchangeName(n string) bool {
	if len(n) == 0 || len(n) > 32 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Known reports whether exchange is configured.
func (x *ExchangeIDs) Known(exchange string) bool { return x != nil && x.names[exchange] }

// KnownBytes is Known for a byte slice (no allocation).
func (x *ExchangeIDs) KnownBytes(exchange []byte) bool { return x != nil && x.names[string(exchange)] }

// Errors of Set.
var (
	ErrUnknownExchange = errors.New("unknown exchange")
	ErrBadExchangeID   = errors.New("bad exchange user id")
)

func validExchangeID(id []byte) bool {
	if len(id) == 0 || len(id) > MaxExchangeIDLen {
		return false
	}
	for _, c := range id {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// appendForwardKey appends syn/<exchange>/<pseudonym of exchange:id>.
func (x *ExchangeIDs) appendForwardKey(dst []byte, exchange, id []byte) []byte {
	var buf [32 + 1 + MaxExchangeIDLen]byte
	b := append(buf[:0], exchange...)
	b = append(b, ':')
	b = append(b, id...)
	p := x.pz.OfBytes(IDEID, b)
	dst = append(dst, store.PrefixSync...)
	dst = append(dst, exchange...)
	dst = append(dst, '/')
	return append(dst, p[:]...)
}

func reverseKey(uid Pseudonym, fwd []byte) []byte {
	k := make([]byte, 0, len(reverseSync)+len(uid)+len(fwd))
	k = append(k, reverseSync...)
	k = append(k, uid[:]...)
	return append(k, fwd[len(store.PrefixSync):]...)
}

// Set records that exchange's user id belongs to the Chaser uid pseudonym
// uid, for the table's ttl from now. A repeat refreshes the expiry; a new uid
// for the same exchange id replaces the old one.
func (x *ExchangeIDs) Set(exchange, id string, uid Pseudonym) error {
	if !x.Known(exchange) {
		return fmt.Errorf("set exchange id: %w", ErrUnknownExchange)
	}
	if !validExchangeID([]byte(id)) {
		return fmt.Errorf("set exchange id: %w", ErrBadExchangeID)
	}
	if uid.IsZero() {
		return fmt.Errorf("set exchange id: %w: zero uid", ErrInvalid)
	}
	fwd := x.appendForwardKey(nil, []byte(exchange), []byte(id))
	var val [24]byte
	copy(val[:16], uid[:])
	binary.BigEndian.PutUint64(val[16:], uint64(x.now().Add(x.ttl).Unix()))
	x.mu.Lock()
	defer x.mu.Unlock()
	b := x.db.NewBatch()
	defer b.Close()
	if old, err := store.Get(x.db, fwd); err == nil && len(old) == 24 {
		var prev Pseudonym
		copy(prev[:], old[:16])
		if prev != uid {
			_ = b.Delete(reverseKey(prev, fwd), nil)
		}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("set exchange id: %w", err)
	}
	_ = b.Set(fwd, val[:], nil)
	_ = b.Set(reverseKey(uid, fwd), nil, nil)
	x.gen.Add(1) // before the commit: a sweep that read the old value must not commit after it
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("set exchange id: %w", err)
	}
	x.cache.Del(string(fwd))
	return nil
}

// Lookup returns the Chaser uid pseudonym exchange's user id maps to, if a
// live mapping exists. Recent lookups (hits and misses) come from a
// ristretto cache; it takes no lock.
func (x *ExchangeIDs) Lookup(exchange, id []byte) (Pseudonym, bool) {
	var p Pseudonym
	if x == nil || !validExchangeID(id) || !x.names[string(exchange)] {
		return p, false
	}
	var kb [64]byte
	k := x.appendForwardKey(kb[:0], exchange, id)
	now := x.now().Unix()
	if e, hit := x.cache.Get(string(k)); hit {
		return e.uid, e.found && e.expiry > now
	}
	var e exchangeEntry
	v, closer, err := x.db.Get(k)
	if err == nil {
		if len(v) == 24 {
			copy(e.uid[:], v[:16])
			e.expiry, e.found = int64(binary.BigEndian.Uint64(v[16:])), true
		}
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return p, false // a read error is not cached
	}
	// A TTL bounds staleness should a lookup that read Pebble before a
	// write cache its answer after the writer deleted the entry.
	x.cache.SetWithTTL(string(k), e, 1, time.Minute)
	if e.found && e.expiry > now {
		return e.uid, true
	}
	return p, false
}

// Erase deletes every mapping to the Chaser uid pseudonym uid.
func (x *ExchangeIDs) Erase(uid Pseudonym) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	pfx := append([]byte(reverseSync), uid[:]...)
	var dropped []string
	b := x.db.NewBatch()
	defer b.Close()
	err := store.Scan(x.db, pfx, func(k, _ []byte) error {
		fwd := append([]byte(store.PrefixSync), k[len(pfx):]...)
		if v, err := store.Get(x.db, fwd); err == nil && len(v) == 24 && Pseudonym(v[:16]) == uid {
			_ = b.Delete(fwd, nil)
		}
		dropped = append(dropped, string(fwd))
		_ = b.Delete(append([]byte(nil), k...), nil)
		return nil
	})
	if err != nil {
		return fmt.Errorf("erase exchange ids: %w", err)
	}
	x.gen.Add(1)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("erase exchange ids: %w", err)
	}
	for _, k := range dropped { // after the commit, so no lookup re-caches them
		x.cache.Del(k)
	}
	return nil
}
