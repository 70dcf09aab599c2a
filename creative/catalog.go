package creative

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// Limits on product feeds.
const (
	MaxFeedProducts = 1_000_000
	MaxFieldLen     = 2048
	maxFeedErrors   = 20
)

// ErrInvalid marks a feed that cannot be used at all.
var ErrInvalid = errors.New("creative: invalid feed")

// Product is one item of an advertiser's feed. Price is in micros.
type Product struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	PriceMicros int64  `json:"price_micros"`
	Currency    string `json:"currency"`
	ImageURL    string `json:"image_url"`
	LandingURL  string `json:"landing_url"`
	Category    string `json:"category,omitempty"`
	Brand       string `json:"brand,omitempty"`
	InStock     bool   `json:"in_stock"`
}

// Feed is one advertiser's catalogue, immutable once published.
type Feed struct {
	AdvertiserID string
	Products     []*Product          // feed order
	ByID         map[string]*Product // every product, in stock or not
	InStock      []*Product          // in-stock products, feed order
}

// FeedReport describes one feed upload.
type FeedReport struct {
	Format   string     `json:"format"`
	Rows     int        `json:"rows"`
	Valid    int        `json:"valid"`
	Invalid  int        `json:"invalid"`
	InStock  int        `json:"in_stock"`
	Errors   []RowError `json:"errors,omitempty"`
	Replaced bool       `json:"replaced"`
}

// RowError is one rejected feed row.
type RowError struct {
	Row    int    `json:"row"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// Catalog holds every advertiser's feed.
type Catalog struct {
	db       *pebble.DB
	mu       sync.Mutex // serialises writers
	feeds    atomic.Pointer[map[string]*Feed]
	onChange []func(*Feed)
}

// OnReplace registers fn to be called with every feed that replaces
// another (after it is stored and published), e.g. to tell the recommender
// the products' categories. Register before serving.
func (c *Catalog) OnReplace(fn func(*Feed)) { c.onChange = append(c.onChange, fn) }

func feedPrefix(adv string) []byte { return []byte(store.PrefixProduct + adv + "/") }

// OpenCatalog loads every stored feed.
func OpenCatalog(db *pebble.DB) (*Catalog, error) {
	c := &Catalog{db: db}
	byAdv := map[string][]*Product{}
	if err := store.Scan(db, []byte(store.PrefixProduct), func(k, v []byte) error {
		rest := k[len(store.PrefixProduct):]
		i := bytes.IndexByte(rest, '/')
		if i < 0 {
			return nil
		}
		var p Product
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("decode product: %w", err)
		}
		adv := string(rest[:i])
		byAdv[adv] = append(byAdv[adv], &p)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("creative: load feeds: %w", err)
	}
	m := map[string]*Feed{}
	for adv, ps := range byAdv {
		// Stored keys are ordered by sequence number, which is feed order.
		m[adv] = newFeed(adv, ps)
	}
	c.feeds.Store(&m)
	return c, nil
}

func newFeed(adv string, ps []*Product) *Feed {
	f := &Feed{AdvertiserID: adv, Products: ps, ByID: make(map[string]*Product, len(ps))}
	for _, p := range ps {
		f.ByID[p.ID] = p
		if p.InStock {
			f.InStock = append(f.InStock, p)
		}
	}
	return f
}

// Feed returns an advertiser's feed, or nil.
func (c *Catalog) Feed(adv string) *Feed { return (*c.feeds.Load())[adv] }

// Replace parses a feed (CSV with a header row, or JSON lines; format
// "csv", "jsonl" or "" to detect) and, when at least one row is valid,
// replaces the advertiser's feed atomically. Invalid rows are reported and
// skipped.
func (c *Catalog) Replace(adv string, r io.Reader, format string) (FeedReport, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if format == "" {
		format = "csv"
		if b, _ := peekNonSpace(br); b == '{' {
			format = "jsonl"
		}
	}
	rep := FeedReport{Format: format}
	var (
		ps  []*Product
		err error
	)
	switch format {
	case "csv":
		ps, err = parseCSV(br, &rep)
	case "jsonl", "json":
		rep.Format = "jsonl"
		ps, err = parseJSONL(br, &rep)
	default:
		return rep, fmt.Errorf("%w: unknown format %q (csv or jsonl)", ErrInvalid, format)
	}
	if err != nil {
		return rep, err
	}
	// Later rows with the same id replace earlier ones.
	seen := make(map[string]int, len(ps))
	out := ps[:0]
	for _, p := range ps {
		if i, ok := seen[p.ID]; ok {
			out[i] = p
			continue
		}
		seen[p.ID] = len(out)
		out = append(out, p)
	}
	ps = out
	if len(ps) == 0 {
		return rep, fmt.Errorf("%w: no valid product rows", ErrInvalid)
	}
	for _, p := range ps {
		if p.InStock {
			rep.InStock++
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.db.NewBatch()
	defer b.Close()
	pre := feedPrefix(adv)
	_ = b.DeleteRange(pre, store.PrefixEnd(pre), nil)
	for i, p := range ps {
		v, _ := json.Marshal(p)
		k := append(append([]byte(nil), pre...), fmt.Sprintf("%08d", i)...)
		_ = b.Set(k, v, nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return rep, fmt.Errorf("store feed %s: %w", adv, err)
	}
	old := *c.feeds.Load()
	m := make(map[string]*Feed, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	f := newFeed(adv, ps)
	m[adv] = f
	c.feeds.Store(&m)
	rep.Replaced = true
	for _, fn := range c.onChange {
		fn(f)
	}
	return rep, nil
}

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for n := 1; n < 4096; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			return 0, err
		}
		if c := b[n-1]; c != ' ' && c != '\n' && c != '\r' && c != '\t' && c != 0xEF && c != 0xBB && c != 0xBF {
			return c, nil
		}
	}
	return 0, nil
}

var feedFields = []string{"id", "title", "price", "currency", "image_url", "landing_url", "category", "brand", "in_stock"}

func parseCSV(r io.Reader, rep *FeedReport) ([]*Product, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cr.LazyQuotes = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: read header: %v", ErrInvalid, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF")))] = i
	}
	for _, need := range []string{"id", "title", "price", "landing_url"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%w: header lacks column %q (want %s)", ErrInvalid, need, strings.Join(feedFields, ","))
		}
	}
	var ps []*Product
	row := 1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		row++
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rep.Rows++
				rep.Invalid++
				rep.addError(row, "", pe.Err.Error())
				continue
			}
			return nil, fmt.Errorf("%w: row %d: %v", ErrInvalid, row, err)
		}
		rep.Rows++
		if rep.Rows > MaxFeedProducts {
			return nil, fmt.Errorf("%w: more than %d rows (MaxFeedProducts)", ErrInvalid, MaxFeedProducts)
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		raw := rawProduct{ID: get("id"), Title: get("title"), Price: get("price"), Currency: get("currency"),
			ImageURL: get("image_url"), LandingURL: get("landing_url"), Category: get("category"),
			Brand: get("brand"), InStock: get("in_stock")}
		p, field, reason := raw.product()
		if p == nil {
			rep.Invalid++
			rep.addError(row, field, reason)
			continue
		}
		rep.Valid++
		ps = append(ps, p)
	}
	return ps, nil
}

type rawProduct struct {
	ID, Title, Price, Currency, ImageURL, LandingURL, Category, Brand, InStock string
}

func (r rawProduct) product() (*Product, string, string) {
	for _, f := range []struct{ name, v string }{{"id", r.ID}, {"title", r.Title}, {"image_url", r.ImageURL},
		{"landing_url", r.LandingURL}, {"category", r.Category}, {"brand", r.Brand}} {
		if len(f.v) > MaxFieldLen {
			return nil, f.name, fmt.Sprintf("longer than %d bytes", MaxFieldLen)
		}
	}
	if r.ID == "" {
		return nil, "id", "required"
	}
	if r.Title == "" {
		return nil, "title", "required"
	}
	price, err := strconv.ParseFloat(r.Price, 64)
	if err != nil || price < 0 || price > 1e9 || math.IsNaN(price) {
		return nil, "price", "a non-negative number"
	}
	cur := strings.ToUpper(r.Currency)
	if cur == "" {
		cur = "USD"
	}
	if len(cur) != 3 {
		return nil, "currency", "an ISO 4217 code"
	}
	if !httpURL(r.LandingURL) {
		return nil, "landing_url", "an absolute http(s) URL"
	}
	if r.ImageURL != "" && !httpURL(r.ImageURL) {
		return nil, "image_url", "an absolute http(s) URL"
	}
	inStock := true
	switch strings.ToLower(r.InStock) {
	case "", "true", "1", "yes", "in stock", "in_stock":
	case "false", "0", "no", "out of stock", "out_of_stock":
		inStock = false
	default:
		return nil, "in_stock", "true or false"
	}
	return &Product{ID: r.ID, Title: r.Title, PriceMicros: int64(math.Round(price * 1e6)), Currency: cur,
		ImageURL: r.ImageURL, LandingURL: r.LandingURL, Category: r.Category, Brand: r.Brand, InStock: inStock}, "", ""
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && !strings.ContainsAny(s, "\"'<> \t\r\n")
}

func parseJSONL(r *bufio.Reader, rep *FeedReport) ([]*Product, error) {
	var ps []*Product
	row := 0
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			row++
			rep.Rows++
			if rep.Rows > MaxFeedProducts {
				return nil, fmt.Errorf("%w: more than %d rows (MaxFeedProducts)", ErrInvalid, MaxFeedProducts)
			}
			var j struct {
				ID         json.RawMessage `json:"id"`
				Title      string          `json:"title"`
				Price      json.RawMessage `json:"price"`
				Currency   string          `json:"currency"`
				ImageURL   string          `json:"image_url"`
				LandingURL string          `json:"landing_url"`
				Category   string          `json:"category"`
				Brand      string          `json:"brand"`
				InStock    json.RawMessage `json:"in_stock"`
			}
			if jerr := json.Unmarshal(line, &j); jerr != nil {
				rep.Invalid++
				rep.addError(row, "", "bad JSON: "+jerr.Error())
			} else {
				raw := rawProduct{ID: jsonScalar(j.ID), Title: strings.TrimSpace(j.Title), Price: jsonScalar(j.Price),
					Currency: j.Currency, ImageURL: strings.TrimSpace(j.ImageURL), LandingURL: strings.TrimSpace(j.LandingURL),
					Category: j.Category, Brand: j.Brand, InStock: jsonScalar(j.InStock)}
				if p, field, reason := raw.product(); p == nil {
					rep.Invalid++
					rep.addError(row, field, reason)
				} else {
					rep.Valid++
					ps = append(ps, p)
				}
			}
		}
		if err == io.EOF {
			return ps, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read: %v", ErrInvalid, err)
		}
	}
}

// jsonScalar renders a JSON string, number or bool as its text.
func jsonScalar(m json.RawMessage) string {
	m = bytes.TrimSpace(m)
	if len(m) == 0 || string(m) == "null" {
		return ""
	}
	if m[0] == '"' {
		var s string
		if json.Unmarshal(m, &s) == nil {
			return strings.TrimSpace(s)
		}
		return "\x00invalid"
	}
	return string(m)
}

func (rep *FeedReport) addError(row int, field, reason string) {
	if len(rep.Errors) < maxFeedErrors {
		rep.Errors = append(rep.Errors, RowError{Row: row, Field: field, Reason: reason})
	}
}

// Advertisers lists advertisers with a feed.
func (c *Catalog) Advertisers() []string {
	m := *c.feeds.Load()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
