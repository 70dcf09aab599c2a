//go:build !unix

package lookalike

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
