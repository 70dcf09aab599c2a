// Command chaser is the Chaser bidder: `chaser serve` runs the public
// (exchange-facing) and admin servers on one Pebble data directory; the
// other commands are a client of a running server's admin API.
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

` + clientUsage

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd := os.Args[1]; {
	case cmd == "serve":
		err = runServe(os.Args[2:])
	case cmd == "eval-recommender":
		err = runEvalRecommender(os.Args[2:])
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Print(usage)
		return
	case clientCommands[cmd]:
		err = runClient(cmd, os.Args[2:], os.Stdin, os.Stdout, os.Stderr)
	default:
		fmt.Fprintf(os.Stderr, "chaser: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaser:", err)
		os.Exit(1)
	}
}
