package pacing

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/campaign"
	"github.com/chaser-dsp/chaser/store"
)

// Notice outcomes and errors.
var (
	ErrPriceAboveBid   = errors.New("pacing: clearing price above the bid")
	ErrBadPrice        = errors.New("pacing: missing or malformed price")
	ErrUnknownCampaign = errors.New("pacing: unknown campaign")
	ErrDuplicate       = errors.New("pacing: duplicate notice")
	ErrExpired         = errors.New("pacing: notice too old")
)

// NoticeMaxAge is how long after a bid its notices are accepted.
const NoticeMaxAge = 24 * time.Hour

// Notice kinds.
const (
	NoticeWin  = "win"
	NoticeBill = "bill"
	NoticeLoss = "loss"
	NoticeImp  = "imp"
)

// spendState is one campaign's spend, readable without locks.
type spendState struct {
	total atomic.Int64 // micros, all time
	day   atomic.Int64 // micros, on dayKey
	key   atomic.Int64 // yyyymmdd of day, in the campaign's time zone
}

// Ledger records spend from notices and answers budget questions.
type Ledger struct {
	db     *pebble.DB
	now    func() time.Time
	signer *Signer

	mu    sync.Mutex // serialises notice writes
	state sync.Map   // campaign id → *spendState
}

// OpenLedger loads recorded spend.
func OpenLedger(db *pebble.DB, signer *Signer, now func() time.Time) (*Ledger, error) {
	if now == nil {
		now = time.Now
	}
	return &Ledger{db: db, now: now, signer: signer}, nil
}

func totalKey(cmp string) []byte { return []byte(store.PrefixPacing + "s/" + cmp + "/total") }
func dayKey(cmp string, day int64) []byte {
	return []byte(fmt.Sprintf("%ss/%s/d/%08d", store.PrefixPacing, cmp, day))
}

func dayOf(t time.Time, loc *time.Location) int64 {
	y, m, d := t.In(loc).Date()
	return int64(y*10000 + int(m)*100 + d)
}

func readInt(db pebble.Reader, k []byte) int64 {
	v, closer, err := db.Get(k)
	if err != nil {
		return 0
	}
	var n int64
	if len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	closer.Close()
	return n
}

func putInt(b *pebble.Batch, k []byte, n int64) {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(n))
	_ = b.Set(k, v[:], nil)
}

// stateFor returns the campaign's spend state for today, loading it from
// the store on first use and rolling it over at the day boundary.
func (l *Ledger) stateFor(c *campaign.Campaign, now time.Time) *spendState {
	today := dayOf(now, c.Location())
	v, ok := l.state.Load(c.ID)
	if ok {
		st := v.(*spendState)
		if st.key.Load() == today {
			return st
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok = l.state.Load(c.ID)
	var st *spendState
	if ok {
		st = v.(*spendState)
	} else {
		st = &spendState{}
		st.total.Store(readInt(l.db, totalKey(c.ID)))
		l.state.Store(c.ID, st)
	}
	if st.key.Load() != today {
		st.day.Store(readInt(l.db, dayKey(c.ID, today)))
		st.key.Store(today)
	}
	return st
}

// Spend returns a campaign's spend today and in total, in micros.
func (l *Ledger) Spend(c *campaign.Campaign) (today, total int64) {
	st := l.stateFor(c, l.now())
	return st.day.Load(), st.total.Load()
}

// Remaining returns how many micros the campaign may still spend now: the
// smaller of what is left of its daily and total budgets (a budget of 0 is
// no limit; MaxInt64 when neither limits).
func (l *Ledger) Remaining(c *campaign.Campaign, now time.Time) int64 {
	st := l.stateFor(c, now)
	left := int64(1<<63 - 1)
	if c.Budget.DailyMicros > 0 {
		left = c.Budget.DailyMicros - st.day.Load()
	}
	if c.Budget.TotalMicros > 0 {
		if t := c.Budget.TotalMicros - st.total.Load(); t < left {
			left = t
		}
	}
	if left < 0 {
		left = 0
	}
	return left
}

// NoticeResult says what a notice did.
type NoticeResult struct {
	Token       Token
	PriceMicros int64 // clearing price, CPM micros
	Spent       int64 // micros added to spend (0 when deduplicated)
}

func noticeKey(kind string, t *Token) []byte {
	h := sha256.New()
	h.Write([]byte(t.Campaign))
	h.Write([]byte{0})
	h.Write([]byte(t.AuctionID))
	h.Write([]byte{0})
	h.Write([]byte(t.ImpID))
	k := []byte(store.PrefixPacing + "n/" + kind + "/")
	return h.Sum(k)[:len(k)+16]
}

// RecordWin handles a win or billing notice: verify the token, check the
// clearing price, and add the impression's cost to spend once per auction.
// Win and billing notices of one auction share a spend record, so whichever
// comes first moves the budget and the other is a duplicate for spend.
func (l *Ledger) RecordWin(kind, token string, priceCPMMicros int64, lookup func(id string) *campaign.Campaign) (NoticeResult, error) {
	t, err := l.signer.Parse(token)
	if err != nil {
		return NoticeResult{}, err
	}
	res := NoticeResult{Token: t, PriceMicros: priceCPMMicros}
	if priceCPMMicros < 0 {
		return res, ErrBadPrice
	}
	if priceCPMMicros > t.BidMicros {
		return res, ErrPriceAboveBid
	}
	now := l.now()
	if now.Sub(time.Unix(t.Unix, 0)) > NoticeMaxAge {
		return res, ErrExpired
	}
	c := lookup(t.Campaign)
	if c == nil {
		return res, ErrUnknownCampaign
	}
	cost := priceCPMMicros / 1000
	st := l.stateFor(c, now)

	l.mu.Lock()
	defer l.mu.Unlock()
	seenKind := noticeKey(kind, &t)
	spendKey := noticeKey("spend", &t)
	if _, closer, err := l.db.Get(seenKind); err == nil {
		closer.Close()
		return res, ErrDuplicate
	}
	b := l.db.NewBatch()
	defer b.Close()
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(now.Unix()))
	_ = b.Set(seenKind, ts[:], nil)
	already := false
	if _, closer, err := l.db.Get(spendKey); err == nil {
		closer.Close()
		already = true
	}
	if !already {
		_ = b.Set(spendKey, ts[:], nil)
		day := st.key.Load()
		putInt(b, totalKey(c.ID), st.total.Load()+cost)
		putInt(b, dayKey(c.ID, day), st.day.Load()+cost)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return res, fmt.Errorf("record %s notice: %w", kind, err)
	}
	if !already {
		st.total.Add(cost)
		st.day.Add(cost)
		res.Spent = cost
	}
	return res, nil
}
