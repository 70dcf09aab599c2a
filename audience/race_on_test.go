//go:build race

package audience

// raceEnabled: the race detector is on (sync.Pool drops items, so
// allocation counts are meaningless, and everything runs ~10× slower).
const raceEnabled = true
