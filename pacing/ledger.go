package pacing

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// Notice kinds.
const (
	NoticeWin  = "win"
	NoticeBill = "bill"
	NoticeLoss = "loss"
	NoticeImp  = "imp"
)

// Entry is one notice for the ledger: what happened to one auction.
type Entry struct {
	Kind     string   // NoticeWin, NoticeBill, NoticeLoss or NoticeImp
	Auction  [16]byte // AuctionKey of the token
	Campaign string
	BidUnix  int64 // bid time: dates the dedup record and the report hour
	Day      int64 // yyyymmdd of the bid in the campaign's time zone
	Cost     int64 // micros the impression cost (win, bill); ignored otherwise
	Sync     bool  // durable before Apply returns
	Now      int64 // arrival time, unix
}

// Applied says what a ledger entry changed.
type Applied struct {
	// Duplicate: a notice of this kind was already applied for this auction;
	// nothing changed.
	Duplicate bool
	// Settled: an earlier notice of any kind had already settled this
	// auction's reservation, so this one must not release it again.
	Settled bool
	// Spent is the micros this notice added to spend (0 when the auction's
	// spend was already recorded).
	Spent int64
	// FirstDelivery: this is the auction's first win, bill or imp notice;
	// frequency caps count it.
	FirstDelivery bool
}

// HourTotals are a campaign's notice-driven figures for one UTC hour of bid time.
type HourTotals struct {
	Hour  int64 // unix hour (unix seconds / 3600)
	Spend int64 // micros
	Wins  int64 // auctions won (first win or bill notice)
	Imps  int64 // impressions (first imp notice)
}

// Ledger is the durable record of spend: which auctions were paid for and
// what each campaign spent by day, hour and in total. Apply is idempotent per
// auction and kind, so a notice repeated any number of times moves spend
// once. The single-node implementation is PebbleLedger; one over a shared
// store (Redis: a Lua script doing Apply's read-modify-write per auction key,
// INCRBY on the totals) would let several bidders share budgets.
type Ledger interface {
	// Apply records one notice.
	Apply(e *Entry) (Applied, error)
	// Spent returns a campaign's spend on day (yyyymmdd) and in total, micros.
	Spent(campaign string, day int64) (dayMicros, totalMicros int64, err error)
	// Hours calls fn for each hour in [fromHour, toHour) with recorded figures, in order.
	Hours(campaign string, fromHour, toHour int64, fn func(HourTotals)) error
	// Forget drops dedup records of auctions bid before unix time before.
	// Notices that old are refused as expired, so they can never be replayed.
	Forget(before int64) error
}

// AuctionKey identifies one auction's bid for dedup: campaign, auction, imp.
func AuctionKey(t *Token) [16]byte {
	h := sha256.New()
	h.Write([]byte(t.Campaign))
	h.Write([]byte{0})
	h.Write([]byte(t.AuctionID))
	h.Write([]byte{0})
	h.Write([]byte(t.ImpID))
	var sum [sha256.Size]byte
	var k [16]byte
	copy(k[:], h.Sum(sum[:0]))
	return k
}

// Record flags: which notices an auction has had.
const (
	recWin byte = 1 << iota
	recBill
	recLoss
	recImp
	recSpent
)

func kindFlag(kind string) (byte, bool) {
	switch kind {
	case NoticeWin:
		return recWin, true
	case NoticeBill:
		return recBill, true
	case NoticeLoss:
		return recLoss, true
	case NoticeImp:
		return recImp, true
	}
	return 0, false
}

// Ledger keys, all under store.PrefixPacing:
//
//	pac/t/<cmp>                   total spend (8 bytes, big endian)
//	pac/d/<cmp>/<yyyymmdd>        day spend
//	pac/h/<cmp>/<hour, 8 bytes>   hour totals: spend, wins, imps (3×8 bytes)
//	pac/n/<hour, 4 bytes><key16>  one auction's notices: flags byte, cost (8 bytes)
func ledgerTotalKey(cmp string) []byte { return []byte(store.PrefixPacing + "t/" + cmp) }
func ledgerDayKey(cmp string, day int64) []byte {
	return strconv.AppendInt([]byte(store.PrefixPacing+"d/"+cmp+"/"), day, 10)
}
func ledgerHourPrefix(cmp string) []byte { return []byte(store.PrefixPacing + "h/" + cmp + "/") }
func ledgerHourKey(cmp string, hour int64) []byte {
	return binary.BigEndian.AppendUint64(ledgerHourPrefix(cmp), uint64(hour))
}

var noticePrefix = []byte(store.PrefixPacing + "n/")

func noticeRecKey(bidUnix int64, k [16]byte) []byte {
	b := make([]byte, 0, len(noticePrefix)+4+16)
	b = append(b, noticePrefix...)
	b = binary.BigEndian.AppendUint32(b, uint32(bidUnix/3600))
	return append(b, k[:]...)
}

type dayKey struct {
	cmp string
	day int64
}

type hourKey struct {
	cmp  string
	hour int64
}

// PebbleLedger is the single-node Ledger on Pebble. Writes are serialised by
// a mutex held only while the batch is applied to the memtable; the WAL sync
// that makes win and billing notices durable happens after it is released,
// so concurrent notices share fsyncs (Pebble's group commit).
type PebbleLedger struct {
	db *pebble.DB

	mu     sync.Mutex
	totals map[string]int64
	days   map[dayKey]int64
	hours  map[hourKey]HourTotals
	recent recentRecords
	// unsynced counts durable entries applied whose WAL sync has not
	// returned yet; a duplicate only waits for a sync when it is not zero.
	unsynced atomic.Int64
}

// NewPebbleLedger returns the ledger kept in db.
func NewPebbleLedger(db *pebble.DB) *PebbleLedger {
	return &PebbleLedger{db: db, totals: map[string]int64{}, days: map[dayKey]int64{}, hours: map[hourKey]HourTotals{}}
}

// recentRecords holds the notice records written in the last 5 to 10
// minutes (two generations of maps), so the first notice of a fresh
// auction — almost every notice — needs no Pebble lookup to learn that
// there is no record yet. The maps are authoritative for auctions bid at
// or after from: every record of such an auction was written by this
// process (from is past the newest record hour in Pebble at open) and
// recently enough to still be in a generation.
type recentRecords struct {
	from     int64 // authoritative for bid times ≥ from; 0 until the first Apply
	dropped  int64 // records written before this were dropped from memory
	genStart [2]int64
	gens     [2]map[[16]byte]byte
	cur      int
}

const recentGeneration = 300 // seconds

func (l *PebbleLedger) initRecentLocked(now int64) error {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: noticePrefix, UpperBound: store.PrefixEnd(noticePrefix)})
	if err != nil {
		return err
	}
	from := now + 1
	if it.Last() && len(it.Key()) >= len(noticePrefix)+4 {
		newest := int64(binary.BigEndian.Uint32(it.Key()[len(noticePrefix):]))
		from = max(from, (newest+1)*3600)
	}
	if err := it.Close(); err != nil {
		return err
	}
	r := &l.recent
	r.from = from
	r.gens = [2]map[[16]byte]byte{{}, {}}
	r.genStart = [2]int64{now, now}
	return nil
}

// lookup returns the record flags of auction k bid at bid, if memory knows.
func (r *recentRecords) lookup(k [16]byte, bid int64) (byte, bool) {
	// A notice may arrive up to 60 s before its token's bid time (clock
	// steps), so its record may predate the bid by as much.
	if bid < r.from || (r.dropped > 0 && bid < r.dropped+60) {
		return 0, false
	}
	if f, ok := r.gens[r.cur][k]; ok {
		return f, true
	}
	return r.gens[1-r.cur][k], true
}

func (r *recentRecords) store(k [16]byte, flags byte, now int64) {
	if now-r.genStart[r.cur] >= recentGeneration {
		r.dropped = r.genStart[r.cur]
		r.cur = 1 - r.cur
		r.gens[r.cur] = make(map[[16]byte]byte, len(r.gens[1-r.cur]))
		r.genStart[r.cur] = now
	}
	r.gens[r.cur][k] = flags
}

func getInt(db pebble.Reader, k []byte) (int64, error) {
	v, closer, err := db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("pacing: corrupt counter %q", k)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func int8b(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

// Locked loaders: the caches hold every figure Apply has touched.
func (l *PebbleLedger) totalLocked(cmp string) (int64, error) {
	if v, ok := l.totals[cmp]; ok {
		return v, nil
	}
	v, err := getInt(l.db, ledgerTotalKey(cmp))
	if err == nil {
		l.totals[cmp] = v
	}
	return v, err
}

func (l *PebbleLedger) dayLocked(cmp string, day int64) (int64, error) {
	k := dayKey{cmp, day}
	if v, ok := l.days[k]; ok {
		return v, nil
	}
	v, err := getInt(l.db, ledgerDayKey(cmp, day))
	if err == nil {
		l.days[k] = v
	}
	return v, err
}

func decodeHour(h int64, v []byte) (HourTotals, bool) {
	if len(v) != 24 {
		return HourTotals{Hour: h}, false
	}
	return HourTotals{Hour: h, Spend: int64(binary.BigEndian.Uint64(v)), Wins: int64(binary.BigEndian.Uint64(v[8:])),
		Imps: int64(binary.BigEndian.Uint64(v[16:]))}, true
}

func encodeHour(t HourTotals) []byte {
	b := make([]byte, 0, 24)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Spend))
	b = binary.BigEndian.AppendUint64(b, uint64(t.Wins))
	return binary.BigEndian.AppendUint64(b, uint64(t.Imps))
}

func (l *PebbleLedger) hourLocked(cmp string, hour int64) (HourTotals, error) {
	k := hourKey{cmp, hour}
	if v, ok := l.hours[k]; ok {
		return v, nil
	}
	t := HourTotals{Hour: hour}
	v, closer, err := l.db.Get(ledgerHourKey(cmp, hour))
	if err == nil {
		t, _ = decodeHour(hour, v)
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return t, err
	}
	l.hours[k] = t
	return t, nil
}

// Apply records one notice (see Ledger).
func (l *PebbleLedger) Apply(e *Entry) (Applied, error) {
	res, err := l.apply(e)
	if err != nil || !e.Sync {
		return res, err
	}
	// Durable before we answer. The WAL sync happens outside the mutex so
	// concurrent notices share it. A duplicate waits for one too while any
	// durable entry (perhaps its original) is still unsynced.
	if res.Duplicate && l.unsynced.Load() == 0 {
		return res, nil
	}
	err = l.db.LogData(nil, pebble.Sync)
	if !res.Duplicate {
		l.unsynced.Add(-1)
	}
	if err != nil {
		return res, fmt.Errorf("ledger sync: %w", err)
	}
	return res, nil
}

func (l *PebbleLedger) apply(e *Entry) (Applied, error) {
	var res Applied
	flag, ok := kindFlag(e.Kind)
	if !ok {
		return res, fmt.Errorf("ledger: unknown notice kind %q", e.Kind)
	}
	key := noticeRecKey(e.BidUnix, e.Auction)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recent.from == 0 {
		if err := l.initRecentLocked(e.Now); err != nil {
			return res, fmt.Errorf("ledger: find newest notice record: %w", err)
		}
	}
	old, known := l.recent.lookup(e.Auction, e.BidUnix)
	if !known {
		v, closer, err := l.db.Get(key)
		switch {
		case err == nil:
			if len(v) > 0 {
				old = v[0]
			}
			closer.Close()
		case !errors.Is(err, pebble.ErrNotFound):
			return res, fmt.Errorf("ledger: read notice record: %w", err)
		}
	}
	if old&flag != 0 {
		res.Duplicate, res.Settled = true, true
		return res, nil
	}
	res.Settled = old != 0
	res.FirstDelivery = old&(recWin|recBill|recImp) == 0 && flag != recLoss
	rec := old | flag
	var cost int64
	spend := (flag == recWin || flag == recBill) && old&recSpent == 0
	if spend {
		rec |= recSpent
		cost = max(e.Cost, 0)
	}
	b := l.db.NewBatch()
	defer b.Close()
	val := make([]byte, 9)
	val[0] = rec
	binary.BigEndian.PutUint64(val[1:], uint64(cost))
	_ = b.Set(key, val, nil)
	var total, day int64
	var hour HourTotals
	var err error
	hourChanged := spend || flag == recImp
	if spend {
		if total, err = l.totalLocked(e.Campaign); err != nil {
			return res, err
		}
		if day, err = l.dayLocked(e.Campaign, e.Day); err != nil {
			return res, err
		}
		total += cost
		day += cost
		_ = b.Set(ledgerTotalKey(e.Campaign), int8b(total), nil)
		_ = b.Set(ledgerDayKey(e.Campaign, e.Day), int8b(day), nil)
	}
	if hourChanged {
		if hour, err = l.hourLocked(e.Campaign, e.BidUnix/3600); err != nil {
			return res, err
		}
		if spend {
			hour.Spend += cost
			hour.Wins++
		} else {
			hour.Imps++
		}
		_ = b.Set(ledgerHourKey(e.Campaign, hour.Hour), encodeHour(hour), nil)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return res, fmt.Errorf("ledger: record %s notice: %w", e.Kind, err)
	}
	if e.Sync {
		l.unsynced.Add(1)
	}
	l.recent.store(e.Auction, rec, e.Now)
	if spend {
		l.totals[e.Campaign] = total
		l.days[dayKey{e.Campaign, e.Day}] = day
		res.Spent = cost
	}
	if hourChanged {
		l.hours[hourKey{e.Campaign, hour.Hour}] = hour
	}
	return res, nil
}

// Spent returns a campaign's spend on day and in total (see Ledger).
func (l *PebbleLedger) Spent(cmp string, day int64) (int64, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, err := l.dayLocked(cmp, day)
	if err != nil {
		return 0, 0, fmt.Errorf("ledger: day spend of %s: %w", cmp, err)
	}
	t, err := l.totalLocked(cmp)
	if err != nil {
		return 0, 0, fmt.Errorf("ledger: total spend of %s: %w", cmp, err)
	}
	return d, t, nil
}

// Hours reports hourly figures (see Ledger).
func (l *PebbleLedger) Hours(cmp string, fromHour, toHour int64, fn func(HourTotals)) error {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: ledgerHourKey(cmp, fromHour), UpperBound: ledgerHourKey(cmp, toHour)})
	if err != nil {
		return err
	}
	defer it.Close()
	p := len(ledgerHourPrefix(cmp))
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != p+8 {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if t, ok := decodeHour(int64(binary.BigEndian.Uint64(k[p:])), v); ok {
			fn(t)
		}
	}
	return it.Error()
}

// Forget deletes dedup records of auctions bid before unix time before and
// trims the in-memory caches of old days and hours.
func (l *PebbleLedger) Forget(before int64) error {
	if before <= 0 {
		return nil
	}
	end := binary.BigEndian.AppendUint32(append([]byte(nil), noticePrefix...), uint32(before/3600))
	if err := l.db.DeleteRange(noticePrefix, end, pebble.NoSync); err != nil {
		return fmt.Errorf("ledger: forget notices: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	oldHour := before/3600 - 48
	for k := range l.hours {
		if k.hour < oldHour {
			delete(l.hours, k)
		}
	}
	oldDay := dayOfUnixUTC(before - 3*86400)
	for k := range l.days {
		if k.day < oldDay {
			delete(l.days, k)
		}
	}
	return nil
}
