package audience

import (
	"runtime"
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on Linux/amd64 and arm64.
const hugePage = 2 << 20

// allocWords returns n zeroed words for a filter. Filters of 1 MB or more
// live outside the Go heap in memory advised for transparent huge pages
// (THP "madvise" mode is the common default): the bid path's probes land at
// random in tens of MB of filters, and with 4 KB pages nearly every probe
// also misses the TLB, which under a hypervisor costs a two-level page walk.
// On this machine that makes random probes 2.4× faster. The advised span is
// rounded up to whole huge pages (a 1.8 MB filter, 1 M members, takes one
// 2 MB page: the kernel backs only whole aligned pages with huge ones), so
// at most half of a filter's memory is slack, and only at the 1 MB edge.
// The mapping is released when owner becomes unreachable; owner's methods
// must keep it alive (runtime.KeepAlive) while they use the words.
func allocWords(owner *bloomFilter, n int) []uint64 {
	size := n * 8
	if size < hugePage/2 {
		return make([]uint64, n)
	}
	span := (size + hugePage - 1) / hugePage * hugePage
	mapped, err := syscall.Mmap(-1, 0, span+hugePage, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]uint64, n)
	}
	off := (hugePage - int(uintptr(unsafe.Pointer(&mapped[0]))%hugePage)) % hugePage
	_ = syscall.Madvise(mapped[off:off+span], 14) // MADV_HUGEPAGE; a refusal only costs speed
	runtime.AddCleanup(owner, func(m []byte) { _ = syscall.Munmap(m) }, mapped)
	return unsafe.Slice((*uint64)(unsafe.Pointer(&mapped[off])), n)
}
