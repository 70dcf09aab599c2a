package lookalike

import (
	"context"
	"os"
	"testing"
)

// TestCompareModels prints, for the 20 k-user test worlds (planted, weak,
// and no structure), the quality of each model and of an oracle that knows
// the planted groups, averaged over 3 hold-out draws. It measures, asserts
// nothing, and runs only with LOOKALIKE_COMPARE=1:
//
//	LOOKALIKE_COMPARE=1 go test -run TestCompareModels -v ./lookalike/
func TestCompareModels(t *testing.T) {
	if os.Getenv("LOOKALIKE_COMPARE") == "" {
		t.Skip("set LOOKALIKE_COMPARE=1 to compare the models")
	}
	for _, variant := range []string{"planted", "weak", "none"} {
		c := smallSynth()
		c.Structured = variant != "none"
		if variant == "weak" {
			c.GroupVisit, c.MeanObs = 0.1, 4
		}
		w := newSynthWorld(c)
		clk := newClock(synthNow)
		p, _ := openPop(t, PopulationOptions{SampleRate: 1, Now: clk.now})
		w.observeAll(t, p)
		for _, m := range []struct {
			name string
			m    model
		}{
			{"logistic-ftrl", logistic{defaultModel}},
			{"naive-bayes", naiveBayes{alpha: 1}},
			{"minhash-lsh-32x2", minHashLSH{bands: 32, rows: 2, smooth: 5}},
			{"minhash-lsh-16x4", minHashLSH{bands: 16, rows: 4, smooth: 5}},
			{"oracle", oracle{w}},
		} {
			var lift, auc float64
			for rs := int64(1); rs <= 3; rs++ {
				r, err := build(context.Background(), p, w.seed, BuildOptions{Percent: 5, RandSeed: rs}, m.m, nil)
				if err != nil {
					t.Fatal(err)
				}
				lift += r.Quality.Lift / 3
				auc += r.Quality.AUC / 3
			}
			t.Logf("%-8s %-18s lift %5.2f  AUC %.3f", variant, m.name, lift, auc)
		}
	}
}

// oracle scores 1 for members of the planted target groups, 0 otherwise:
// the best a model could do from the features.
type oracle struct{ w *synthWorld }

func (o oracle) fitScore(ctx context.Context, f *fit, out []float32) error {
	idx := make(map[UserID]int, o.w.c.Users)
	for i := 0; i < o.w.c.Users; i++ {
		idx[synthUID(uint64(i))] = i
	}
	for i, u := range f.d.uids {
		out[i] = 0
		if g := o.w.group[idx[u]]; g >= 0 && int(g) < o.w.c.TargetGroups {
			out[i] = 1
		}
	}
	return nil
}
