package lookalike

import (
	"encoding/binary"
	"errors"
	"slices"
)

// A user's record, the value at "lk/u/<pseudonym>":
//
//	byte 0        format version (1)
//	bytes 1..8    last seen, unix seconds, little endian
//	byte 9        n, the number of features (≤ 255)
//	n × 8 bytes   feature id (uint32), count (uint16, saturating), last day seen
//	              (uint16, days since 1970-01-01), all little endian, sorted by id
const (
	recordVersion    = 1
	recordHeaderSize = 10
	recordFeatSize   = 8
	maxCount         = 1<<16 - 1
)

var errCorruptRecord = errors.New("lookalike: corrupt user record")

// feat is one stored feature of a user.
type feat struct {
	id    uint32
	count uint16
	day   uint16
}

// dayOf returns the day number of a unix time, clamped to uint16.
func dayOf(unix int64) uint16 {
	d := unix / 86400
	switch {
	case d < 0:
		return 0
	case d > 65535:
		return 65535
	}
	return uint16(d)
}

// checkRecord validates rec's framing and returns its last-seen time and
// feature count.
func checkRecord(rec []byte) (lastSeen int64, n int, err error) {
	if len(rec) < recordHeaderSize || rec[0] != recordVersion {
		return 0, 0, errCorruptRecord
	}
	n = int(rec[9])
	if len(rec) != recordHeaderSize+n*recordFeatSize {
		return 0, 0, errCorruptRecord
	}
	return int64(binary.LittleEndian.Uint64(rec[1:9])), n, nil
}

// recordFeat returns the i-th feature of a checked record.
func recordFeat(rec []byte, i int) feat {
	b := rec[recordHeaderSize+i*recordFeatSize:]
	return feat{
		id:    binary.LittleEndian.Uint32(b),
		count: binary.LittleEndian.Uint16(b[4:]),
		day:   binary.LittleEndian.Uint16(b[6:]),
	}
}

// decodeRecord appends rec's features to dst.
func decodeRecord(dst []feat, rec []byte) (lastSeen int64, out []feat, err error) {
	lastSeen, n, err := checkRecord(rec)
	if err != nil {
		return 0, dst, err
	}
	for i := 0; i < n; i++ {
		dst = append(dst, recordFeat(rec, i))
	}
	return lastSeen, dst, nil
}

// encodeRecord appends the record of (lastSeen, fs) to dst; fs must be sorted
// by id, unique and at most 255 long.
func encodeRecord(dst []byte, lastSeen int64, fs []feat) []byte {
	dst = append(dst, recordVersion)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(lastSeen))
	dst = append(dst, byte(len(fs)))
	for _, f := range fs {
		dst = binary.LittleEndian.AppendUint32(dst, f.id)
		dst = binary.LittleEndian.AppendUint16(dst, f.count)
		dst = binary.LittleEndian.AppendUint16(dst, f.day)
	}
	return dst
}

// mergeFeatures sorts fs by id, folds duplicates (counts add up, saturating;
// the latest day wins), drops features last seen before minDay and, when more
// than limit remain, keeps the limit most recently seen (then most frequent).
// The result is sorted by id and shares fs's backing array.
func mergeFeatures(fs []feat, minDay uint16, limit int) []feat {
	slices.SortFunc(fs, func(a, b feat) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	out := fs[:0]
	for _, f := range fs {
		if k := len(out) - 1; k >= 0 && out[k].id == f.id {
			c := uint32(out[k].count) + uint32(f.count)
			out[k].count = uint16(min(c, maxCount))
			out[k].day = max16(out[k].day, f.day)
			continue
		}
		out = append(out, f)
	}
	kept := out[:0]
	for _, f := range out {
		if f.day >= minDay {
			kept = append(kept, f)
		}
	}
	if len(kept) <= limit {
		return kept
	}
	slices.SortFunc(kept, func(a, b feat) int {
		switch {
		case a.day != b.day:
			return int(b.day) - int(a.day)
		case a.count != b.count:
			return int(b.count) - int(a.count)
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	kept = kept[:limit]
	slices.SortFunc(kept, func(a, b feat) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return kept
}

func max16(a, b uint16) uint16 {
	if a > b {
		return a
	}
	return b
}
