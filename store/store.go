package store

import (
	"errors"
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// Key prefixes, one per concept. See the package documentation.
const (
	PrefixAdvertiser = "adv/"
	PrefixAPIKey     = "key/"
	PrefixCampaign   = "cmp/"
	PrefixAudience   = "aud/"
	PrefixMember     = "mem/"
	PrefixProfile    = "prf/"
	PrefixLink       = "lnk/"
	PrefixErase      = "ers/"
	PrefixProduct    = "prd/"
	PrefixPacing     = "pac/"
	PrefixFrequency  = "frq/"
	PrefixLookalike  = "lk/"
	PrefixSync       = "syn/"
)

// ErrNotFound is returned by Get when a key is absent.
var ErrNotFound = errors.New("store: not found")

// Open opens (creating if needed) the Pebble database under dir.
func Open(dir string) (*pebble.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", dir, err)
	}
	opts := &pebble.Options{
		Logger: quietLogger{},
		// Bulk writes (audience uploads: tens of millions of random keys) stall
		// on Pebble's 4 MB default memtable; 64 MB ones and a deeper L0 triple
		// upload throughput (BENCHMARKS.md, "Audiences").
		MemTableSize:          64 << 20,
		L0StopWritesThreshold: 24,
		LBaseMaxBytes:         256 << 20,
	}
	// Bloom filters on every level: most point lookups (a notice's auction
	// record, a user's profile, a membership check) ask for keys that are
	// absent, and without a filter each one reads data blocks.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return db, nil
}

// Get returns a copy of the value stored at key, or ErrNotFound.
func Get(db *pebble.DB, key []byte) ([]byte, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, nil
}

// PrefixEnd returns the smallest key greater than every key with prefix p.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// Scan calls fn for every key with the given prefix, in key order. The key and
// value slices are only valid during the call. fn returning an error stops
// the scan and returns that error.
func Scan(db pebble.Reader, prefix []byte, fn func(key, value []byte) error) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: PrefixEnd(prefix)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// DeletePrefix deletes every key with the given prefix.
func DeletePrefix(db *pebble.DB, prefix []byte, opts *pebble.WriteOptions) error {
	return db.DeleteRange(prefix, PrefixEnd(prefix), opts)
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Errorf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
	os.Exit(1)
}

// PrefixAudienceJob holds audience upload job records (audience).
const PrefixAudienceJob = "auj/"
