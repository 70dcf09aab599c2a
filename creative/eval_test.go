package creative

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// evalDataDir returns the shared data directory, or skips the test if the
// data is absent (it is not in the repository).
func evalDataDir(t testing.TB) string {
	t.Helper()
	for _, dir := range []string{
		os.Getenv("CHASER_DATA"),
		filepath.Join("..", "..", "shared", "data"), // from creative/ in a checkout next to shared/
		filepath.Join("..", "shared", "data"),
		"/work/shared/data",
	} {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "yoochoose-clicks-100k")); err == nil {
			return dir
		}
	}
	t.Skip("evaluation data not found (set CHASER_DATA to the shared data directory)")
	return ""
}

// TestRunEvalSample evaluates a prefix of both data sets and checks that the
// recommender beats the most-popular baseline on the next click.
func TestRunEvalSample(t *testing.T) {
	dir := evalDataDir(t)
	var out bytes.Buffer
	rep, err := RunEval(&out, dir, EvalOptions{
		MaxTrainLines:  30000,
		MaxTestLines:   4000,
		MaxRetailLines: 60000,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	rec, ok1 := rep.Result(EvalDatasetYooChoose, EvalMethodRecommender)
	pop, ok2 := rep.Result(EvalDatasetYooChoose, EvalMethodPopular)
	recent, ok3 := rep.Result(EvalDatasetYooChoose, EvalMethodRecent)
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("missing YooChoose results: %+v", rep.Results)
	}
	if rec.Cases < 500 {
		t.Fatalf("only %d YooChoose cases scored", rec.Cases)
	}
	if rec.HitRate < 2*pop.HitRate || rec.MRR < 2*pop.MRR {
		t.Errorf("recommender hit@5 %.4f MRR@5 %.4f, not twice most popular's %.4f / %.4f",
			rec.HitRate, rec.MRR, pop.HitRate, pop.MRR)
	}
	if rec.HitRate <= recent.HitRate {
		t.Errorf("recommender hit@5 %.4f not above most recent's %.4f", rec.HitRate, recent.HitRate)
	}
	for _, m := range []string{EvalMethodRecommender, EvalMethodRecommenderRebuy, EvalMethodPopular, EvalMethodRecent} {
		r, ok := rep.Result(EvalDatasetRetail, m)
		if !ok || r.Cases == 0 {
			t.Errorf("Online Retail %s: no cases (%+v)", m, r)
		}
	}
	if !strings.Contains(out.String(), "| yoochoose-clicks-100k | recommender |") {
		t.Errorf("report lacks the recommender row:\n%s", out.String())
	}
}

// TestRunEvalFull runs the whole evaluation, with tuning, when
// CHASER_EVAL_FULL is set; it takes a minute or two.
func TestRunEvalFull(t *testing.T) {
	if os.Getenv("CHASER_EVAL_FULL") == "" {
		t.Skip("set CHASER_EVAL_FULL=1 to run the full evaluation")
	}
	dir := evalDataDir(t)
	var out bytes.Buffer
	opts := TunedEvalOptions()
	opts.Tune = os.Getenv("CHASER_EVAL_FULL") == "tune"
	_, err := RunEval(&out, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
}

func TestRunEvalMissingData(t *testing.T) {
	_, err := RunEval(&bytes.Buffer{}, t.TempDir(), EvalOptions{})
	if err == nil {
		t.Fatal("no error for an empty data directory")
	}
}

// TestRunEvalFixture runs the evaluation on tiny hand-made files in the
// formats of the real ones (testdata/recommend), whose scores are worked
// out by hand: it checks parsing, filtering, splitting and scoring.
func TestRunEvalFixture(t *testing.T) {
	var out bytes.Buffer
	rep, err := RunEval(&out, filepath.Join("testdata", "recommend"), EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	want := []EvalResult{
		// Test sessions A→B, C→D and A→Z (Z unknown: skipped).
		{EvalDatasetYooChoose, EvalMethodRecommender, 2, 1, 1, 0.5},
		{EvalDatasetYooChoose, EvalMethodPopular, 2, 1, 1, (1.0/2 + 1.0/5) / 2},
		{EvalDatasetYooChoose, EvalMethodRecent, 2, 1, 0, 0},
		// Two customers with two invoices; postage, a cancellation, a line
		// without customer and one with quantity 0 left out.
		{EvalDatasetRetail, EvalMethodRecommender, 2, 0, 0.5, 0.5},
		{EvalDatasetRetail, EvalMethodPopular, 2, 0, 1, (1.0/3 + 1.0/2) / 2},
		{EvalDatasetRetail, EvalMethodPopularNew, 2, 0, 0.5, 0.5},
		{EvalDatasetRetail, EvalMethodRecent, 2, 0, 1, (1 + 1.0/2) / 2},
	}
	for _, w := range want {
		got, ok := rep.Result(w.Dataset, w.Method)
		if !ok {
			t.Errorf("no result for %s %s", w.Dataset, w.Method)
			continue
		}
		if got.Cases != w.Cases || got.Skipped != w.Skipped || math.Abs(got.HitRate-w.HitRate) > 1e-9 || math.Abs(got.MRR-w.MRR) > 1e-9 {
			t.Errorf("%s %s = %+v, want %+v", w.Dataset, w.Method, got, w)
		}
	}
}

func TestRunEvalBadData(t *testing.T) {
	dir := t.TempDir()
	yc := filepath.Join(dir, "yoochoose-clicks-100k")
	if err := os.Mkdir(yc, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"train_full.txt": "SessionId\tItemId\tTime\n1\tA\tnot-a-time\n",
		"test.txt":       "SessionId\tItemId\tTime\n1\tA\t1\n",
	} {
		if err := os.WriteFile(filepath.Join(yc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := RunEval(&bytes.Buffer{}, dir, EvalOptions{SkipRetail: true})
	if !errors.Is(err, ErrEvalData) || !strings.Contains(err.Error(), "train_full.txt:2") {
		t.Errorf("err = %v, want ErrEvalData naming the line", err)
	}
}
