package audience

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// Expiry sweep of the exchange id mappings. Lookup already ignores a
// mapping past its expiry; the sweep deletes it (and its reverse-index key)
// from Pebble, so a browser that never comes back leaves nothing behind.
//
// It walks the forward keys (syn/<exchange>/…, which sort before syn/~/) in
// steps of at most SweepBatch keys. A step reads without any lock; it then
// takes the writers' lock only to check that no Set or Erase happened since
// it started reading (ExchangeIDs.gen) and to commit its deletes, so a
// mapping refreshed by /setuid meanwhile is never deleted. A step that loses
// that race is re-read (three tries), then left for the next sweep.

// SweepBatch bounds the keys one sweep step reads (and so deletes).
const SweepBatch = 512

// DefaultExchangeIDSweepEvery is how often serve sweeps expired mappings.
const DefaultExchangeIDSweepEvery = time.Hour

var (
	exchangeIDsSwept     = metrics.NewCounter(`chaser_exchange_ids_expired_deleted_total`)
	exchangeIDsConflicts = metrics.NewCounter(`chaser_exchange_ids_sweep_conflicts_total`)
	exchangeIDsSweepErrs = metrics.NewCounter(`chaser_exchange_ids_sweep_errors_total`)
)

// SweepExpired deletes every mapping whose expiry is at or before the
// table's clock, in bounded steps; it stops early when ctx ends. It returns
// how many mappings it deleted.
func (x *ExchangeIDs) SweepExpired(ctx context.Context) (int, error) {
	from := []byte(store.PrefixSync)
	total := 0
	for from != nil {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, next, err := x.sweepStep(from)
		total += n
		if err != nil {
			return total, err
		}
		from = next
	}
	return total, nil
}

// sweepStep deletes the expired mappings among the next SweepBatch forward
// keys from from, and returns where the next step starts (nil at the end).
func (x *ExchangeIDs) sweepStep(from []byte) (deleted int, next []byte, err error) {
	now := x.now().Unix()
	for try := 0; try < 3; try++ {
		gen := x.gen.Load()
		var dead [][]byte // forward keys, then their reverse keys
		if next, dead, err = x.readExpired(from, now); err != nil {
			return 0, nil, err
		}
		if len(dead) == 0 {
			return 0, next, nil
		}
		if x.afterSweepRead != nil {
			x.afterSweepRead()
		}
		b := x.db.NewBatch()
		for _, k := range dead {
			_ = b.Delete(k, nil)
		}
		x.mu.Lock()
		if x.gen.Load() != gen { // a write since the read: read again
			x.mu.Unlock()
			b.Close()
			continue
		}
		err = b.Commit(pebble.NoSync)
		x.mu.Unlock()
		b.Close()
		if err != nil {
			return 0, nil, fmt.Errorf("sweep exchange ids: %w", err)
		}
		for _, k := range dead[:len(dead)/2] { // after the commit, so no lookup re-caches them
			x.cache.Del(string(k))
		}
		exchangeIDsSwept.Add(len(dead) / 2)
		return len(dead) / 2, next, nil
	}
	exchangeIDsConflicts.Inc()
	return 0, next, nil
}

// readExpired reads up to SweepBatch forward keys from from and returns the
// keys of the expired ones (forward keys first, then as many reverse keys)
// and the key the next step starts at (nil after the last).
func (x *ExchangeIDs) readExpired(from []byte, now int64) (next []byte, dead [][]byte, err error) {
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: []byte(reverseSync)})
	if err != nil {
		return nil, nil, fmt.Errorf("sweep exchange ids: %w", err)
	}
	var rev [][]byte
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n == SweepBatch {
			next = append([]byte(nil), it.Key()...)
			break
		}
		n++
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, nil, fmt.Errorf("sweep exchange ids: %w", err)
		}
		if len(v) != 24 || int64(binary.BigEndian.Uint64(v[16:])) > now {
			continue // live (or not a mapping: left alone)
		}
		fwd := append([]byte(nil), it.Key()...)
		dead = append(dead, fwd)
		rev = append(rev, reverseKey(Pseudonym(v[:16]), fwd))
	}
	if err := it.Error(); err != nil {
		it.Close()
		return nil, nil, fmt.Errorf("sweep exchange ids: %w", err)
	}
	if err := it.Close(); err != nil {
		return nil, nil, fmt.Errorf("sweep exchange ids: %w", err)
	}
	return next, append(dead, rev...), nil
}

// RunSweeper sweeps expired mappings every interval (0:
// DefaultExchangeIDSweepEvery) until ctx ends. Errors are logged and
// counted; the next tick tries again.
func (x *ExchangeIDs) RunSweeper(ctx context.Context, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		every = DefaultExchangeIDSweepEvery
	}
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			start := time.Now()
			n, err := x.SweepExpired(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				exchangeIDsSweepErrs.Inc()
				log.Error("exchange id sweep", "err", err, "deleted", n)
			case n > 0:
				log.Info("exchange id sweep", "deleted", n, "took", time.Since(start).Round(time.Millisecond))
			}
		}
	}
}
