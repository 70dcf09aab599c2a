package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

func TestPrefixEnd(t *testing.T) {
	cases := []struct{ in, want []byte }{
		{[]byte("aud/"), []byte("aud0")},
		{[]byte{'a', 0xff}, []byte{'b'}},
		{[]byte{0xff, 0xff}, nil},
	}
	for _, tc := range cases {
		if got := PrefixEnd(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("PrefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScanGetDeletePrefix(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, k := range []string{"aud/1", "aud/2", "aue/x", "au"} {
		if err := db.Set([]byte(k), []byte("v"+k), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := Scan(db, []byte("aud/"), func(k, _ []byte) error { keys = append(keys, string(k)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "aud/1" || keys[1] != "aud/2" {
		t.Fatalf("scan = %v", keys)
	}
	if v, err := Get(db, []byte("aue/x")); err != nil || string(v) != "vaue/x" {
		t.Fatalf("get = %q %v", v, err)
	}
	if _, err := Get(db, []byte("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if err := DeletePrefix(db, []byte("aud/"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := Get(db, []byte("aud/1")); !errors.Is(err, ErrNotFound) {
		t.Fatal("prefix not deleted")
	}
	if _, err := Get(db, []byte("aue/x")); err != nil {
		t.Fatal("DeletePrefix deleted a neighbour")
	}
}
