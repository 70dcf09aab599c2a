package audience

import (
	"time"

	"github.com/chaser-dsp/chaser/store"
)

func timeDays(d int) time.Duration { return time.Duration(d) * 24 * time.Hour }

func linkPrefix(p Pseudonym) []byte {
	k := make([]byte, 0, len(store.PrefixLink)+len(p)+1)
	k = append(k, store.PrefixLink...)
	k = append(k, p[:]...)
	return append(k, '/')
}

// hasLink reports whether p (an e-mail or phone pseudonym) is linked to an
// id seen in the bid stream.
func (m *Manager) hasLink(p Pseudonym) bool {
	found := false
	_ = store.Scan(m.db, linkPrefix(p), func(_, _ []byte) error {
		found = true
		return errStop
	})
	return found
}

type stopErr struct{}

func (stopErr) Error() string { return "stop" }

var errStop error = stopErr{}
