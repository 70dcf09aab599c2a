// Command chaser is the Chaser bidder: `chaser serve` runs the public
// (exchange-facing) and admin servers on one Pebble data directory.
package main

import (
	"fmt"
	"os"
)

const usage = `chaser — a retargeting and lookalike demand-side bidder

Usage:
  chaser serve [flags]     run the bidder (public and admin ports)
  chaser eval-recommender  offline recommender evaluation on ../shared/data
  chaser help              show this help

Run "chaser serve -h" for the serve flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = runServe(os.Args[2:])
	case "eval-recommender":
		err = runEvalRecommender(os.Args[2:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "chaser: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaser:", err)
		os.Exit(1)
	}
}
