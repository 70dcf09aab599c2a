package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// API keys.
//
// The admin key is given to the process (CHASER_ADMIN_TOKEN, or the
// generated data-dir file) and compared in constant time. Advertiser keys are
// made by POST /v1/advertisers/{adv}/keys and returned once; the store keeps
// only their SHA-256 under "key/<hex hash>" with a short public id (key_…),
// the advertiser, the creation time and, once revoked, the revocation time.
// A key is 24 random bytes, so an unsalted hash is enough: there is nothing
// to guess from it.

// storedKey is the record of one advertiser key.
type storedKey struct {
	ID         string     `json:"id"`
	Advertiser string     `json:"advertiser_id"`
	Created    time.Time  `json:"created_at"`
	Revoked    bool       `json:"revoked,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	hash       string
}

// keyID returns the key's public id; keys stored before ids existed get
// one derived from their hash.
func (k *storedKey) keyID() string {
	if k.ID != "" {
		return k.ID
	}
	return "key_" + k.hash[:12]
}

func hashKey(k string) string {
	s := sha256.Sum256([]byte(k))
	return hex.EncodeToString(s[:])
}

func keyRecord(hash string) []byte { return []byte(store.PrefixAPIKey + hash) }

// maxKeyLen bounds the Authorization value we hash.
const maxKeyLen = 256

func (a *API) authenticate(r *http.Request) (principal, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" || len(tok) > maxKeyLen {
		return principal{}, false
	}
	if a.d.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.d.AdminToken)) == 1 {
		return principal{admin: true}, true
	}
	v, err := store.Get(a.d.DB, keyRecord(hashKey(tok)))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			a.d.Logger.Error("admin: read key", "err", err)
		}
		return principal{}, false
	}
	var k storedKey
	if json.Unmarshal(v, &k) != nil || k.Revoked || k.Advertiser == "" {
		return principal{}, false
	}
	return principal{advertiser: k.Advertiser}, true
}

// keysOf returns the stored keys of an advertiser, ordered by id.
func (a *API) keysOf(adv string) ([]storedKey, error) {
	var out []storedKey
	err := store.Scan(a.d.DB, []byte(store.PrefixAPIKey), func(k, v []byte) error {
		var sk storedKey
		if json.Unmarshal(v, &sk) != nil || sk.Advertiser != adv {
			return nil
		}
		sk.hash = string(k[len(store.PrefixAPIKey):])
		if len(sk.hash) < 12 {
			return nil
		}
		out = append(out, sk)
		return nil
	})
	sortByID(out, func(k *storedKey) string { return k.keyID() })
	return out, err
}

func (a *API) putKey(hash string, k storedKey, sync *pebble.WriteOptions) error {
	b, err := json.Marshal(k)
	if err != nil {
		return err
	}
	if err := a.d.DB.Set(keyRecord(hash), b, sync); err != nil {
		return fmt.Errorf("store key %s: %w", k.keyID(), err)
	}
	return nil
}

// AuthLimit is the token bucket of failed authentications per client IP.
// A client may fail Burst times in a row; then one more attempt is allowed
// every Every. While its bucket is empty every request from that address
// that needs a key gets 429 with Retry-After, before its key is checked.
type AuthLimit struct {
	Burst int           // default 10
	Every time.Duration // default 6s (10 a minute)
	// MaxClients bounds the addresses tracked; past it, the overflow shares
	// one bucket. Default 65536.
	MaxClients int
}

// DefaultAuthLimit is the limit used for zero AuthLimit fields.
var DefaultAuthLimit = AuthLimit{Burst: 10, Every: 6 * time.Second, MaxClients: 1 << 16}

type bucket struct {
	tokens float64
	last   time.Time
}

type limiter struct {
	cfg     AuthLimit
	now     func() time.Time
	mu      sync.Mutex
	clients map[string]*bucket
}

func newLimiter(cfg AuthLimit, now func() time.Time) *limiter {
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultAuthLimit.Burst
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultAuthLimit.Every
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultAuthLimit.MaxClients
	}
	return &limiter{cfg: cfg, now: now, clients: map[string]*bucket{}}
}

// refill brings b up to date; caller holds l.mu.
func (l *limiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(float64(l.cfg.Burst), b.tokens+float64(el)/float64(l.cfg.Every))
	}
	b.last = now
}

// wait returns how long ip must wait before its next attempt (0: go ahead).
func (l *limiter) wait(ip string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[ip]
	if b == nil && len(l.clients) >= l.cfg.MaxClients {
		b = l.clients[""] // untracked addresses share the overflow bucket
	}
	if b == nil {
		return 0
	}
	now := l.now()
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.cfg.Every))
}

// fail takes one token from ip's bucket.
func (l *limiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.clients[ip]
	if b == nil {
		if len(l.clients) >= l.cfg.MaxClients {
			l.sweep(now)
		}
		if len(l.clients) >= l.cfg.MaxClients {
			ip = "" // the overflow bucket
			b = l.clients[ip]
		}
		if b == nil {
			b = &bucket{tokens: float64(l.cfg.Burst), last: now}
			l.clients[ip] = b
		}
	}
	l.refill(b, now)
	b.tokens = math.Max(0, b.tokens-1)
}

// sweep forgets buckets that have refilled: they are as good as new.
func (l *limiter) sweep(now time.Time) {
	for ip, b := range l.clients {
		l.refill(b, now)
		if b.tokens >= float64(l.cfg.Burst) {
			delete(l.clients, ip)
		}
	}
}

// clientIP is the connection's remote address. X-Forwarded-For is not
// trusted: behind a proxy every client shares the proxy's bucket.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
