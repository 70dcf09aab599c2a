package audience

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Rule limits. A rule is a tree of all/any/not over leaves that count a
// user's events (see DESIGN.md, appendix):
//
//	{"all": [
//	  {"event": "add_to_cart", "within_days": 7},
//	  {"not": {"event": "purchase", "within_days": 7}},
//	  {"event": "product_view", "category": "shoes", "min_count": 3, "within_days": 14},
//	  {"rfm": {"recency_days_max": 30, "frequency_min": 2, "monetary_min": 100}}
//	]}
const (
	// MaxRuleBytes bounds a rule's JSON text.
	MaxRuleBytes = 16 << 10
	// MaxRuleDepth bounds the nesting of all/any/not (a bare leaf has depth 1).
	MaxRuleDepth = 8
	// MaxRuleNodes bounds the nodes of one rule.
	MaxRuleNodes = 64
	// MaxRuleChildren bounds the children of one all/any node.
	MaxRuleChildren = 32
	// MaxWindowDays bounds within_days: profiles keep events that long.
	MaxWindowDays = ProfileRetentionDays
	// MaxMinCount bounds min_count and frequency_min.
	MaxMinCount = 1_000_000
	// MaxRecencyDays bounds rfm.recency_days_max.
	MaxRecencyDays = 3650
	// MaxMonetary bounds rfm.monetary_min, in currency units.
	MaxMonetary = 1e9
)

const daySeconds = 86400

// never is the "no change foreseen" edge time.
const never = int64(math.MaxInt64)

type nodeKind uint8

const (
	nodeAll nodeKind = iota + 1
	nodeAny
	nodeNot
	nodeLeaf
	nodeRFM
)

// ruleNode is one node of a compiled rule.
type ruleNode struct {
	kind nodeKind
	kids []*ruleNode

	// leaf: events of type event (optionally about product, or a product
	// of category), at least minCount of them within window seconds
	// (0 = over the whole profile).
	event    string
	category string
	product  string
	minCount int64
	window   int64

	// rfm: purchases; each bound applies when non-zero.
	recency      int64 // seconds since the last purchase, at most
	frequencyMin int64 // purchases, at least
	monetaryMin  int64 // purchase value, micros, at least
}

// Rule is a parsed, validated rule, ready to evaluate. Safe for concurrent use.
type Rule struct {
	root         *ruleNode
	usesCategory bool
	needsStats   bool // a leaf over the whole profile names a product or category
	// Canonical is the rule re-encoded in canonical form (defaults made explicit
	// are not added; keys sorted), for storage and display.
	Canonical json.RawMessage
}

// ParseRule parses and validates a rule. Errors are *FieldError naming the
// offending field by path, e.g. "rule.all[1].not.within_days".
func ParseRule(raw []byte) (*Rule, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, &FieldError{"rule", "required for a rule audience"}
	}
	if len(raw) > MaxRuleBytes {
		return nil, &FieldError{"rule", fmt.Sprintf("longer than %d bytes", MaxRuleBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &FieldError{"rule", "malformed JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, &FieldError{"rule", "trailing data after the rule"}
	}
	p := ruleParser{}
	root, err := p.node(v, "rule", 1)
	if err != nil {
		return nil, err
	}
	canon, err := json.Marshal(v)
	if err != nil {
		return nil, &FieldError{"rule", err.Error()}
	}
	return &Rule{root: root, usesCategory: p.usesCategory, needsStats: p.needsStats, Canonical: canon}, nil
}

type ruleParser struct {
	nodes        int
	usesCategory bool
	needsStats   bool
}

var leafKeys = map[string]bool{"event": true, "category": true, "product": true, "min_count": true, "within_days": true}

func (p *ruleParser) node(v any, path string, depth int) (*ruleNode, error) {
	if depth > MaxRuleDepth {
		return nil, &FieldError{path, fmt.Sprintf("rule nested deeper than %d levels", MaxRuleDepth)}
	}
	p.nodes++
	if p.nodes > MaxRuleNodes {
		return nil, &FieldError{path, fmt.Sprintf("rule has more than %d nodes", MaxRuleNodes)}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &FieldError{path, "must be an object: {\"all\":[…]}, {\"any\":[…]}, {\"not\":{…}}, {\"rfm\":{…}} or an event leaf"}
	}
	if len(obj) == 0 {
		return nil, &FieldError{path, "empty condition"}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, op := range []string{"all", "any", "not", "rfm"} {
		if _, has := obj[op]; !has {
			continue
		}
		if len(obj) != 1 {
			return nil, &FieldError{path, fmt.Sprintf("%q must be the only key of its object (found %s)", op, strings.Join(keys, ", "))}
		}
		sub := path + "." + op
		switch op {
		case "all", "any":
			list, ok := obj[op].([]any)
			if !ok {
				return nil, &FieldError{sub, "must be a list of conditions"}
			}
			if len(list) == 0 {
				return nil, &FieldError{sub, "must hold at least one condition"}
			}
			if len(list) > MaxRuleChildren {
				return nil, &FieldError{sub, fmt.Sprintf("more than %d conditions", MaxRuleChildren)}
			}
			n := &ruleNode{kind: nodeAll}
			if op == "any" {
				n.kind = nodeAny
			}
			for i, c := range list {
				k, err := p.node(c, fmt.Sprintf("%s[%d]", sub, i), depth+1)
				if err != nil {
					return nil, err
				}
				n.kids = append(n.kids, k)
			}
			return n, nil
		case "not":
			k, err := p.node(obj[op], sub, depth+1)
			if err != nil {
				return nil, err
			}
			return &ruleNode{kind: nodeNot, kids: []*ruleNode{k}}, nil
		case "rfm":
			return p.rfm(obj[op], sub)
		}
	}
	for _, k := range keys {
		if !leafKeys[k] {
			return nil, &FieldError{path + "." + k, "unknown key (a condition is all, any, not, rfm, or a leaf of event, category, product, min_count, within_days)"}
		}
	}
	n := &ruleNode{kind: nodeLeaf, minCount: 1}
	ev, ok := obj["event"]
	if !ok {
		return nil, &FieldError{path + ".event", "required in an event leaf"}
	}
	s, err := ruleString(ev, path+".event", 64)
	if err != nil {
		return nil, err
	}
	if !validEventType(s) {
		return nil, &FieldError{path + ".event", "must be an event type: 1–64 of a-z, 0-9, _ . -"}
	}
	n.event = s
	if c, ok := obj["category"]; ok {
		if n.category, err = ruleString(c, path+".category", 256); err != nil {
			return nil, err
		}
		p.usesCategory = true
	}
	if c, ok := obj["product"]; ok {
		if n.product, err = ruleString(c, path+".product", MaxProductIDLen); err != nil {
			return nil, err
		}
	}
	if c, ok := obj["min_count"]; ok {
		if n.minCount, err = ruleInt(c, path+".min_count", 1, MaxMinCount); err != nil {
			return nil, err
		}
	}
	if c, ok := obj["within_days"]; ok {
		d, err := ruleInt(c, path+".within_days", 1, MaxWindowDays)
		if err != nil {
			return nil, err
		}
		n.window = d * daySeconds
	}
	if n.window == 0 && (n.product != "" || n.category != "") {
		p.needsStats = true
	}
	return n, nil
}

func (p *ruleParser) rfm(v any, path string) (*ruleNode, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &FieldError{path, "must be an object of recency_days_max, frequency_min, monetary_min"}
	}
	if len(obj) == 0 {
		return nil, &FieldError{path, "needs at least one of recency_days_max, frequency_min, monetary_min"}
	}
	n := &ruleNode{kind: nodeRFM}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := path + "." + k
		var err error
		switch k {
		case "recency_days_max":
			var d int64
			d, err = ruleInt(obj[k], f, 1, MaxRecencyDays)
			n.recency = d * daySeconds
		case "frequency_min":
			n.frequencyMin, err = ruleInt(obj[k], f, 1, MaxMinCount)
		case "monetary_min":
			n.monetaryMin, err = ruleMoney(obj[k], f)
		default:
			return nil, &FieldError{f, "unknown key (want recency_days_max, frequency_min, monetary_min)"}
		}
		if err != nil {
			return nil, err
		}
	}
	return n, nil
}

func ruleString(v any, field string, max int) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", &FieldError{field, "must be a string"}
	}
	s = strings.TrimSpace(s)
	if s == "" || len(s) > max {
		return "", &FieldError{field, fmt.Sprintf("must be 1–%d characters", max)}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return "", &FieldError{field, "must not contain control characters"}
		}
	}
	return s, nil
}

func ruleInt(v any, field string, lo, hi int64) (int64, error) {
	bad := &FieldError{field, fmt.Sprintf("must be a whole number from %d to %d", lo, hi)}
	n, ok := v.(json.Number)
	if !ok {
		return 0, bad
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(n), 64)
		if ferr != nil || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
			return 0, bad
		}
		i = int64(f)
	}
	if i < lo || i > hi {
		return 0, bad
	}
	return i, nil
}

func ruleMoney(v any, field string) (int64, error) {
	bad := &FieldError{field, fmt.Sprintf("must be a number of currency units from 0 to %g", float64(MaxMonetary))}
	n, ok := v.(json.Number)
	if !ok {
		return 0, bad
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > MaxMonetary {
		return 0, bad
	}
	return int64(math.Round(f * 1e6)), nil
}

// UsesCategory reports whether the rule has a category leaf (and so needs
// the advertiser's product feed).
func (r *Rule) UsesCategory() bool { return r.usesCategory }

// evalCtx is what evaluating a rule against one profile needs.
type evalCtx struct {
	now        int64
	adv        string
	categoryOf func(adv, product string) string
	// cats caches categoryOf across the profiles of one scan (nil: no cache).
	cats map[string]string
}

func (c *evalCtx) category(product []byte) string {
	if c.categoryOf == nil {
		return ""
	}
	if c.cats != nil {
		if cat, ok := c.cats[string(product)]; ok {
			return cat
		}
	}
	s := string(product)
	cat := c.categoryOf(c.adv, s)
	if c.cats != nil && len(c.cats) < 1<<20 {
		c.cats[s] = cat
	}
	return cat
}

// eval evaluates r against profile v at ctx.now. It returns the rule's value
// and the earliest time (unix seconds) at which that value may change through
// the passing of time alone (never when only new events can change it).
func (r *Rule) eval(ctx *evalCtx, v *profView) (bool, int64) {
	return evalNode(r.root, ctx, v)
}

func evalNode(n *ruleNode, ctx *evalCtx, v *profView) (bool, int64) {
	switch n.kind {
	case nodeNot:
		val, edge := evalNode(n.kids[0], ctx, v)
		return !val, edge
	case nodeAll, nodeAny:
		// all: true → may turn false when any child flips (min edge);
		// false → stays false until every false child flipped (max edge over
		// the false children). any is the dual.
		want := n.kind == nodeAll // the value that does not decide alone
		result := want
		minAll, maxDecisive := never, int64(math.MinInt64)
		for _, k := range n.kids {
			val, edge := evalNode(k, ctx, v)
			minAll = min(minAll, edge)
			if val != want {
				result = !want
				maxDecisive = max(maxDecisive, edge)
			}
		}
		if result == want {
			return result, minAll
		}
		return result, maxDecisive
	case nodeLeaf:
		return evalLeaf(n, ctx, v)
	case nodeRFM:
		return evalRFM(n, ctx, v)
	}
	return false, never
}

// matches is how many of event e's products the leaf counts: 1 for a leaf
// without product or category (the event itself), else the number of
// matching products.
func (n *ruleNode) matches(ctx *evalCtx, v *profView, e *pevent) int64 {
	if n.product == "" && n.category == "" {
		return 1
	}
	var c int64
	for _, pi := range v.eventProducts(e) {
		if n.productMatches(ctx, v, pi) {
			c++
		}
	}
	return c
}

func (n *ruleNode) productMatches(ctx *evalCtx, v *profView, pi uint32) bool {
	name := v.prods[pi]
	if n.product != "" && string(name) != n.product {
		return false
	}
	if n.category != "" && !strings.EqualFold(v.category(ctx, pi), n.category) {
		return false
	}
	return true
}

func evalLeaf(n *ruleNode, ctx *evalCtx, v *profView) (bool, int64) {
	t := v.typeIndex(n.event)
	if t < 0 {
		return false, never
	}
	if n.window == 0 {
		var count int64
		if n.product == "" && n.category == "" {
			count = v.types[t].count
		} else {
			for i := range v.stats {
				s := &v.stats[i]
				if int(s.typ) == t && n.productMatches(ctx, v, s.prod) {
					count += s.count
				}
			}
		}
		return count >= n.minCount, never
	}
	from := ctx.now - n.window
	var count int64
	first := -1 // first event inside the window (events are oldest first)
	for i := len(v.events) - 1; i >= 0; i-- {
		e := &v.events[i]
		if e.unix <= from {
			break
		}
		first = i
		if int(e.typ) == t {
			count += n.matches(ctx, v, e)
		}
	}
	if count < n.minCount {
		return false, never
	}
	// True until enough of the counted events have left the window.
	left := count
	for i := first; i < len(v.events); i++ {
		e := &v.events[i]
		if int(e.typ) != t {
			continue
		}
		left -= n.matches(ctx, v, e)
		if left < n.minCount {
			return true, e.unix + n.window
		}
	}
	return true, never
}

func evalRFM(n *ruleNode, ctx *evalCtx, v *profView) (bool, int64) {
	if v.orders == 0 {
		return false, never
	}
	if n.frequencyMin > 0 && v.orders < n.frequencyMin {
		return false, never
	}
	if n.monetaryMin > 0 && v.monetary < n.monetaryMin {
		return false, never
	}
	if n.recency > 0 {
		edge := v.lastBuy + n.recency
		if ctx.now >= edge {
			return false, never
		}
		return true, edge
	}
	return true, never
}

// validEventType reports whether s is a usable event type name.
func validEventType(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
