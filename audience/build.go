package audience

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// scanResult counts what a scan of one audience found.
type scanResult struct {
	members    int64 // live members
	linked     int64 // ids linked to live e-mail/phone members
	expired    int64 // members past their expiry (deleted when gc)
	nextExpiry int64 // earliest expiry among live members, 0 none
}

func (r *scanResult) merge(o scanResult) {
	r.members += o.members
	r.linked += o.linked
	r.expired += o.expired
	if o.nextExpiry != 0 && (r.nextExpiry == 0 || o.nextExpiry < r.nextExpiry) {
		r.nextExpiry = o.nextExpiry
	}
}

// visitBatch is how many ids a scan hands to its visitor at once.
const visitBatch = 4096

// gcBatch is how many expired members a scan deletes per commit.
const gcBatch = 65536

// scanAudience passes every live member of audience id to visit, with the
// cookie and device ids linked to its e-mail and phone members, in batches.
// The key range is split by the pseudonym's first byte among m.workers
// goroutines, so visit must be safe for concurrent use (filter adds are).
// With gc set the caller holds the audience's wmu, and expired members are
// deleted from the store.
func (m *Manager) scanAudience(id string, now int64, gc bool, visit func([]Pseudonym)) (scanResult, error) {
	workers := m.workers
	if workers < 1 {
		workers = 1
	}
	if workers == 1 {
		return m.scanRange(id, 0, 256, now, gc, visit)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total scanResult
		first error
	)
	step := (256 + workers - 1) / workers
	for lo := 0; lo < 256; lo += step {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			res, err := m.scanRange(id, lo, hi, now, gc, visit)
			mu.Lock()
			total.merge(res)
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		}(lo, min(lo+step, 256))
	}
	wg.Wait()
	return total, first
}

// scanRange scans the members of audience id whose pseudonym's first byte is
// in [lo, hi).
func (m *Manager) scanRange(id string, lo, hi int, now int64, gc bool, visit func([]Pseudonym)) (res scanResult, err error) {
	pfx := memPrefix(id)
	lower := append(append([]byte(nil), pfx...), byte(lo))
	upper := store.PrefixEnd(pfx)
	if hi < 256 {
		upper = append(append([]byte(nil), pfx...), byte(hi))
	}
	it, err := m.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	var links linkCursor
	defer links.close()
	var del *pebble.Batch
	commitDeletes := func() error {
		if del == nil || del.Count() == 0 {
			return nil
		}
		if err := del.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("delete expired members: %w", err)
		}
		del.Close()
		del = nil
		return nil
	}
	defer func() {
		if del != nil {
			del.Close()
		}
	}()
	buf := make([]Pseudonym, 0, visitBatch+64)
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(pfx)+len(Pseudonym{}) {
			continue
		}
		v, verr := it.ValueAndErr()
		if verr != nil {
			return res, verr
		}
		exp, kind := decodeMem(v)
		if !live(exp, now) {
			res.expired++
			if gc {
				if del == nil {
					del = m.db.NewBatch()
				}
				_ = del.Delete(k, nil)
				if del.Count() >= gcBatch {
					if err := commitDeletes(); err != nil {
						return res, err
					}
				}
			}
			continue
		}
		if exp != 0 && (res.nextExpiry == 0 || exp < res.nextExpiry) {
			res.nextExpiry = exp
		}
		var p Pseudonym
		copy(p[:], k[len(pfx):])
		res.members++
		buf = append(buf, p)
		if kind.linkable() {
			n, lerr := links.each(m.db, p, func(q Pseudonym) { buf = append(buf, q) })
			if lerr != nil {
				return res, lerr
			}
			res.linked += int64(n)
		}
		if len(buf) >= visitBatch {
			visit(buf)
			buf = buf[:0]
		}
	}
	if err := it.Error(); err != nil {
		return res, err
	}
	visit(buf)
	return res, commitDeletes()
}

// linkCursor finds the identity links of pseudonyms visited in increasing
// order with one iterator over lnk/: it seeks only when the next link in the
// store lies before the pseudonym asked for, so a sparse link table costs a
// comparison per member and a dense one a short forward seek.
type linkCursor struct {
	it      *pebble.Iterator
	valid   bool
	started bool
	seek    []byte
}

func (c *linkCursor) close() {
	if c.it != nil {
		c.it.Close()
		c.it = nil
	}
}

// each calls fn for every id linked to p and returns how many there were.
// Calls must come in increasing order of p.
func (c *linkCursor) each(db *pebble.DB, p Pseudonym, fn func(q Pseudonym)) (int, error) {
	if c.it == nil {
		pfx := []byte(store.PrefixLink)
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: pfx, UpperBound: store.PrefixEnd(pfx)})
		if err != nil {
			return 0, err
		}
		c.it = it
	}
	c.seek = append(append(append(c.seek[:0], store.PrefixLink...), p[:]...), '/')
	if !c.started {
		c.valid, c.started = c.it.SeekGE(c.seek), true
	} else if c.valid && bytes.Compare(c.it.Key(), c.seek) < 0 {
		c.valid = c.it.SeekGE(c.seek)
	}
	n := 0
	for c.valid {
		k := c.it.Key()
		if !bytes.HasPrefix(k, c.seek) {
			break
		}
		// The value is the linked id's kind (empty in old links): an e-mail
		// linked to a phone is no id of the bid stream.
		if v := c.it.Value(); len(k) == len(c.seek)+len(p) && (len(v) != 1 || !IDType(v[0]).linkable()) {
			var q Pseudonym
			copy(q[:], k[len(c.seek):])
			fn(q)
			n++
		}
		c.valid = c.it.Next()
	}
	if !c.valid {
		if err := c.it.Error(); err != nil {
			return n, err
		}
	}
	return n, nil
}
