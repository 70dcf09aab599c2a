//go:build !race

package pacing

const raceEnabled = false
