//go:build !race

package audience

const raceEnabled = false
