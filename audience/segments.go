package audience

import (
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// Rule audiences ("segments") fill themselves from events. Each one's members
// are an exact in-memory set (rule members must be able to leave at once: a
// cart abandoner who buys), which the bid path reads without locks through
// Snapshot.Contains. Membership is re-evaluated:
//
//   - for a user, at each of their events at the advertiser (all of the
//     advertiser's rules, against the updated profile);
//   - when a time window passes: every evaluation also yields the earliest
//     time the user's membership of any rule may change by time alone (a
//     counted event leaving a within_days window, a last purchase growing
//     older than recency_days_max); SweepRules re-evaluates the users whose
//     time has come;
//   - for every stored profile of the advertiser when a rule audience is
//     created (back-fill, status building → ready) and at start (profiles
//     are the source of truth; memberships are not stored).

var (
	sweepEvaluated = metrics.NewCounter(`chaser_rule_sweep_evaluations_total`)
	ruleJoins      = metrics.NewCounter(`chaser_rule_membership_changes_total{change="join"}`)
	ruleLeaves     = metrics.NewCounter(`chaser_rule_membership_changes_total{change="leave"}`)
)

// exactSet is a set of pseudonyms with lock-free readers and one writer at
// a time: open addressing with linear probing over slots whose key is
// written before the slot's state is published, so a reader that sees a
// state sees its key. Deleted slots become tombstones (the key stays, so a
// re-insert of the same key revives it in place); the table is rebuilt when
// slots in use pass 2/3.
type exactSet struct {
	mu   sync.Mutex // writers
	tab  atomic.Pointer[setTable]
	live atomic.Int64
	used int // live + tombstone slots in tab; under mu
}

const (
	slotEmpty uint32 = iota
	slotLive
	slotDead
)

type setSlot struct {
	state atomic.Uint32
	key   Pseudonym
}

type setTable struct {
	slots []setSlot
	mask  uint64
}

func newSetTable(n int) *setTable {
	size := 16
	for size < n {
		size <<= 1
	}
	return &setTable{slots: make([]setSlot, size), mask: uint64(size - 1)}
}

func newExactSet() *exactSet {
	s := &exactSet{}
	s.tab.Store(newSetTable(16))
	return s
}

// Pseudonyms are keyed hashes: their first bytes are already uniform.
func slotHash(p *Pseudonym) uint64 { return binary.LittleEndian.Uint64(p[:8]) }

// has reports whether p is in the set. Lock-free, allocation-free.
func (s *exactSet) has(p Pseudonym) bool {
	t := s.tab.Load()
	for i := slotHash(&p) & t.mask; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		st := sl.state.Load()
		if st == slotEmpty {
			return false
		}
		if sl.key == p {
			return st == slotLive
		}
	}
}

// Len is the number of members.
func (s *exactSet) Len() int64 { return s.live.Load() }

// insert adds p; it reports whether p was new.
func (s *exactSet) insert(p Pseudonym) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tab.Load()
	i := slotHash(&p) & t.mask
	for ; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		st := sl.state.Load()
		if st == slotEmpty {
			break
		}
		if sl.key == p {
			if st == slotLive {
				return false
			}
			sl.state.Store(slotLive)
			s.live.Add(1)
			return true
		}
	}
	if (s.used+1)*3 > len(t.slots)*2 {
		t = s.rehashLocked(int(s.live.Load()) + 1)
		i = slotHash(&p) & t.mask
		for t.slots[i].state.Load() != slotEmpty {
			i = (i + 1) & t.mask
		}
	}
	t.slots[i].key = p
	t.slots[i].state.Store(slotLive)
	s.used++
	s.live.Add(1)
	return true
}

// remove deletes p; it reports whether p was present.
func (s *exactSet) remove(p Pseudonym) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tab.Load()
	for i := slotHash(&p) & t.mask; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		st := sl.state.Load()
		if st == slotEmpty {
			return false
		}
		if sl.key == p {
			if st != slotLive {
				return false
			}
			sl.state.Store(slotDead)
			s.live.Add(-1)
			return true
		}
	}
}

// rehashLocked publishes a fresh table for at least n members (at most half
// full) holding the live members, and returns it.
func (s *exactSet) rehashLocked(n int) *setTable {
	old := s.tab.Load()
	t := newSetTable(2 * n)
	for i := range old.slots {
		sl := &old.slots[i]
		if sl.state.Load() != slotLive {
			continue
		}
		j := slotHash(&sl.key) & t.mask
		for t.slots[j].state.Load() != slotEmpty {
			j = (j + 1) & t.mask
		}
		t.slots[j].key = sl.key
		t.slots[j].state.Store(slotLive)
	}
	s.used = int(s.live.Load())
	s.tab.Store(t)
	return t
}

// each calls fn for every member of a consistent-enough view (a table
// published at the call).
func (s *exactSet) each(fn func(Pseudonym)) {
	t := s.tab.Load()
	for i := range t.slots {
		if t.slots[i].state.Load() == slotLive {
			fn(t.slots[i].key)
		}
	}
}

// ruleRegistry is what the bid path reads of rule audiences: each one's
// member set, and the set of users in at least one (so Snapshot.Known stays
// one probe for the ~70 % of requests from people Chaser never saw).
type ruleRegistry struct {
	sets  atomic.Pointer[map[string]*exactSet]
	known *exactSet
}

func newRuleRegistry() *ruleRegistry {
	r := &ruleRegistry{known: newExactSet()}
	r.sets.Store(&map[string]*exactSet{})
	return r
}

func (r *ruleRegistry) contains(id string, p Pseudonym) bool {
	set := (*r.sets.Load())[id]
	return set != nil && set.has(p)
}

// set returns rule audience id's member set, nil when id is no rule audience.
func (r *ruleRegistry) set(id string) *exactSet { return (*r.sets.Load())[id] }

// isRule reports whether id is a registered rule audience.
func (g *segments) isRule(id string) bool { return g.reg.set(id) != nil }

// ruleAud is one rule audience as the engine keeps it.
type ruleAud struct {
	id, adv string
	rule    *Rule
	set     *exactSet
	dropped atomic.Bool

	mu       sync.Mutex
	building bool
	touched  map[Pseudonym]struct{} // users evaluated by events during back-fill
}

// segments is the rule-audience engine of a Manager.
type segments struct {
	m    *Manager
	opts EventOptions

	// mu: readers are event processing and sweeps (they read byAdv); the
	// writer adds or drops rules. Lock order: Manager.mu → mu → stripes →
	// ruleAud.mu / exactSet.mu / due.mu. Nothing under mu takes Manager.mu.
	mu    sync.RWMutex
	byAdv map[string][]*ruleAud
	byID  map[string]*ruleAud
	reg   *ruleRegistry

	// stripes serialise the read-modify-write of one user's profiles.
	stripes [256]sync.Mutex
	due     dueIndex

	closing  atomic.Bool
	backfill sync.WaitGroup
	// estimates bounds the estimates running at once.
	estimates chan struct{}
}

func newSegments(m *Manager, opts EventOptions) *segments {
	return &segments{m: m, opts: opts, byAdv: map[string][]*ruleAud{}, byID: map[string]*ruleAud{},
		reg: newRuleRegistry(), due: dueIndex{at: map[dueKey]dueState{}}, estimates: make(chan struct{}, 2)}
}

// lockUsers locks the stripes of users (each once, in order) and returns the
// unlock function.
func (g *segments) lockUsers(users []Pseudonym) func() {
	var idx [maxFanOut + 1]byte
	n := 0
	for _, u := range users {
		s := u[0]
		dup := false
		for _, x := range idx[:n] {
			dup = dup || x == s
		}
		if !dup && n < len(idx) {
			idx[n] = s
			n++
		}
	}
	for i := 1; i < n; i++ { // insertion sort: a fixed lock order
		for j := i; j > 0 && idx[j] < idx[j-1]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	for _, s := range idx[:n] {
		g.stripes[s].Lock()
	}
	return func() {
		for k := n - 1; k >= 0; k-- {
			g.stripes[idx[k]].Unlock()
		}
	}
}

// evaluateUser re-evaluates every rule of adv for user p against profile v
// at now, updates memberships, and schedules the next evaluation. The caller
// holds g.mu (read) and p's stripe.
func (g *segments) evaluateUser(adv string, p Pseudonym, v *profView, now time.Time) {
	rules := g.byAdv[adv]
	if len(rules) == 0 {
		return
	}
	erased := g.m.snap.Load().Erased(p) // read under p's stripe: see dropUser
	ctx := evalCtx{now: now.Unix(), adv: adv, categoryOf: g.opts.CategoryOf}
	// A user in no rule audience (most) cannot leave one: one probe of the
	// known set spares a probe of each audience's set.
	inAny := g.reg.known.has(p)
	next := never
	for _, ra := range rules {
		in, edge := false, never
		if !erased {
			in, edge = ra.rule.eval(&ctx, v)
		}
		if in || inAny {
			g.apply(ra, p, in)
		}
		next = min(next, edge)
		ra.mu.Lock()
		if ra.building {
			ra.touched[p] = struct{}{}
		}
		ra.mu.Unlock()
	}
	g.due.set(dueKey{adv, p}, next)
}

// apply makes p a member of ra or not.
func (g *segments) apply(ra *ruleAud, p Pseudonym, in bool) {
	if ra.set.has(p) == in {
		return // unchanged: the lock-free read spares the writer lock
	}
	if in {
		if ra.set.insert(p) {
			ruleJoins.Inc()
			g.reg.known.insert(p)
		}
		return
	}
	if ra.set.remove(p) {
		ruleLeaves.Inc()
		g.forgetIfInNone(p)
	}
}

// forgetIfInNone takes p out of the known set when no rule audience holds it.
// The caller holds p's stripe.
func (g *segments) forgetIfInNone(p Pseudonym) {
	for _, set := range *g.reg.sets.Load() {
		if set.has(p) {
			return
		}
	}
	g.reg.known.remove(p)
}

// dropUser takes p out of every rule audience (erasure; Erase calls it after
// marking p erased, so a concurrent evaluation cannot put p back).
func (g *segments) dropUser(p Pseudonym) {
	unlock := g.lockUsers([]Pseudonym{p})
	defer unlock()
	for _, set := range *g.reg.sets.Load() {
		set.remove(p)
	}
	g.reg.known.remove(p)
}

// register adds a compiled rule audience. Caller holds g.mu (write).
func (g *segments) registerLocked(ra *ruleAud) {
	g.byID[ra.id] = ra
	g.byAdv[ra.adv] = append(g.byAdv[ra.adv], ra)
	old := *g.reg.sets.Load()
	next := make(map[string]*exactSet, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[ra.id] = ra.set
	g.reg.sets.Store(&next)
}

// drop removes rule audience id.
func (g *segments) drop(id string) {
	g.mu.Lock()
	ra := g.byID[id]
	if ra == nil {
		g.mu.Unlock()
		return
	}
	ra.dropped.Store(true)
	delete(g.byID, id)
	list := g.byAdv[ra.adv]
	out := list[:0:0]
	for _, x := range list {
		if x != ra {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		delete(g.byAdv, ra.adv)
	} else {
		g.byAdv[ra.adv] = out
	}
	old := *g.reg.sets.Load()
	next := make(map[string]*exactSet, len(old))
	for k, v := range old {
		if k != id {
			next[k] = v
		}
	}
	g.reg.sets.Store(&next)
	g.mu.Unlock()
	ra.set.each(func(p Pseudonym) {
		unlock := g.lockUsers([]Pseudonym{p})
		g.forgetIfInNone(p)
		unlock()
	})
}

// compile parses an audience's stored rule.
func compileRule(a *Audience) (*ruleAud, error) {
	r, err := ParseRule(a.Rule)
	if err != nil {
		return nil, err
	}
	return &ruleAud{id: a.ID, adv: a.AdvertiserID, rule: r, set: newExactSet()}, nil
}

// validateRuleAudience checks a rule audience before it is stored and
// replaces its rule by the canonical form. Manager.Create calls it.
func validateRuleAudience(a *Audience) error {
	if a.TTLDays != 0 {
		return &FieldError{"ttl_days", "applies to list audiences; a rule's within_days say how long members stay"}
	}
	r, err := ParseRule(a.Rule)
	if err != nil {
		return err
	}
	a.Rule = r.Canonical
	return nil
}

// startRule registers a new rule audience and back-fills it from the
// advertiser's stored profiles in the background; the audience is building
// until then, and ready after. Manager.Create calls it (holding Manager.mu).
func (m *Manager) startRule(a *Audience) {
	ra, err := compileRule(a)
	if err != nil { // validated before storing: cannot happen
		m.log.Error("audience: compile rule", "audience", a.ID, "err", err)
		return
	}
	g := m.seg
	ra.building = true
	ra.touched = map[Pseudonym]struct{}{}
	g.mu.Lock()
	g.registerLocked(ra)
	g.mu.Unlock()
	g.backfill.Add(1)
	go func() {
		defer g.backfill.Done()
		start := time.Now()
		n, err := g.backfillRule(ra)
		status := StatusReady
		if err != nil {
			status = StatusFailed
			m.log.Error("audience: back-fill rule", "audience", ra.id, "err", err)
		} else {
			m.log.Info("audience: rule back-filled", "audience", ra.id, "profiles", n, "members", ra.set.Len(),
				"took", time.Since(start).Round(time.Millisecond))
		}
		ra.mu.Lock()
		ra.building, ra.touched = false, nil
		ra.mu.Unlock()
		if ra.dropped.Load() || g.closing.Load() {
			return
		}
		m.mu.Lock()
		if au := m.auds[ra.id]; au != nil && au.Status == StatusBuilding {
			au.Status, au.Size, au.UpdatedAt = status, ra.set.Len(), m.now().UTC()
			if err := m.putLocked(au); err != nil {
				m.log.Error("audience: save rule status", "audience", ra.id, "err", err)
			}
		}
		m.mu.Unlock()
	}()
}

// backfillRule evaluates ra over every stored profile of its advertiser.
// Users an event evaluated meanwhile are left as the event set them.
func (g *segments) backfillRule(ra *ruleAud) (int, error) {
	snap := g.m.snap.Load()
	ctx := evalCtx{now: g.m.now().Unix(), adv: ra.adv, categoryOf: g.opts.CategoryOf, cats: map[string]string{}}
	var v profView
	n := 0
	pre := profilePrefix(ra.adv)
	err := store.Scan(g.m.db, pre, func(k, val []byte) error {
		if ra.dropped.Load() || g.closing.Load() {
			return errStop
		}
		var p Pseudonym
		if len(k) != len(pre)+len(p) {
			return nil
		}
		copy(p[:], k[len(pre):])
		n++
		if v.decodeSome(val, ra.rule.needsStats) != nil {
			return nil
		}
		if _, gone := snap.erased[p]; gone {
			return nil
		}
		in, edge := ra.rule.eval(&ctx, &v)
		unlock := g.lockUsers([]Pseudonym{p})
		ra.mu.Lock()
		_, touched := ra.touched[p]
		ra.mu.Unlock()
		if !touched {
			g.apply(ra, p, in)
			g.due.lower(dueKey{ra.adv, p}, edge)
		}
		unlock()
		return nil
	})
	if err == errStop {
		err = nil
	}
	return n, err
}

// loadRules compiles every stored rule audience and evaluates them over
// their advertisers' profiles. NewManager calls it.
func (m *Manager) loadRules() error {
	g := m.seg
	m.mu.Lock()
	var auds []*Audience
	for _, a := range m.auds {
		if a.Type == TypeRule {
			auds = append(auds, a)
		}
	}
	m.mu.Unlock()
	if len(auds) == 0 {
		return nil
	}
	g.mu.Lock()
	for _, a := range auds {
		ra, err := compileRule(a)
		if err != nil {
			m.log.Error("audience: stored rule does not compile", "audience", a.ID, "err", err)
			a.Status = StatusFailed
			continue
		}
		g.registerLocked(ra)
	}
	advs := make([]string, 0, len(g.byAdv))
	for adv := range g.byAdv {
		advs = append(advs, adv)
	}
	g.mu.Unlock()
	now := m.now()
	for _, adv := range advs {
		if _, err := g.evaluateAdvertiser(adv, now, false); err != nil {
			return fmt.Errorf("audience: evaluate rules of %s: %w", adv, err)
		}
	}
	m.mu.Lock()
	for _, a := range auds {
		if ra := g.byID[a.ID]; ra != nil {
			a.Status, a.Size = StatusReady, ra.set.Len()
		}
	}
	m.mu.Unlock()
	return nil
}

// evaluateAdvertiser re-evaluates every rule of adv over every stored
// profile of adv: at start (fresh false: nothing else runs yet), or after the
// advertiser's product feed changed (fresh true: each profile is read again
// under its user's lock, so a concurrent event is never undone).
func (g *segments) evaluateAdvertiser(adv string, now time.Time, fresh bool) (int, error) {
	g.mu.RLock()
	has := len(g.byAdv[adv]) > 0
	g.mu.RUnlock()
	if !has {
		return 0, nil
	}
	var v profView
	n := 0
	pre := profilePrefix(adv)
	err := store.Scan(g.m.db, pre, func(k, val []byte) error {
		if g.closing.Load() {
			return errStop
		}
		var p Pseudonym
		if len(k) != len(pre)+len(p) {
			return nil
		}
		copy(p[:], k[len(pre):])
		g.mu.RLock()
		defer g.mu.RUnlock()
		unlock := g.lockUsers([]Pseudonym{p})
		defer unlock()
		if fresh {
			var err error
			if val, err = store.Get(g.m.db, k); err != nil {
				return nil // gone meanwhile (erased)
			}
		}
		if v.decode(val) != nil {
			return nil
		}
		n++
		g.evaluateUser(adv, p, &v, now)
		return nil
	})
	if err == errStop {
		err = nil
	}
	return n, err
}

// RefreshRules re-evaluates the rule audiences of adv over its stored
// profiles: call it after the advertiser's product feed changed, since
// category leaves read the feed.
func (m *Manager) RefreshRules(adv string) error {
	_, err := m.seg.evaluateAdvertiser(adv, m.now(), true)
	return err
}

// RefreshRulesAsync is RefreshRules in the background, tracked like
// back-fills (Close stops and waits for it).
func (m *Manager) RefreshRulesAsync(adv string) {
	g := m.seg
	if g.closing.Load() {
		return
	}
	g.mu.RLock()
	has := len(g.byAdv[adv]) > 0
	g.mu.RUnlock()
	if !has {
		return
	}
	g.backfill.Add(1)
	go func() {
		defer g.backfill.Done()
		if err := m.RefreshRules(adv); err != nil {
			m.log.Error("audience: refresh rules", "advertiser", adv, "err", err)
		}
	}()
}

// SweepStats reports one SweepRules run.
type SweepStats struct {
	Evaluated int // users re-evaluated
	Pending   int // users with a future evaluation scheduled
}

// SweepRules re-evaluates the users whose rule memberships may have changed
// by now because a time window passed. Run it every minute or so
// (RunRuleSweeps does); membership lapses at most that late.
func (m *Manager) SweepRules(now time.Time) (SweepStats, error) {
	g := m.seg
	var st SweepStats
	due := g.due.popDue(now.Unix())
	var v profView
	for i, k := range due {
		g.mu.RLock()
		unlock := g.lockUsers([]Pseudonym{k.p})
		raw, err := store.Get(m.db, profileKey(k.adv, k.p))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			unlock()
			g.mu.RUnlock()
			for _, k := range due[i:] {
				g.due.lower(k, now.Unix()+60) // retry at the next sweep
			}
			return st, fmt.Errorf("sweep rules: %w", err)
		}
		if v.decode(raw) != nil {
			v.reset()
		}
		g.evaluateUser(k.adv, k.p, &v, now)
		unlock()
		g.mu.RUnlock()
		st.Evaluated++
	}
	st.Pending = g.due.len()
	if st.Evaluated > 0 {
		sweepEvaluated.Add(st.Evaluated)
	}
	return st, nil
}

// RunRuleSweeps calls SweepRules every interval until ctx ends.
func (m *Manager) RunRuleSweeps(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := m.SweepRules(m.now()); err != nil {
				m.log.Error("audience: sweep rules", "err", err)
			}
		}
	}
}

// CloseRules stops rule back-fills and waits for them. Call it before
// closing the store.
func (m *Manager) CloseRules() {
	m.seg.closing.Store(true)
	m.seg.backfill.Wait()
}

// WaitRules waits until every rule back-fill has finished (tests).
func (m *Manager) WaitRules() { m.seg.backfill.Wait() }

// ruleSize fills a rule audience's live size. Manager.Get and List call it.
func (m *Manager) ruleSize(a *Audience) {
	if a.Type != TypeRule {
		return
	}
	if set := (*m.seg.reg.sets.Load())[a.ID]; set != nil {
		a.Size = set.Len()
	}
}

// ruleMembers passes the members of rule audience id to visit in batches;
// ok is false when id is no rule audience.
func (m *Manager) ruleMembers(id string, visit func([]Pseudonym)) (n int64, ok bool) {
	set := m.seg.reg.set(id)
	if set == nil {
		return 0, false
	}
	snap := m.snap.Load()
	batch := make([]Pseudonym, 0, 4096)
	set.each(func(p Pseudonym) {
		if snap.Erased(p) {
			return
		}
		batch = append(batch, p)
		n++
		if len(batch) == cap(batch) {
			visit(batch)
			batch = make([]Pseudonym, 0, 4096)
		}
	})
	if len(batch) > 0 {
		visit(batch)
	}
	return n, true
}

// ruleContains reports whether p is a member of rule audience id.
func (m *Manager) ruleContains(id string, p Pseudonym) bool {
	if _, gone := m.snap.Load().erased[p]; gone {
		return false
	}
	return m.seg.reg.contains(id, p)
}

// Estimate returns how many users with stored profiles at adv the rule holds
// now, without saving it. Errors are *FieldError for a bad rule.
func (m *Manager) Estimate(ctx context.Context, adv string, rule json.RawMessage) (int64, error) {
	r, err := ParseRule(rule)
	if err != nil {
		return 0, err
	}
	return m.estimate(ctx, adv, r)
}

func (m *Manager) estimate(ctx context.Context, adv string, r *Rule) (int64, error) {
	// Each estimate scans every core: run them one or two at a time.
	select {
	case m.seg.estimates <- struct{}{}:
		defer func() { <-m.seg.estimates }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// The pseudonyms after the advertiser's prefix are uniform: split the key
	// range into shards by first byte and scan them on every core.
	const shards = 16
	workers := min(runtime.GOMAXPROCS(0), shards)
	var (
		next  atomic.Int32
		total atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	now := m.now().Unix()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ectx := evalCtx{now: now, adv: adv, categoryOf: m.seg.opts.CategoryOf, cats: map[string]string{}}
			for {
				s := int(next.Add(1)) - 1
				if s >= shards {
					return
				}
				n, err := m.estimateShard(ctx, &ectx, adv, r, byte(s*256/shards), s == shards-1, byte((s+1)*256/shards))
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					return
				}
				total.Add(n)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	return total.Load(), nil
}

// estimateShard counts the members among the profiles of adv whose
// pseudonym starts with a byte in [lo, hi) (to the end when last).
func (m *Manager) estimateShard(ctx context.Context, ectx *evalCtx, adv string, r *Rule, lo byte, last bool, hi byte) (int64, error) {
	snap := m.snap.Load()
	pre := profilePrefix(adv)
	opts := &pebble.IterOptions{LowerBound: append(append([]byte(nil), pre...), lo), UpperBound: store.PrefixEnd(pre)}
	if !last {
		opts.UpperBound = append(append([]byte(nil), pre...), hi)
	}
	it, err := m.db.NewIter(opts)
	if err != nil {
		return 0, fmt.Errorf("estimate: %w", err)
	}
	defer it.Close()
	var v profView
	var n, seen int64
	for ok := it.First(); ok; ok = it.Next() {
		if seen++; seen&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		k := it.Key()
		var p Pseudonym
		if len(k) != len(pre)+len(p) {
			continue
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return 0, fmt.Errorf("estimate: %w", err)
		}
		if v.decodeSome(val, r.needsStats) != nil {
			continue
		}
		if len(snap.erased) > 0 {
			copy(p[:], k[len(pre):])
			if _, gone := snap.erased[p]; gone {
				continue
			}
		}
		if in, _ := r.eval(ectx, &v); in {
			n++
		}
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("estimate: %w", err)
	}
	return n, nil
}

// dueIndex schedules users for re-evaluation: at[k].due is when user k's
// memberships may next change; a min-heap holds (time, k) entries, at most
// one live entry per user (at[k].queued), stale ones skipped when popped.
type dueIndex struct {
	mu sync.Mutex
	at map[dueKey]dueState
	h  dueHeap
}

type dueKey struct {
	adv string
	p   Pseudonym
}

type dueState struct{ due, queued int64 }

type dueItem struct {
	at int64
	k  dueKey
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// set schedules k at t (never: not at all), replacing what was scheduled.
func (d *dueIndex) set(k dueKey, t int64) {
	d.mu.Lock()
	d.setLocked(k, t)
	d.mu.Unlock()
}

func (d *dueIndex) setLocked(k dueKey, t int64) {
	s, ok := d.at[k]
	if !ok {
		s.queued = never
	}
	s.due = t
	if t < s.queued {
		heap.Push(&d.h, dueItem{at: t, k: k})
		s.queued = t
	}
	if s.due == never && s.queued == never {
		delete(d.at, k)
		return
	}
	d.at[k] = s
}

// lower schedules k at t unless it is scheduled earlier.
func (d *dueIndex) lower(k dueKey, t int64) {
	if t == never {
		return
	}
	d.mu.Lock()
	if s, ok := d.at[k]; !ok || t < s.due {
		d.setLocked(k, t)
	}
	d.mu.Unlock()
}

// popDue removes and returns the users due at or before now.
func (d *dueIndex) popDue(now int64) []dueKey {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []dueKey
	for len(d.h) > 0 && d.h[0].at <= now {
		it := heap.Pop(&d.h).(dueItem)
		s, ok := d.at[it.k]
		if !ok || it.at != s.queued {
			continue // stale entry
		}
		s.queued = never
		switch {
		case s.due <= now:
			delete(d.at, it.k)
			out = append(out, it.k)
		case s.due == never:
			delete(d.at, it.k)
		default: // moved later: queue again
			heap.Push(&d.h, dueItem{at: s.due, k: it.k})
			s.queued = s.due
			d.at[it.k] = s
		}
	}
	return out
}

func (d *dueIndex) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.at)
}
