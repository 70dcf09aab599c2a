package lookalike

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// featureBits is the size of the model's hashed feature space: stored
// 32-bit feature ids are folded into 2^featureBits buckets.
const featureBits = 20

const featureMask = 1<<featureBits - 1

// dataset is the active population read into memory for one Build: the
// users in key order and their features as bucket ids, packed into an
// arena of fixed-size chunks (so it grows without copying, and holds about
// 4 bytes per feature plus 21 bytes per user).
type dataset struct {
	uids   []UserID
	pos    []uint32   // user i's first feature: chunk pos>>chunkBits, offset pos&chunkMask
	nfeat  []uint8    // user i's feature count
	chunks [][]uint32 // bucket ids; a user's features never span two chunks
	nf     int        // features held
	df     []uint32   // users per bucket

	stored  int // records read
	expired int // skipped: not seen within TTL (or no live feature)
	corrupt int // skipped: unreadable
}

const (
	chunkBits = 20 // 4 MiB chunks
	chunkMask = 1<<chunkBits - 1
)

func (d *dataset) n() int { return len(d.uids) }

func (d *dataset) features(i int) []uint32 {
	p := d.pos[i]
	off := p & chunkMask
	return d.chunks[p>>chunkBits][off : off+uint32(d.nfeat[i])]
}

// room returns the chunk to append k more features to, starting a new one
// when the current one is full.
func (d *dataset) room(k int) []uint32 {
	if len(d.chunks) == 0 || len(d.chunks[len(d.chunks)-1])+k > 1<<chunkBits {
		d.chunks = append(d.chunks, make([]uint32, 0, 1<<chunkBits))
	}
	return d.chunks[len(d.chunks)-1]
}

// loadDataset reads every active user (seen within TTL, with at least one
// feature seen within TTL) from the population's key range.
func loadDataset(ctx context.Context, p *Population, prog *progress) (*dataset, error) {
	now := p.opts.Now()
	cutoff := now.Add(-p.opts.TTL).Unix()
	minDay := dayOf(cutoff)
	est := p.Size()
	d := &dataset{
		uids:  make([]UserID, 0, est),
		pos:   make([]uint32, 0, est),
		nfeat: make([]uint8, 0, est),
		df:    make([]uint32, 1<<featureBits),
	}
	it, err := p.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: userKeyLower, UpperBound: userKeyUpper})
	if err != nil {
		return nil, fmt.Errorf("lookalike: read population: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		d.stored++
		if d.stored&0x3fff == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			prog.add(0x4000)
		}
		k := it.Key()
		if len(k) != len(userKeyPrefix)+len(UserID{}) {
			d.corrupt++
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("lookalike: read population: %w", err)
		}
		lastSeen, nf, err := checkRecord(v)
		if err != nil {
			d.corrupt++
			continue
		}
		if lastSeen < cutoff {
			d.expired++
			continue
		}
		chunk := d.room(nf)
		start := len(chunk)
		for j := 0; j < nf; j++ {
			f := recordFeat(v, j)
			if f.day < minDay {
				continue
			}
			chunk = append(chunk, f.id&featureMask)
		}
		got := len(chunk) - start
		if got == 0 {
			d.expired++
			continue
		}
		if len(d.chunks) > 1<<(32-chunkBits) {
			return nil, fmt.Errorf("lookalike: population too large for one build (%d users read)", d.n())
		}
		for _, b := range chunk[start:] {
			d.df[b]++
		}
		d.chunks[len(d.chunks)-1] = chunk
		d.nf += got
		d.uids = append(d.uids, UserID(k[len(userKeyPrefix):]))
		d.pos = append(d.pos, uint32(len(d.chunks)-1)<<chunkBits|uint32(start))
		d.nfeat = append(d.nfeat, uint8(got))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("lookalike: read population: %w", err)
	}
	p.corrupt.Add(uint64(d.corrupt))
	return d, nil
}
