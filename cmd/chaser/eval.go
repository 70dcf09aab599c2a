package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/chaser-dsp/chaser/creative"
)

// runEvalRecommender runs the recommender's offline evaluation on the public
// data sets in ../shared/data (YooChoose clicks, UCI Online Retail) through
// the same creative.Recommender the server uses, and prints a markdown report.
func runEvalRecommender(args []string) error {
	fs := flag.NewFlagSet("eval-recommender", flag.ContinueOnError)
	data := fs.String("data", "../shared/data", "directory holding yoochoose-clicks-100k/ and online-retail.csv.gz")
	tune := fs.Bool("tune", false, "search the options again on validation splits of the training data (slow)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := creative.TunedEvalOptions()
	opts.Tune = *tune
	if _, err := creative.RunEval(os.Stdout, *data, opts); err != nil {
		return fmt.Errorf("eval-recommender: %w", err)
	}
	return nil
}
