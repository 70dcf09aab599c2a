package loadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestPrepareMembers(t *testing.T) {
	cfg := DefaultPrepareConfig()
	cfg.Token = "t"
	cfg.Audiences, cfg.Members = 7, 5000
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	inAudiences := map[string]int{}
	seen := map[string]bool{}
	for a := range cfg.Audiences {
		var buf bytes.Buffer
		n, err := cfg.writeMembers(&buf, a)
		if err != nil || n != int64(buf.Len()) {
			t.Fatalf("audience %d: wrote %d, buffer %d, %v", a, n, buf.Len(), err)
		}
		var cw countWriter
		if m, _ := cfg.writeMembers(&cw, a); m != n || cw.n != n {
			t.Fatalf("audience %d: second pass %d/%d bytes, first %d: the Content-Length would lie", a, m, cw.n, n)
		}
		lines := 0
		sc := bufio.NewScanner(&buf)
		for sc.Scan() {
			lines++
			uid := sc.Text()
			switch {
			case strings.HasPrefix(uid, cfg.KnownPrefix):
				inAudiences[uid]++
			case strings.HasPrefix(uid, fmt.Sprintf("lt-a%02d-", a)):
				if seen[uid] {
					t.Fatalf("audience %d: %s twice", a, uid)
				}
				seen[uid] = true
			default:
				t.Fatalf("audience %d: unexpected member %q", a, uid)
			}
		}
		if lines != cfg.Members {
			t.Errorf("audience %d: %d lines, want %d", a, lines, cfg.Members)
		}
	}
	if len(inAudiences) != cfg.KnownCount {
		t.Errorf("%d known users in audiences, want %d", len(inAudiences), cfg.KnownCount)
	}
	for uid, n := range inAudiences {
		if n != cfg.KnownPerUser {
			t.Errorf("%s in %d audiences, want %d", uid, n, cfg.KnownPerUser)
		}
	}
}

// TestPrepareCampaignPlan checks the default mix: every audience targeted,
// 2 or 3 audiences a campaign, sizes the generator sends, both pacings, some
// native, a valid JSON body.
func TestPrepareCampaignPlan(t *testing.T) {
	cfg := DefaultPrepareConfig()
	auds := make([]PreparedAudience, cfg.Audiences)
	for i := range auds {
		auds[i].ID = fmt.Sprintf("aud_%d", i)
	}
	sent := map[string]bool{}
	for _, slots := range append(append(append([][]size{}, siteSlots...), mobileSlots...), interstitialSlot) {
		for _, s := range slots {
			sent[fmt.Sprintf("%dx%d", s.w, s.h)] = true
		}
	}
	targeted := map[string]bool{}
	pacing := map[string]int{}
	native := 0
	for i := range cfg.Campaigns {
		pc := cfg.campaignPlan(i, auds)
		if n := len(pc.Audiences); n < 2 || n > 3 {
			t.Errorf("%s: %d audiences", pc.Name, n)
		}
		for _, id := range pc.Audiences {
			targeted[id] = true
		}
		for _, s := range pc.Sizes {
			if !sent[s] {
				t.Errorf("%s: size %s is never sent", pc.Name, s)
			}
		}
		if pc.BaseCPM <= 0 || pc.MaxCPM < pc.BaseCPM {
			t.Errorf("%s: CPM %v–%v", pc.Name, pc.BaseCPM, pc.MaxCPM)
		}
		pacing[pc.Pacing]++
		native += btoi(pc.Native)
		if b := pc.body(&cfg); !strings.Contains(b, `"daily":1000000,"total":10000000`) || !strings.Contains(b, `"name":"`+pc.Name+`"`) {
			t.Errorf("%s: body %s", pc.Name, b)
		}
	}
	if len(targeted) != cfg.Audiences {
		t.Errorf("%d of %d audiences targeted", len(targeted), cfg.Audiences)
	}
	if pacing["asap"] == 0 || pacing["even"] == 0 || native == 0 {
		t.Errorf("pacing %v, %d native", pacing, native)
	}
}

func TestPrepareValidate(t *testing.T) {
	for name, mod := range map[string]func(*PrepareConfig){
		"no token":          func(c *PrepareConfig) { c.Token = "" },
		"bad admin":         func(c *PrepareConfig) { c.Admin = "127.0.0.1:8081" },
		"no audiences":      func(c *PrepareConfig) { c.Audiences = 0 },
		"no campaigns":      func(c *PrepareConfig) { c.Campaigns = 0 },
		"too few members":   func(c *PrepareConfig) { c.Members = 2 },
		"no parallel":       func(c *PrepareConfig) { c.Parallel = 0 },
		"daily above total": func(c *PrepareConfig) { c.DailyBudget = 2e7 },
	} {
		cfg := DefaultPrepareConfig()
		cfg.Token = "t"
		mod(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
