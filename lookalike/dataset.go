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
// users in key order and their features as bucket ids, all in one arena.
type dataset struct {
	uids []UserID
	off  []uint32 // len(uids)+1; user i's features are feat[off[i]:off[i+1]]
	feat []uint32 // bucket ids
	df   []uint32 // users per bucket

	stored  int // records read
	expired int // skipped: not seen within TTL (or no live feature)
	corrupt int // skipped: unreadable
}

func (d *dataset) n() int { return len(d.uids) }

func (d *dataset) features(i int) []uint32 { return d.feat[d.off[i]:d.off[i+1]] }

// loadDataset reads every active user (seen within TTL, with at least one
// feature seen within TTL) from the population's key range.
func loadDataset(ctx context.Context, p *Population, prog *progress) (*dataset, error) {
	now := p.opts.Now()
	cutoff := now.Add(-p.opts.TTL).Unix()
	minDay := dayOf(cutoff)
	est := p.Size()
	d := &dataset{
		uids: make([]UserID, 0, est),
		off:  make([]uint32, 1, est+1),
		feat: make([]uint32, 0, est*16),
		df:   make([]uint32, 1<<featureBits),
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
		start := len(d.feat)
		for j := 0; j < nf; j++ {
			f := recordFeat(v, j)
			if f.day < minDay {
				continue
			}
			b := f.id & featureMask
			d.feat = append(d.feat, b)
			d.df[b]++
		}
		if len(d.feat) == start {
			d.expired++
			continue
		}
		if uint64(len(d.feat)) > 1<<32-1 {
			return nil, fmt.Errorf("lookalike: population too large for one build (%d users read)", d.n())
		}
		d.uids = append(d.uids, UserID(k[len(userKeyPrefix):]))
		d.off = append(d.off, uint32(len(d.feat)))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("lookalike: read population: %w", err)
	}
	return d, nil
}
