package inflate

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkGunzip: a gzipped typical bid request (2.6 KB, the bidder's
// testdata), by this package and by klauspost's pooled gzip reader.
func BenchmarkGunzip(b *testing.B) {
	body, err := os.ReadFile("../bidder/testdata/requests/typical_2k.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, level := range []int{-2, 0, 1, 6} {
		src := gzipped(b, level, body)
		b.Run(fmt.Sprint("level", level), func(b *testing.B) {
			var d Decoder
			out := make([]byte, 0, 8<<10)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if out, err = d.Gunzip(out[:0], src, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	src := gzipped(b, 6, body)[10:]
	b.Run("inflate", func(b *testing.B) {
		var d Decoder
		out := make([]byte, 0, 8<<10)
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if out, _, err = d.Inflate(out[:0], src, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
}
