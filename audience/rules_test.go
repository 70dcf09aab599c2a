package audience

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseRuleErrors(t *testing.T) {
	deep := `{"event":"x"}`
	for i := 0; i < MaxRuleDepth; i++ {
		deep = `{"not":` + deep + `}`
	}
	wide := `{"any":[` + strings.Repeat(`{"event":"x"},`, MaxRuleChildren) + `{"event":"x"}]}`
	many := `{"all":[` + strings.Repeat(`{"any":[{"event":"a"},{"event":"b"},{"event":"c"}]},`, 16) + `{"event":"x"}]}`
	for _, tc := range []struct {
		name, rule, field, msg string
	}{
		{"empty", ``, "rule", "required"},
		{"null", `null`, "rule", "required"},
		{"not json", `{"all":`, "rule", "malformed JSON"},
		{"trailing", `{"event":"a"} {}`, "rule", "trailing"},
		{"array root", `[]`, "rule", "must be an object"},
		{"empty object", `{}`, "rule", "empty condition"},
		{"unknown key", `{"all":[{"event":"a","within_dayz":7}]}`, "rule.all[0].within_dayz", "unknown key"},
		{"two ops", `{"all":[{"event":"a"}],"any":[{"event":"b"}]}`, "rule", "only key"},
		{"op and leaf", `{"not":{"event":"a"},"event":"b"}`, "rule", "only key"},
		{"all not list", `{"all":{"event":"a"}}`, "rule.all", "list"},
		{"all empty", `{"all":[]}`, "rule.all", "at least one"},
		{"too wide", wide, "rule.any", "more than 32"},
		{"too deep", deep, "rule" + strings.Repeat(".not", MaxRuleDepth), "deeper"},
		{"too many nodes", many, "rule.all[15].any[2]", "more than 64 nodes"},
		{"leaf without event", `{"all":[{"min_count":3}]}`, "rule.all[0].event", "required"},
		{"event not string", `{"event":3}`, "rule.event", "string"},
		{"bad event name", `{"event":"Add To Cart"}`, "rule.event", "event type"},
		{"min_count zero", `{"event":"a","min_count":0}`, "rule.min_count", "whole number from 1"},
		{"min_count fraction", `{"event":"a","min_count":2.5}`, "rule.min_count", "whole number"},
		{"min_count string", `{"event":"a","min_count":"3"}`, "rule.min_count", "whole number"},
		{"window negative", `{"not":{"event":"purchase","within_days":-1}}`, "rule.not.within_days", "from 1 to 180"},
		{"window too long", `{"event":"a","within_days":181}`, "rule.within_days", "from 1 to 180"},
		{"window huge", `{"event":"a","within_days":1e300}`, "rule.within_days", "whole number"},
		{"category empty", `{"event":"a","category":""}`, "rule.category", "1–256"},
		{"product control", `{"event":"a","product":"a\u0001"}`, "rule.product", "control"},
		{"rfm empty", `{"rfm":{}}`, "rule.rfm", "at least one"},
		{"rfm not object", `{"rfm":3}`, "rule.rfm", "object"},
		{"rfm unknown", `{"rfm":{"recency":3}}`, "rule.rfm.recency", "unknown key"},
		{"rfm monetary negative", `{"rfm":{"monetary_min":-5}}`, "rule.rfm.monetary_min", "from 0"},
		{"rfm recency zero", `{"rfm":{"recency_days_max":0}}`, "rule.rfm.recency_days_max", "from 1"},
		{"nested path", `{"all":[{"event":"a"},{"any":[{"event":"b"},{"not":{"event":"c","min_count":-2}}]}]}`, "rule.all[1].any[1].not.min_count", "whole number"},
		{"too long", `{"event":"` + strings.Repeat("a", MaxRuleBytes) + `"}`, "rule", "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRule([]byte(tc.rule))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FieldError", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("err does not wrap ErrInvalid")
			}
			if fe.Field != tc.field || !strings.Contains(fe.Msg, tc.msg) {
				t.Errorf("got %s: %s; want field %s, message containing %q", fe.Field, fe.Msg, tc.field, tc.msg)
			}
		})
	}
}

func TestParseRuleValid(t *testing.T) {
	for _, rule := range []string{
		`{"event":"page_view"}`,
		`{"all":[{"event":"add_to_cart","within_days":7},{"not":{"event":"purchase","within_days":7}}]}`,
		`{"all":[{"event":"add_to_cart","within_days":7},{"not":{"event":"purchase","within_days":7}},
		  {"event":"product_view","category":"shoes","min_count":3,"within_days":14},
		  {"rfm":{"recency_days_max":30,"frequency_min":2,"monetary_min":100}}]}`,
		`{"any":[{"event":"custom.signup-v2"},{"rfm":{"monetary_min":0.5}}]}`,
		`{"event":"a","min_count":3.0}`,
	} {
		r, err := ParseRule([]byte(rule))
		if err != nil {
			t.Errorf("%s: %v", rule, err)
			continue
		}
		if _, err := ParseRule(r.Canonical); err != nil {
			t.Errorf("canonical form %s does not parse: %v", r.Canonical, err)
		}
	}
}

// viewOf builds a profile view from events, as RecordEvent would.
func viewOf(t testing.TB, now time.Time, evs ...Event) *profView {
	t.Helper()
	v := &profView{}
	for i := range evs {
		if _, err := v.add(&evs[i], now.Unix()); err != nil {
			t.Fatal(err)
		}
	}
	// Round-trip through the stored form, as the engine reads it.
	var out profView
	if err := out.decode(v.encode(nil)); err != nil {
		t.Fatal(err)
	}
	return &out
}

func ev(typ string, at time.Time, products ...string) Event {
	return Event{Type: typ, Time: at, Products: products}
}

func TestRuleEval(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cats := map[string]string{"sku-1": "shoes", "sku-2": "Shoes", "sku-3": "hats"}
	ctx := &evalCtx{now: now.Unix(), adv: "adv_1", categoryOf: func(adv, p string) string {
		if adv != "adv_1" {
			t.Errorf("categoryOf asked for advertiser %q", adv)
		}
		return cats[p]
	}}
	const abandoner = `{"all":[{"event":"add_to_cart","within_days":7},{"not":{"event":"purchase","within_days":7}}]}`
	purchase := func(at time.Time, value float64) Event {
		e := ev(EventPurchase, at, "sku-1")
		e.ValueMicros = int64(value * 1e6)
		return e
	}
	for _, tc := range []struct {
		name string
		rule string
		evs  []Event
		want bool
		edge time.Time // zero: never
	}{
		{"carted 2 days ago", abandoner, []Event{ev(EventAddToCart, now.Add(-2*day), "sku-1")}, true, now.Add(5 * day)},
		// Conservative: looked at again when the purchase leaves its window.
		{"carted then bought", abandoner, []Event{ev(EventAddToCart, now.Add(-2*day)), purchase(now.Add(-day), 10)}, false, now.Add(6 * day)},
		{"bought 8 days ago, carted 1 day ago", abandoner, []Event{purchase(now.Add(-8*day), 10), ev(EventAddToCart, now.Add(-day))}, true, now.Add(6 * day)},
		{"cart expired", abandoner, []Event{ev(EventAddToCart, now.Add(-8*day))}, false, time.Time{}},
		// Not a member while the purchase is in its window: re-evaluate
		// when it leaves (the cart leaves at the same time).
		{"bought 3 days ago", abandoner, []Event{ev(EventAddToCart, now.Add(-3*day)), purchase(now.Add(-3*day), 1)}, false, now.Add(4 * day)},
		{"not purchase alone", `{"not":{"event":"purchase","within_days":7}}`, []Event{purchase(now.Add(-3*day), 1)}, false, now.Add(4 * day)},
		{"shoes 3 times", `{"event":"product_view","category":"shoes","min_count":3,"within_days":14}`,
			[]Event{ev(EventProductView, now.Add(-13*day), "sku-1"), ev(EventProductView, now.Add(-5*day), "sku-2"),
				ev(EventProductView, now.Add(-day), "sku-3"), ev(EventProductView, now.Add(-time.Hour), "sku-1")}, true, now.Add(day)},
		{"shoes only twice", `{"event":"product_view","category":"shoes","min_count":3,"within_days":14}`,
			[]Event{ev(EventProductView, now.Add(-5*day), "sku-2"), ev(EventProductView, now.Add(-day), "sku-3"), ev(EventProductView, now, "sku-1")}, false, time.Time{}},
		{"product leaf", `{"event":"add_to_cart","product":"sku-3"}`, []Event{ev(EventAddToCart, now.Add(-100*day), "sku-3")}, true, time.Time{}},
		{"product leaf other", `{"event":"add_to_cart","product":"sku-3"}`, []Event{ev(EventAddToCart, now, "sku-1")}, false, time.Time{}},
		{"lifetime category", `{"event":"product_view","category":"shoes","min_count":2}`,
			[]Event{ev(EventProductView, now.Add(-179*day), "sku-1", "sku-2"), ev(EventProductView, now, "sku-3")}, true, time.Time{}},
		{"lifetime count", `{"event":"page_view","min_count":2}`, []Event{ev(EventPageView, now.Add(-170*day)), ev(EventPageView, now)}, true, time.Time{}},
		{"unknown type", `{"event":"login"}`, []Event{ev(EventPageView, now)}, false, time.Time{}},
		{"rfm all", `{"rfm":{"recency_days_max":30,"frequency_min":2,"monetary_min":100}}`,
			[]Event{purchase(now.Add(-60*day), 70), purchase(now.Add(-10*day), 40)}, true, now.Add(20 * day)},
		{"rfm too little", `{"rfm":{"frequency_min":2,"monetary_min":100}}`,
			[]Event{purchase(now.Add(-60*day), 70), purchase(now.Add(-10*day), 29.99)}, false, time.Time{}},
		{"rfm stale", `{"rfm":{"recency_days_max":30}}`, []Event{purchase(now.Add(-31*day), 70)}, false, time.Time{}},
		{"rfm no purchase", `{"rfm":{"monetary_min":0}}`, []Event{ev(EventPageView, now)}, false, time.Time{}},
		{"any true keeps latest", `{"any":[{"event":"page_view","within_days":1},{"event":"page_view","within_days":3}]}`,
			[]Event{ev(EventPageView, now.Add(-12*time.Hour))}, true, now.Add(60 * time.Hour)},
		{"all true earliest", `{"all":[{"event":"page_view","within_days":1},{"event":"page_view","within_days":3}]}`,
			[]Event{ev(EventPageView, now.Add(-12*time.Hour))}, true, now.Add(12 * time.Hour)},
		{"any false earliest", `{"any":[{"not":{"event":"page_view","within_days":1}},{"not":{"event":"page_view","within_days":3}}]}`,
			[]Event{ev(EventPageView, now.Add(-12*time.Hour))}, false, now.Add(12 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRule([]byte(tc.rule))
			if err != nil {
				t.Fatal(err)
			}
			v := viewOf(t, now, tc.evs...)
			got, edge := r.eval(ctx, v)
			if got != tc.want {
				t.Errorf("value = %v, want %v", got, tc.want)
			}
			// The scan paths decode only what the rule reads: same answer.
			var part profView
			if err := part.decodeSome(v.encode(nil), r.needsStats); err != nil {
				t.Fatal(err)
			}
			if got2, edge2 := r.eval(ctx, &part); got2 != got || edge2 != edge {
				t.Errorf("partial decode (stats %v): %v %d, full: %v %d", r.needsStats, got2, edge2, got, edge)
			}
			wantEdge := never
			if !tc.edge.IsZero() {
				wantEdge = tc.edge.Unix()
			}
			if edge != wantEdge {
				t.Errorf("edge = %v, want %v", time.Unix(edge, 0).UTC(), tc.edge)
			}
			// At the edge (when there is one) the value must have changed,
			// or the rule must be waiting on a later edge.
			if edge != never {
				c2 := *ctx
				c2.now = edge
				got2, edge2 := r.eval(&c2, v)
				if got2 == got && edge2 <= edge {
					t.Errorf("at the edge the value is still %v with edge %d", got2, edge2)
				}
			}
		})
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		`{"all":[{"event":"add_to_cart","within_days":7},{"not":{"event":"purchase","within_days":7}}]}`,
		`{"any":[{"event":"product_view","category":"shoes","min_count":3,"within_days":14},{"rfm":{"recency_days_max":30,"frequency_min":2,"monetary_min":100}}]}`,
		`{"not":{"not":{"not":{"event":"x"}}}}`, `{"rfm":{"monetary_min":1e400}}`, `{"event":"a","min_count":-0}`,
		`[`, `{"all":[{}]}`, `"x"`, `{"event":"a","product":"p","category":"c","min_count":1e3,"within_days":180}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	v := viewOf(f, now, ev(EventAddToCart, now.Add(-time.Hour), "sku-1"), ev(EventPurchase, now.Add(-48*time.Hour), "sku-2"))
	ctx := &evalCtx{now: now.Unix(), categoryOf: func(_, p string) string { return "shoes" }}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRule(b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "rule") {
				t.Fatalf("error %v is not a FieldError on rule…", err)
			}
			return
		}
		r2, err := ParseRule(r.Canonical)
		if err != nil {
			t.Fatalf("canonical %s: %v", r.Canonical, err)
		}
		a, ea := r.eval(ctx, v)
		b2, eb := r2.eval(ctx, v)
		if a != b2 || ea != eb {
			t.Fatalf("canonical form evaluates differently")
		}
		if ea != never && ea <= ctx.now {
			t.Fatalf("edge %d not in the future of %d", ea, ctx.now)
		}
	})
}
