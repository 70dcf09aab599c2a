package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/audience"
	"github.com/chaser-dsp/chaser/lookalike"
)

// lkWorld is a synthetic population with planted structure: most users
// belong to one of 20 interest groups whose members visit the group's own
// sites 30 % of the time (a long tail of shared sites otherwise); the seed
// is drawn 70 % from groups 0 and 1 and 30 % at random. User i's buyer uid is
// "user-i".
type lkWorld struct {
	users int
	group []int
	seed  []int
	inSee []bool
}

func newLKWorld(users, seedSize int) *lkWorld {
	rng := rand.New(rand.NewPCG(7, 1))
	w := &lkWorld{users: users, group: make([]int, users), inSee: make([]bool, users)}
	var target []int
	for i := range w.group {
		w.group[i] = -1
		if rng.Float64() < 0.8 {
			w.group[i] = rng.IntN(20)
		}
		if w.group[i] == 0 || w.group[i] == 1 {
			target = append(target, i)
		}
	}
	rng.Shuffle(len(target), func(a, b int) { target[a], target[b] = target[b], target[a] })
	for _, i := range target[:min(len(target), seedSize*7/10)] {
		w.inSee[i] = true
		w.seed = append(w.seed, i)
	}
	for len(w.seed) < seedSize {
		if i := rng.IntN(users); !w.inSee[i] {
			w.inSee[i] = true
			w.seed = append(w.seed, i)
		}
	}
	return w
}

// observe writes every user's bid-stream observations through the
// population (sampling every call: see withPopulation).
func (w *lkWorld) observe(t testing.TB, a *app) {
	pz := a.audiences.Pseudonymizer()
	countries := []string{"KOR", "KOR", "KOR", "USA", "JPN"}
	for i := 0; i < w.users; i++ {
		rng := rand.New(rand.NewPCG(11, uint64(i)))
		u := lookalike.UserID(pz.Of(audience.IDUID, "user-"+strconv.Itoa(i)))
		country := countries[rng.IntN(len(countries))]
		os := []string{"android", "ios"}[rng.IntN(2)]
		for k := 0; k < 3+rng.IntN(6); k++ {
			o := lookalike.Observation{Country: country, OS: os, DeviceType: 4, Hour: rng.IntN(24)}
			if g := w.group[i]; g >= 0 && rng.Float64() < 0.3 {
				d := rng.IntN(30)
				o.Domain = fmt.Sprintf("g%d-site%d.example", g, d)
				o.Categories = []string{fmt.Sprintf("IAB%d-%d", 1+g, 1+d%5)}
			} else {
				d := rng.IntN(3000)
				o.Domain = fmt.Sprintf("site%d.example", d)
				o.Categories = []string{fmt.Sprintf("IAB%d-%d", 1+d%26, 1+d%7)}
			}
			a.population.Observe(u, o)
		}
		if i%4096 == 4095 {
			if err := a.population.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.population.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (w *lkWorld) seedCSV(n int) string {
	var b strings.Builder
	for _, i := range w.seed[:n] {
		fmt.Fprintf(&b, "user-%d\n", i)
	}
	return b.String()
}

// waitAudience polls an audience until its status is not building.
func waitAudience(t *testing.T, s *server, id string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		a := s.admin("GET", "/v1/audiences/"+id, "", "", 200)
		if a["status"] != audience.StatusBuilding {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("audience %s still building after 2 minutes: %v", id, a["lookalike"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLookalikeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	popOpts := withPopulation(lookalike.PopulationOptions{SampleRate: 1, QueueSize: 1 << 16})
	s := startServer(t, dir, popOpts)
	w := newLKWorld(20000, 1000)
	w.observe(t, s.app)

	adv := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Acme Shoes","domain":"shop.example"}`, 201)
	advID := adv["id"].(string)
	s.admin("PUT", "/v1/advertisers/"+advID+"/products", "text/csv", feedCSV, 200)
	seed := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+advID+`","name":"buyers","type":"list"}`, 201)
	seedID := seed["id"].(string)
	s.admin("POST", "/v1/audiences/"+seedID+"/members?id_type=uid", "text/csv", w.seedCSV(len(w.seed)), 200)

	// Validation: field errors.
	for _, tc := range []struct{ body, field string }{
		{`{"seed":"aud_nope","percent":5}`, "lookalike.seed"},
		{`{"seed":"` + seedID + `","percent":11}`, "lookalike.percent"},
		{`{"seed":"` + seedID + `","percent":0}`, "lookalike.percent"},
		{`{"seed":"` + seedID + `","percent":5,"bogus":1}`, "lookalike"},
		{`[]`, "lookalike"},
	} {
		e := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+advID+`","name":"lal","type":"lookalike","lookalike":`+tc.body+`}`, 400)
		if e["field"] != tc.field || e["error"] == "" {
			t.Errorf("%s: got %v, want field %s", tc.body, e, tc.field)
		}
	}
	other := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Other","domain":"other.example"}`, 201)
	e := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+other["id"].(string)+`","name":"lal","type":"lookalike","lookalike":{"seed":"`+seedID+`","percent":5}}`, 400)
	if e["field"] != "lookalike.seed" {
		t.Errorf("other advertiser's seed: %v", e)
	}

	t0 := time.Now()
	lal := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+advID+`","name":"like buyers","type":"lookalike","lookalike":{"seed":"`+seedID+`","percent":5,"include_seed":false}}`, 201)
	lalID := lal["id"].(string)
	if lal["status"] != audience.StatusBuilding {
		t.Fatalf("new lookalike status %v", lal["status"])
	}
	got := waitAudience(t, s, lalID)
	t.Logf("build through the API: %v: %v", time.Since(t0), got["lookalike"])
	if got["status"] != audience.StatusReady {
		t.Fatalf("lookalike status %v: %v", got["status"], got["lookalike"])
	}
	lk := got["lookalike"].(map[string]any)
	q := lk["quality"].(map[string]any)
	if lk["status"] != "ready" || lk["built_at"] == nil || q["lift"].(float64) < 3 || q["auc"].(float64) < 0.6 ||
		q["seed_size"].(float64) != 1000 || q["population_size"].(float64) < 19000 || q["expansion_size"].(float64) < 900 {
		t.Fatalf("lookalike block %v", lk)
	}
	p := lk["progress"].(map[string]any)
	if p["done"] != p["total"] || p["total"].(float64) == 0 {
		t.Errorf("progress %v", p)
	}
	if got["size"].(float64) != q["expansion_size"].(float64) {
		t.Errorf("size %v, expansion %v", got["size"], q["expansion_size"])
	}

	// Members: non-seed users of the seed's groups are far likelier members
	// than users of other groups; seed members are not members (include_seed false).
	member := func(s *server, is []int) []bool {
		var b strings.Builder
		b.WriteString(`{"ids":[`)
		for k, i := range is {
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"type":"uid","value":"user-%d"}`, i)
		}
		b.WriteString(`]}`)
		res := s.admin("POST", "/v1/audiences/"+lalID+"/contains", "application/json", b.String(), 200)
		out := make([]bool, len(is))
		for k, v := range res["results"].([]any) {
			out[k] = v.(bool)
		}
		return out
	}
	var inGroups, outGroups []int
	for i := 0; i < w.users && (len(inGroups) < 1000 || len(outGroups) < 1000); i++ {
		if w.inSee[i] {
			continue
		}
		if g := w.group[i]; (g == 0 || g == 1) && len(inGroups) < 1000 {
			inGroups = append(inGroups, i)
		} else if g > 1 && len(outGroups) < 1000 {
			outGroups = append(outGroups, i)
		}
	}
	count := func(bs []bool) (n int, first int) {
		first = -1
		for k, b := range bs {
			if b {
				n++
				if first < 0 {
					first = k
				}
			}
		}
		return
	}
	nIn, firstIn := count(member(s, inGroups))
	nOut, _ := count(member(s, outGroups))
	if nIn < 3*nOut+10 || firstIn < 0 {
		t.Fatalf("members among seed-group users %d/1000, other groups %d/1000", nIn, nOut)
	}
	if n, _ := count(member(s, w.seed[:500])); n != 0 {
		t.Errorf("%d seed members in a lookalike without include_seed", n)
	}
	liker := "user-" + strconv.Itoa(inGroups[firstIn])

	// A campaign targeting the lookalike bids for a lookalike member.
	s.admin("POST", "/v1/campaigns", "application/json", `{"advertiser_id":"`+advID+`","name":"Prospecting",
		"status":"active","currency":"USD","budget":{"daily":100,"total":1000},"pacing":"asap",
		"bid":{"base_cpm":2.5,"max_cpm":6},"targeting":{"audiences":["`+lalID+`"],"countries":["KOR"]},
		"creative":{"sizes":["300x250"]}}`, 201)
	if code, resp := s.bid(bidRequest("l1", liker, 0.5)); code != 200 || len(resp.SeatBid) != 1 {
		t.Fatalf("lookalike member %s: status %d", liker, code)
	}
	if code, _ := s.bid(bidRequest("l2", "user-"+strconv.Itoa(outGroups[0]), 0.5)); code != 204 {
		if ok := member(s, outGroups[:1])[0]; !ok {
			t.Fatalf("non-member: status %d, want 204", code)
		}
	}

	// A too-small seed: failed, with the minimum in the reason.
	small := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+advID+`","name":"few","type":"list"}`, 201)
	smallID := small["id"].(string)
	s.admin("POST", "/v1/audiences/"+smallID+"/members?id_type=uid", "text/csv", w.seedCSV(50), 200)
	fl := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+advID+`","name":"like few","type":"lookalike","lookalike":{"seed":"`+smallID+`","percent":3}}`, 201)
	failed := waitAudience(t, s, fl["id"].(string))
	flk := failed["lookalike"].(map[string]any)
	if failed["status"] != audience.StatusFailed || flk["status"] != "failed" || !strings.Contains(flk["error"].(string), "100") {
		t.Fatalf("too-small seed: %v %v", failed["status"], flk)
	}

	// Restart right after creating another lookalike (during or after its
	// build): it ends ready; the first one stays ready with its members.
	again := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+advID+`","name":"like buyers 10","type":"lookalike","lookalike":{"seed":"`+seedID+`","percent":10}}`, 201)
	s.stop()
	s2 := startServer(t, dir, popOpts)
	if a := waitAudience(t, s2, again["id"].(string)); a["status"] != audience.StatusReady {
		t.Fatalf("lookalike created before a restart: %v %v", a["status"], a["lookalike"])
	}
	if a := s2.admin("GET", "/v1/audiences/"+lalID, "", "", 200); a["status"] != audience.StatusReady || a["size"] != got["size"] {
		t.Fatalf("after restart: %v size %v", a["status"], a["size"])
	}
	if code, _ := s2.bid(bidRequest("l3", liker, 0.5)); code != 200 {
		t.Fatalf("lookalike member after restart: status %d", code)
	}

	// A refresh after the seed grew rebuilds (exact replacement: size is the expansion).
	s2.admin("POST", "/v1/audiences/"+seedID+"/members?id_type=uid", "text/csv", "user-0\n", 200)
	before := s2.admin("GET", "/v1/audiences/"+lalID, "", "", 200)["lookalike"].(map[string]any)["attempted_at"]
	s2.app.lookalikes.Maintain(time.Now().Add(25 * time.Hour))
	var a map[string]any
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		a = waitAudience(t, s2, lalID)
		if a["lookalike"].(map[string]any)["attempted_at"] != before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no rebuild after the seed grew")
		}
	}
	if a["status"] != audience.StatusReady || a["size"].(float64) != a["lookalike"].(map[string]any)["quality"].(map[string]any)["expansion_size"].(float64) {
		t.Fatalf("after refresh: %v %v", a["status"], a["lookalike"])
	}
}

// TestLookalikeAPIBuildTime measures a build through the API (create →
// ready) at a size set by CHASER_LOOKALIKE_USERS (the seed is 5 % of it);
// skipped without it. BENCHMARKS.md "Lookalike" has the figures.
func TestLookalikeAPIBuildTime(t *testing.T) {
	users, _ := strconv.Atoi(os.Getenv("CHASER_LOOKALIKE_USERS"))
	if users < 20000 {
		t.Skip("set CHASER_LOOKALIKE_USERS (≥ 20000) to measure")
	}
	s := startServer(t, t.TempDir(), withPopulation(lookalike.PopulationOptions{SampleRate: 1, QueueSize: 1 << 16}))
	w := newLKWorld(users, users/20)
	t0 := time.Now()
	w.observe(t, s.app)
	t.Logf("population of %d users observed in %v", s.app.population.Size(), time.Since(t0).Round(time.Millisecond))
	adv := s.admin("POST", "/v1/advertisers", "application/json", `{"name":"Acme","domain":"shop.example"}`, 201)
	advID := adv["id"].(string)
	seed := s.admin("POST", "/v1/audiences", "application/json", `{"advertiser_id":"`+advID+`","name":"buyers","type":"list"}`, 201)
	seedID := seed["id"].(string)
	s.admin("POST", "/v1/audiences/"+seedID+"/members?id_type=uid", "text/csv", w.seedCSV(len(w.seed)), 200)
	for _, pct := range []int{5, 10} {
		t0 = time.Now()
		lal := s.admin("POST", "/v1/audiences", "application/json", fmt.Sprintf(`{"advertiser_id":%q,"name":"lal","type":"lookalike","lookalike":{"seed":%q,"percent":%d}}`, advID, seedID, pct), 201)
		a := waitAudience(t, s, lal["id"].(string))
		q := a["lookalike"].(map[string]any)["quality"].(map[string]any)
		t.Logf("seed %d over %d users, %d %%: create → ready in %v; size %v, lift %.1f, AUC %.3f", len(w.seed), users, pct,
			time.Since(t0).Round(time.Millisecond), a["size"], q["lift"], q["auc"])
	}
}
