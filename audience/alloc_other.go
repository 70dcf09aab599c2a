//go:build !linux

package audience

// allocWords returns n zeroed words for a filter (see alloc_linux.go).
func allocWords(_ *bloomFilter, n int) []uint64 { return make([]uint64, n) }
