package creative

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Offline evaluation of the recommender on public e-commerce logs, through
// the same Recommender code the bidder uses. The data sets are described in
// the repository's shared data directory (PROVENANCE.md):
//
//   - yoochoose-clicks-100k/: a session sample of the RecSys Challenge 2015
//     click log, split into train_full and test by time. The task is the
//     session-based next click: every session is a user; for every prefix of
//     a test session, predict the next clicked item.
//   - online-retail.csv.gz: UCI Online Retail invoices. The task is the next
//     basket: for every customer with at least two invoices, recommend from
//     the purchases before their last invoice; a hit is any recommended item
//     in that last invoice.

// Names of the data sets and methods in an EvalReport.
const (
	EvalDatasetYooChoose = "yoochoose-clicks-100k"
	EvalDatasetRetail    = "online-retail"

	// EvalMethodRecommender is the Recommender with the evaluated options
	// (EvalOptions, or tuned on a validation split with EvalOptions.Tune;
	// on Online Retail with purchased items excluded, the advertising
	// default).
	EvalMethodRecommender = "recommender"
	// EvalMethodRecommenderDefaults is the Recommender with default
	// options, reported next to tuned ones.
	EvalMethodRecommenderDefaults = "recommender, default options"
	// EvalMethodRecommenderRebuy is the Recommender with IncludePurchased
	// (Online Retail only: re-buying is normal in next-basket data).
	EvalMethodRecommenderRebuy = "recommender, purchased included"
	// EvalMethodRecommenderRebuyDefaults is EvalMethodRecommenderRebuy with
	// default options otherwise.
	EvalMethodRecommenderRebuyDefaults = "recommender, purchased included, default options"
	// EvalMethodPopular recommends the K items with the most training events.
	EvalMethodPopular = "most popular"
	// EvalMethodPopularNew recommends the K items with the most training
	// events that the user has not purchased (Online Retail only).
	EvalMethodPopularNew = "most popular, purchased excluded"
	// EvalMethodRecent recommends the user's own K latest distinct items.
	EvalMethodRecent = "most recent"
)

// EvalOptions configures RunEval. The zero value evaluates both data sets in
// full with default recommender options.
type EvalOptions struct {
	// K is the length of a recommendation list. Default 5.
	K int
	// YooChoose, Retail and RetailRebuy are the recommender options for
	// each data set and Online Retail variant (purchased items excluded, the
	// advertising default, or included); zero fields take the Recommender
	// defaults, IncludePurchased is set by the evaluation. Rows with
	// default options are reported too when these differ.
	// TunedEvalOptions holds the options found by Tune.
	YooChoose, Retail, RetailRebuy RecommenderOptions
	// Tune searches recommender options on a validation split carved from
	// the training data only (the last day of YooChoose train_full; each
	// customer's last training invoice on Online Retail), starting from
	// the options above, and evaluates the best on test. It takes a few
	// minutes.
	Tune bool
	// MaxTrainLines and MaxTestLines read at most this many lines of the
	// YooChoose training and test files; 0 reads all.
	MaxTrainLines, MaxTestLines int
	// MaxRetailLines reads at most this many lines of Online Retail; 0
	// reads all. The data is in date order, so a prefix is a shorter period.
	MaxRetailLines int
	// SkipYooChoose and SkipRetail leave a data set out.
	SkipYooChoose, SkipRetail bool
}

// TunedEvalOptions returns the options that RunEval with Tune chose on the
// full data (on validation splits of the training data only), so that a run
// without Tune reproduces the final numbers in seconds:
//
//	chaser eval-recommender --data ../shared/data          # these options
//	chaser eval-recommender --data ../shared/data --tune   # search again
//
// Session browsing (YooChoose) favours the last few clicks (PositionDecay
// 0.2) and items clicked one after the other (CoDecay 0.7); next-basket
// purchases (Online Retail) favour frequency over a long history (window
// 100, half-life 30 days to a year) and, when re-buying is allowed, the
// customer's own items (SelfWeight 8).
func TunedEvalOptions() EvalOptions {
	return EvalOptions{
		YooChoose: RecommenderOptions{
			HistoryWindow: 10, CoWindow: 10, CoDecay: 0.7, PositionDecay: 0.2,
			SelfWeight: 0.5, Shrink: 50,
		},
		Retail: RecommenderOptions{
			HistoryWindow: 100, CoWindow: 30, CoDecay: 0.9, PositionDecay: 1,
			HalfLife: 30 * 24 * time.Hour, Shrink: 200,
		},
		RetailRebuy: RecommenderOptions{
			HistoryWindow: 100, CoWindow: 100, PositionDecay: 1,
			HalfLife: 365 * 24 * time.Hour, SelfWeight: 8, Shrink: 200,
		},
	}
}

// EvalResult is the score of one method on one data set.
type EvalResult struct {
	Dataset string
	Method  string
	Cases   int     // predictions scored
	Skipped int     // predictions not scored (target unknown in training)
	HitRate float64 // share of cases with a relevant item in the top K
	MRR     float64 // mean reciprocal rank of the first relevant item in the top K (0 if none)
}

// EvalTrial is one option setting tried on a validation split.
type EvalTrial struct {
	Dataset string
	Variant string // the method being tuned
	Options RecommenderOptions
	Result  EvalResult
}

// EvalReport is what RunEval measured.
type EvalReport struct {
	K       int
	Results []EvalResult
	// YooChoose, Retail and RetailRebuy are the options of the
	// EvalMethodRecommender rows (and of EvalMethodRecommenderRebuy),
	// defaults applied.
	YooChoose, Retail, RetailRebuy RecommenderOptions
	Trials                         []EvalTrial // the tuning trials, in order
	Elapsed                        time.Duration
}

// Result returns the result of method on dataset.
func (r EvalReport) Result(dataset, method string) (EvalResult, bool) {
	for _, x := range r.Results {
		if x.Dataset == dataset && x.Method == method {
			return x, true
		}
	}
	return EvalResult{}, false
}

// ErrEvalData is wrapped by the errors RunEval returns for missing or
// malformed data files.
var ErrEvalData = errors.New("creative: evaluation data")

// RunEval evaluates the recommender on the public data sets under dataDir
// (the directory holding yoochoose-clicks-100k/ and online-retail.csv.gz)
// and writes a markdown report to w. It is what `chaser eval-recommender
// --data DIR` runs.
func RunEval(w io.Writer, dataDir string, opts EvalOptions) (EvalReport, error) {
	start := time.Now()
	if opts.K <= 0 {
		opts.K = 5
	}
	for _, o := range []RecommenderOptions{opts.YooChoose, opts.Retail, opts.RetailRebuy} {
		if err := o.Validate(); err != nil {
			return EvalReport{}, err
		}
	}
	rep := EvalReport{K: opts.K}
	if !opts.SkipYooChoose {
		if err := evalYooChoose(&rep, dataDir, opts); err != nil {
			return rep, err
		}
	}
	if !opts.SkipRetail {
		if err := evalRetail(&rep, dataDir, opts); err != nil {
			return rep, err
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, evalWriteReport(w, rep, opts)
}

// ---- YooChoose: session-based next click -------------------------------

// evalSession is one YooChoose session: its clicks in time order.
type evalSession []ItemEvent

func evalYooChoose(rep *EvalReport, dataDir string, opts EvalOptions) error {
	dir := filepath.Join(dataDir, "yoochoose-clicks-100k")
	train, err := evalReadSessions(dir, "train_full", opts.MaxTrainLines)
	if err != nil {
		return err
	}
	test, err := evalReadSessions(dir, "test", opts.MaxTestLines)
	if err != nil {
		return err
	}
	k := opts.K
	base := opts.YooChoose
	base.EnsureDefaults()
	final := base
	if opts.Tune {
		tr, valid := evalSplitLastDay(train)
		cache := new(evalModelCache)
		final = evalTune(rep, EvalDatasetYooChoose, EvalMethodRecommender, base, evalYooChooseGrid, func(o RecommenderOptions) EvalResult {
			return evalSessionRecommender(tr, valid, o, k, cache)
		})
	}
	rep.YooChoose = final
	rep.Results = append(rep.Results, evalSessionRecommender(train, test, final, k, nil))
	var defaults RecommenderOptions
	defaults.EnsureDefaults()
	if final != defaults {
		r := evalSessionRecommender(train, test, defaults, k, nil)
		r.Method = EvalMethodRecommenderDefaults
		rep.Results = append(rep.Results, r)
	}
	rep.Results = append(rep.Results,
		evalSessions(train, test, k, EvalMethodPopular, evalPopularPredictor(train, k)),
		evalSessions(train, test, k, EvalMethodRecent, evalRecentPredictor(k)))
	return nil
}

// evalReadSessions reads a tab-separated SessionId, ItemId, Time (epoch seconds,
// fractional) file with a header line, from dir/name.txt or its gzip
// variants, and returns the sessions in order of first appearance, each in
// time order.
func evalReadSessions(dir, name string, maxLines int) ([]evalSession, error) {
	f, path, err := evalOpenFile(dir,
		name+".txt.gz", name+".txt",
		"yoochoose-clicks-100k_"+name+".txt.gz", "yoochoose-clicks-100k_"+name+".txt")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type click struct {
		item string
		ms   int64
		line int
	}
	var order []string
	bySession := make(map[string][]click)
	items := make(map[string]string) // interned item ids
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if maxLines > 0 && line > maxLines+1 {
			break
		}
		text := sc.Text()
		if line == 1 && strings.HasPrefix(text, "SessionId") {
			continue
		}
		if text == "" {
			continue
		}
		fields := strings.Split(text, "\t")
		if len(fields) != 3 {
			return nil, fmt.Errorf("%w: %s:%d: want 3 tab-separated fields, got %d", ErrEvalData, path, line, len(fields))
		}
		secs, err := strconv.ParseFloat(fields[2], 64)
		if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
			return nil, fmt.Errorf("%w: %s:%d: bad time %q", ErrEvalData, path, line, fields[2])
		}
		item, ok := items[fields[1]]
		if !ok {
			item = strings.Clone(fields[1])
			items[item] = item
		}
		sid := fields[0]
		cl, ok := bySession[sid]
		if !ok {
			sid = strings.Clone(sid)
			order = append(order, sid)
		}
		bySession[sid] = append(cl, click{item, int64(math.Round(secs * 1000)), line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrEvalData, path, err)
	}
	out := make([]evalSession, 0, len(order))
	for _, sid := range order {
		cl := bySession[sid]
		slices.SortStableFunc(cl, func(a, b click) int { return cmp.Compare(a.ms, b.ms) })
		s := make(evalSession, len(cl))
		for i, c := range cl {
			s[i] = ItemEvent{Item: c.item, Kind: ItemView, TS: c.ms / 1000}
		}
		out = append(out, s)
	}
	return out, nil
}

// evalSplitLastDay splits sessions as the session-rec framework splits train
// from test: sessions ending in the last 24 hours go to the second part,
// restricted to items of the first part and to sessions still of length ≥ 2.
func evalSplitLastDay(all []evalSession) (train, valid []evalSession) {
	var tmax int64
	for _, s := range all {
		tmax = max(tmax, s[len(s)-1].TS)
	}
	known := make(map[string]bool)
	for _, s := range all {
		if s[len(s)-1].TS < tmax-86400 {
			train = append(train, s)
			for _, e := range s {
				known[e.Item] = true
			}
		}
	}
	for _, s := range all {
		if s[len(s)-1].TS < tmax-86400 {
			continue
		}
		var v evalSession
		for _, e := range s {
			if known[e.Item] {
				v = append(v, e)
			}
		}
		if len(v) >= 2 {
			valid = append(valid, v)
		}
	}
	return train, valid
}

// evalTrainSessions feeds every click of the sessions, in global time order, to
// a new recommender, each session being one user, and rebuilds it.
func evalTrainSessions(sessions []evalSession, o RecommenderOptions) *Recommender {
	type ref struct{ s, i int32 }
	var refs []ref
	for s, sess := range sessions {
		for i := range sess {
			refs = append(refs, ref{int32(s), int32(i)})
		}
	}
	slices.SortStableFunc(refs, func(a, b ref) int {
		return cmp.Compare(sessions[a.s][a.i].TS, sessions[b.s][b.i].TS)
	})
	rec := NewRecommender(o)
	for _, r := range refs {
		s := sessions[r.s]
		rec.Observe(s[:r.i], s[r.i], "")
	}
	rec.Rebuild()
	return rec
}

type evalPredictor func(dst []string, history []ItemEvent) []string

func evalSessionRecommender(train, test []evalSession, o RecommenderOptions, k int, cache *evalModelCache) EvalResult {
	rec := cache.get(o, func(o RecommenderOptions) *Recommender { return evalTrainSessions(train, o) })
	return evalSessions(train, test, k, EvalMethodRecommender, func(dst []string, h []ItemEvent) []string {
		return rec.Recommend(dst, h, k, h[len(h)-1].TS, nil)
	})
}

// evalSessions scores predict on every next click of every test session
// (the session-rec convention: repeated clicks on an item count; a target
// never seen in training is skipped).
func evalSessions(train, test []evalSession, k int, method string, predict evalPredictor) EvalResult {
	known := make(map[string]bool)
	for _, s := range train {
		for _, e := range s {
			known[e.Item] = true
		}
	}
	res := EvalResult{Dataset: EvalDatasetYooChoose, Method: method}
	var buf []string
	var hits, rr float64
	for _, s := range test {
		for i := 1; i < len(s); i++ {
			target := s[i].Item
			if !known[target] {
				res.Skipped++
				continue
			}
			buf = predict(buf[:0], s[:i])
			res.Cases++
			if j := slices.Index(buf[:min(len(buf), k)], target); j >= 0 {
				hits++
				rr += 1 / float64(j+1)
			}
		}
	}
	if res.Cases > 0 {
		res.HitRate = hits / float64(res.Cases)
		res.MRR = rr / float64(res.Cases)
	}
	return res
}

// evalPopularPredictor recommends the k items with the most training clicks
// (ties: the lower item id string).
func evalPopularPredictor(train []evalSession, k int) evalPredictor {
	counts := make(map[string]int)
	for _, s := range train {
		for _, e := range s {
			counts[e.Item]++
		}
	}
	top := evalTopCounted(counts, k)
	return func(dst []string, _ []ItemEvent) []string { return append(dst, top...) }
}

func evalTopCounted(counts map[string]int, k int) []string {
	items := make([]string, 0, len(counts))
	for it := range counts {
		items = append(items, it)
	}
	slices.SortFunc(items, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return items[:min(k, len(items))]
}

// evalRecentPredictor recommends the user's own k latest distinct items.
func evalRecentPredictor(k int) evalPredictor {
	return func(dst []string, h []ItemEvent) []string {
		start := len(dst)
		for i := len(h) - 1; i >= 0 && len(dst)-start < k; i-- {
			if !slices.Contains(dst[start:], h[i].Item) {
				dst = append(dst, h[i].Item)
			}
		}
		return dst
	}
}

// ---- Online Retail: next basket -------------------------------------------

// retailLine is one purchased product line of an invoice.
type evalRetailLine struct {
	customer string
	invoice  string
	item     string
	ts       int64
}

func evalRetail(rep *EvalReport, dataDir string, opts EvalOptions) error {
	lines, err := evalReadRetail(dataDir, opts.MaxRetailLines)
	if err != nil {
		return err
	}
	k := opts.K
	train, last := evalSplitLastInvoice(lines)
	variants := []struct {
		method, defaults string
		rebuy            bool
		in               RecommenderOptions
		out              *RecommenderOptions
	}{
		{EvalMethodRecommender, EvalMethodRecommenderDefaults, false, opts.Retail, &rep.Retail},
		{EvalMethodRecommenderRebuy, EvalMethodRecommenderRebuyDefaults, true, opts.RetailRebuy, &rep.RetailRebuy},
	}
	var vtrain []evalRetailLine
	var vlast map[string][]evalRetailLine
	if opts.Tune {
		vtrain, vlast = evalSplitLastInvoice(train)
	}
	for _, v := range variants {
		base := v.in
		base.IncludePurchased = v.rebuy
		base.EnsureDefaults()
		final := base
		if opts.Tune {
			grid := evalRetailGrid
			if !v.rebuy {
				grid = slices.DeleteFunc(slices.Clone(grid), func(p evalParam) bool { return p.name == "SelfWeight" })
			}
			cache := new(evalModelCache)
			final = evalTune(rep, EvalDatasetRetail, v.method, base, grid, func(o RecommenderOptions) EvalResult {
				return evalRetailRecommender(vtrain, vlast, o, k, v.method, cache)
			})
		}
		*v.out = final
		rep.Results = append(rep.Results, evalRetailRecommender(train, last, final, k, v.method, nil))
		defaults := RecommenderOptions{IncludePurchased: v.rebuy}
		defaults.EnsureDefaults()
		if final != defaults {
			rep.Results = append(rep.Results, evalRetailRecommender(train, last, defaults, k, v.defaults, nil))
		}
	}
	counts := make(map[string]int)
	for _, l := range train {
		counts[l.item]++
	}
	top := evalTopCounted(counts, len(counts))
	rep.Results = append(rep.Results,
		evalBaskets(train, last, k, EvalMethodPopular, func(dst []string, _ []ItemEvent) []string { return append(dst, top[:min(k, len(top))]...) }),
		evalBaskets(train, last, k, EvalMethodPopularNew, func(dst []string, h []ItemEvent) []string {
			start := len(dst)
			for _, it := range top {
				if len(dst)-start == k {
					break
				}
				if !slices.ContainsFunc(h, func(e ItemEvent) bool { return e.Item == it }) {
					dst = append(dst, it)
				}
			}
			return dst
		}),
		evalBaskets(train, last, k, EvalMethodRecent, evalRecentPredictor(k)))
	return nil
}

// evalReadRetail reads the product lines of Online Retail with a customer, in
// file (date) order, leaving out cancellations (invoices starting with C),
// lines with a quantity ≤ 0, and stock codes that are not products (postage,
// manual, discount, bank charges, carriage, … : codes whose first five
// characters are not digits).
func evalReadRetail(dataDir string, maxLines int) ([]evalRetailLine, error) {
	f, path, err := evalOpenFile(dataDir, "online-retail.csv.gz", "online-retail.csv")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 64<<10))
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: header: %v", ErrEvalData, path, err)
	}
	col := make(map[string]int)
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	need := []string{"InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "CustomerID"}
	for _, c := range need {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%w: %s: no column %s", ErrEvalData, path, c)
		}
	}
	cInv, cCode, cQty, cDate, cCust := col["InvoiceNo"], col["StockCode"], col["Quantity"], col["InvoiceDate"], col["CustomerID"]
	intern := make(map[string]string)
	in := func(s string) string {
		if v, ok := intern[s]; ok {
			return v
		}
		s = strings.Clone(s)
		intern[s] = s
		return s
	}
	var out []evalRetailLine
	for n := 1; maxLines <= 0 || n <= maxLines; n++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrEvalData, path, err)
		}
		inv, code, cust := rec[cInv], rec[cCode], rec[cCust]
		if cust == "" || strings.HasPrefix(inv, "C") || !evalIsProductCode(code) {
			continue
		}
		qty, err := strconv.ParseFloat(rec[cQty], 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: line %d: bad quantity %q", ErrEvalData, path, n+1, rec[cQty])
		}
		if qty <= 0 {
			continue
		}
		t, err := evalParseRetailDate(rec[cDate])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: line %d: %v", ErrEvalData, path, n+1, err)
		}
		out = append(out, evalRetailLine{customer: in(cust), invoice: in(inv), item: in(code), ts: t.Unix()})
	}
	return out, nil
}

func evalIsProductCode(code string) bool {
	if len(code) < 5 {
		return false
	}
	for i := range 5 {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

func evalParseRetailDate(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "1/2/2006 15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad date %q", s)
}

// evalSplitLastInvoice hides the last invoice (by date, then number) of every
// customer with at least two invoices: it returns the other lines, in
// order, and the hidden lines by customer.
func evalSplitLastInvoice(lines []evalRetailLine) (train []evalRetailLine, last map[string][]evalRetailLine) {
	type inv struct {
		ts int64
		no string
	}
	newest := make(map[string]inv)
	count := make(map[string]map[string]bool)
	for _, l := range lines {
		cur, ok := newest[l.customer]
		if !ok || l.ts > cur.ts || (l.ts == cur.ts && l.invoice > cur.no) {
			newest[l.customer] = inv{l.ts, l.invoice}
		}
		if count[l.customer] == nil {
			count[l.customer] = make(map[string]bool)
		}
		count[l.customer][l.invoice] = true
	}
	last = make(map[string][]evalRetailLine)
	for _, l := range lines {
		if len(count[l.customer]) >= 2 && l.invoice == newest[l.customer].no {
			last[l.customer] = append(last[l.customer], l)
			continue
		}
		train = append(train, l)
	}
	return train, last
}

// evalHistories returns each customer's purchases in train, in order.
func evalHistories(train []evalRetailLine) map[string][]ItemEvent {
	h := make(map[string][]ItemEvent)
	for _, l := range train {
		h[l.customer] = append(h[l.customer], ItemEvent{Item: l.item, Kind: ItemPurchase, TS: l.ts})
	}
	return h
}

func evalRetailRecommender(train []evalRetailLine, last map[string][]evalRetailLine, o RecommenderOptions, k int, method string, cache *evalModelCache) EvalResult {
	rec := cache.get(o, func(o RecommenderOptions) *Recommender {
		idx := slices.Clone(train)
		slices.SortStableFunc(idx, func(a, b evalRetailLine) int { return cmp.Compare(a.ts, b.ts) })
		rec := NewRecommender(o)
		hist := make(map[string][]ItemEvent)
		for _, l := range idx {
			ev := ItemEvent{Item: l.item, Kind: ItemPurchase, TS: l.ts}
			h := hist[l.customer]
			rec.Observe(h, ev, "")
			hist[l.customer] = append(h, ev)
		}
		rec.Rebuild()
		return rec
	})
	return evalBaskets(train, last, k, method, func(dst []string, h []ItemEvent) []string {
		return rec.Recommend(dst, h, k, h[len(h)-1].TS, nil)
	})
}

// evalModelCache keeps the last trained model of a tuning run, so that trying
// an option that only affects Rebuild or Recommend does not retrain.
type evalModelCache struct {
	key RecommenderOptions
	rec *Recommender
}

// evalTrainingOptions are the fields of o that Observe uses.
func evalTrainingOptions(o RecommenderOptions) RecommenderOptions {
	return RecommenderOptions{
		CoWindow: o.CoWindow, CoDecay: o.CoDecay, HalfLife: o.HalfLife, CartWeight: o.CartWeight, PurchaseWeight: o.PurchaseWeight,
		MaxPairsPerItem: o.MaxPairsPerItem, PopularityHalfLife: o.PopularityHalfLife, RebuildEvery: o.RebuildEvery,
	}
}

// get returns a model trained with o: the cached one, with o's serving
// options (rebuilt if need be), if it was trained with the same training
// options, or else a new one from train. A nil cache always trains.
func (c *evalModelCache) get(o RecommenderOptions, train func(RecommenderOptions) *Recommender) *Recommender {
	o.EnsureDefaults()
	if c == nil {
		return train(o)
	}
	if c.rec != nil && c.key == evalTrainingOptions(o) {
		c.rec.reconfigure(o)
		return c.rec
	}
	c.rec, c.key = train(o), evalTrainingOptions(o)
	return c.rec
}

// evalBaskets scores predict for every customer with a hidden invoice: a
// hit is any of the top k items in it.
func evalBaskets(train []evalRetailLine, last map[string][]evalRetailLine, k int, method string, predict evalPredictor) EvalResult {
	hist := evalHistories(train)
	customers := make([]string, 0, len(last))
	for c := range last {
		customers = append(customers, c)
	}
	slices.Sort(customers)
	res := EvalResult{Dataset: EvalDatasetRetail, Method: method}
	var buf []string
	var hits, rr float64
	for _, c := range customers {
		h := hist[c]
		if len(h) == 0 {
			res.Skipped++
			continue
		}
		buf = predict(buf[:0], h)
		res.Cases++
		for j, it := range buf[:min(len(buf), k)] {
			if slices.ContainsFunc(last[c], func(l evalRetailLine) bool { return l.item == it }) {
				hits++
				rr += 1 / float64(j+1)
				break
			}
		}
	}
	if res.Cases > 0 {
		res.HitRate = hits / float64(res.Cases)
		res.MRR = rr / float64(res.Cases)
	}
	return res
}

// ---- tuning ---------------------------------------------------------------

// evalParam is one option searched by tune, with the values tried.
type evalParam struct {
	name   string
	values []float64
	set    func(o *RecommenderOptions, v float64)
}

var evalYooChooseGrid = []evalParam{
	{"HistoryWindow", []float64{1, 3, 10}, func(o *RecommenderOptions, v float64) { o.HistoryWindow = int(v) }},
	{"PositionDecay", []float64{1, 0.7, 0.4, 0.2}, func(o *RecommenderOptions, v float64) { o.PositionDecay = v }},
	{"SelfWeight", []float64{0.25, 0.5, 1, 2}, func(o *RecommenderOptions, v float64) { o.SelfWeight = v }},
	{"Shrink", []float64{-1, 2, 10, 50, 200}, func(o *RecommenderOptions, v float64) { o.Shrink = v }},
	{"CoWindow", []float64{3, 10, 30}, func(o *RecommenderOptions, v float64) { o.CoWindow = int(v) }},
	{"CoDecay", []float64{1, 0.7, 0.4}, func(o *RecommenderOptions, v float64) { o.CoDecay = v }},
}

var evalRetailGrid = []evalParam{
	{"HistoryWindow", []float64{10, 30, 100}, func(o *RecommenderOptions, v float64) { o.HistoryWindow = int(v) }},
	{"PositionDecay", []float64{1, 0.95, 0.8}, func(o *RecommenderOptions, v float64) { o.PositionDecay = v }},
	{"HalfLife", []float64{3, 30, 365}, func(o *RecommenderOptions, v float64) { o.HalfLife = time.Duration(v) * 24 * time.Hour }},
	{"SelfWeight", []float64{0.5, 1, 2, 4, 8}, func(o *RecommenderOptions, v float64) { o.SelfWeight = v }},
	{"Shrink", []float64{2, 10, 50, 200}, func(o *RecommenderOptions, v float64) { o.Shrink = v }},
	{"CoWindow", []float64{10, 30, 100}, func(o *RecommenderOptions, v float64) { o.CoWindow = int(v) }},
	{"CoDecay", []float64{1, 0.9, 0.7}, func(o *RecommenderOptions, v float64) { o.CoDecay = v }},
}

// evalTune runs two rounds of coordinate search over grid from base, scoring
// each setting with score (on validation data only) by hit rate, then MRR,
// and returns the best; every trial is recorded in rep.
func evalTune(rep *EvalReport, dataset, variant string, base RecommenderOptions, grid []evalParam, score func(RecommenderOptions) EvalResult) RecommenderOptions {
	best := base
	bestRes := score(best)
	rep.Trials = append(rep.Trials, EvalTrial{dataset, variant, best, bestRes})
	better := func(a, b EvalResult) bool {
		if a.HitRate != b.HitRate {
			return a.HitRate > b.HitRate
		}
		return a.MRR > b.MRR
	}
	for range 2 {
		changed := false
		for _, p := range grid {
			for _, v := range p.values {
				o := best
				p.set(&o, v)
				if o == best || o.Validate() != nil {
					continue
				}
				res := score(o)
				rep.Trials = append(rep.Trials, EvalTrial{dataset, variant, o, res})
				if better(res, bestRes) {
					best, bestRes, changed = o, res, true
				}
			}
		}
		if !changed {
			break
		}
	}
	return best
}

// ---- report ---------------------------------------------------------------

func evalWriteReport(w io.Writer, rep EvalReport, opts EvalOptions) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "## Recommender offline evaluation (K = %d)\n\n", rep.K)
	fmt.Fprintf(&b, "| data set | method | cases | hit@%d | MRR@%d |\n|---|---|---:|---:|---:|\n", rep.K, rep.K)
	for _, r := range rep.Results {
		fmt.Fprintf(&b, "| %s | %s | %d | %.4f | %.4f |\n", r.Dataset, r.Method, r.Cases, r.HitRate, r.MRR)
	}
	b.WriteString("\n")
	if !opts.SkipYooChoose {
		fmt.Fprintf(&b, "- %s: trained on train_full (every session a user, clicks in time order through Observe); "+
			"every next click of every test session is predicted from the clicks before it, repeats included; "+
			"targets never seen in training are skipped (session-rec convention). Options: %s.\n",
			EvalDatasetYooChoose, evalDescribeOptions(rep.YooChoose))
	}
	if !opts.SkipRetail {
		fmt.Fprintf(&b, "- %s: product lines with a customer, cancellations, returns and non-product codes left out; "+
			"each customer's last invoice hidden (customers with ≥ 2 invoices), the model trained on all other lines; "+
			"a hit is any of the %d in the hidden invoice, MRR of the first hit. Options: %s; purchased included: %s.\n",
			EvalDatasetRetail, rep.K, evalDescribeOptions(rep.Retail), evalDescribeOptions(rep.RetailRebuy))
	}
	if len(rep.Trials) > 0 {
		b.WriteString("- Tuning: coordinate search on validation splits of the training data only " +
			"(YooChoose: sessions of the last training day; Online Retail: each customer's last training invoice), " +
			"best hit rate then MRR; the test data was not used.\n\n")
		b.WriteString("| data set | variant | options | hit | MRR |\n|---|---|---|---:|---:|\n")
		for _, t := range rep.Trials {
			fmt.Fprintf(&b, "| %s | %s | %s | %.4f | %.4f |\n", t.Dataset, t.Variant, evalDescribeOptions(t.Options), t.Result.HitRate, t.Result.MRR)
		}
	}
	fmt.Fprintf(&b, "\nElapsed: %s.\n", rep.Elapsed.Round(time.Millisecond))
	_, err := w.Write(b.Bytes())
	return err
}

func evalDescribeOptions(o RecommenderOptions) string {
	return fmt.Sprintf("HistoryWindow=%d CoWindow=%d CoDecay=%g PositionDecay=%g HalfLife=%s SelfWeight=%g Shrink=%g Neighbours=%d",
		o.HistoryWindow, o.CoWindow, o.CoDecay, o.PositionDecay, o.HalfLife, o.SelfWeight, max(o.Shrink, 0), o.Neighbours)
}

// evalOpenFile opens the first of names that exists in dir, decompressing
// gzip (recognised by its magic bytes).
func evalOpenFile(dir string, names ...string) (io.ReadCloser, string, error) {
	for _, name := range names {
		path := filepath.Join(dir, name)
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, path, fmt.Errorf("%w: %v", ErrEvalData, err)
		}
		br := bufio.NewReaderSize(f, 64<<10)
		if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
			zr, err := gzip.NewReader(br)
			if err != nil {
				f.Close()
				return nil, path, fmt.Errorf("%w: %s: %v", ErrEvalData, path, err)
			}
			return evalReadCloser{zr, f}, path, nil
		}
		return evalReadCloser{br, f}, path, nil
	}
	return nil, "", fmt.Errorf("%w: none of %s in %s", ErrEvalData, strings.Join(names, ", "), dir)
}

type evalReadCloser struct {
	io.Reader
	c io.Closer
}

func (r evalReadCloser) Close() error { return r.c.Close() }
