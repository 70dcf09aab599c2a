package audience

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cockroachdb/pebble/v2"

	"github.com/chaser-dsp/chaser/store"
)

// Upload job states.
const (
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// maxJobsKept is how many job records an audience keeps.
const maxJobsKept = 50

// Job is one upload (or removal) into a list audience. Its record
// "auj/<audience>/<job>" is written when it starts, updated in the same
// Pebble batch as each batch of members it writes (so its counts always
// match what is in the store), and marked done or failed at the end. A job a
// crash left running is marked failed at the next start, with the rows it
// had applied.
type Job struct {
	ID         string     `json:"id"`
	AudienceID string     `json:"audience_id"`
	State      string     `json:"state"`
	Error      string     `json:"error,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	UploadStats
}

// jobState is a running job's progress as others see it.
type jobState struct {
	mu  sync.Mutex
	job Job
}

func (j *jobState) snapshot() Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.job.clone()
}

func (j *jobState) publish(job *Job) {
	c := job.clone()
	j.mu.Lock()
	j.job = c
	j.mu.Unlock()
}

func (j Job) clone() Job {
	j.Errors = append([]RowError(nil), j.Errors...)
	j.Columns = append([]string(nil), j.Columns...)
	j.Ignored = append([]string(nil), j.Ignored...)
	return j
}

var (
	jobsStarted  = metrics.NewCounter(`chaser_audience_upload_jobs_total{state="started"}`)
	jobsDone     = metrics.NewCounter(`chaser_audience_upload_jobs_total{state="done"}`)
	jobsFailed   = metrics.NewCounter(`chaser_audience_upload_jobs_total{state="failed"}`)
	jobsRecovery = metrics.NewCounter(`chaser_audience_upload_jobs_total{state="interrupted"}`)
)

func jobPrefix(audID string) []byte { return []byte(store.PrefixAudienceJob + audID + "/") }

func jobKey(audID, jobID string) []byte {
	return []byte(store.PrefixAudienceJob + audID + "/" + jobID)
}

// newJobID returns an id that sorts by start time.
func newJobID(t time.Time) string {
	var r [3]byte
	_, _ = rand.Read(r[:])
	return "upl_" + fmt.Sprintf("%016x", uint64(t.UnixNano())) + hex.EncodeToString(r[:])
}

func putJob(b *pebble.Batch, j *Job) error {
	v, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return b.Set(jobKey(j.AudienceID, j.ID), v, nil)
}

// recoverJobs marks the jobs a crash or kill left running as failed, with
// the counts of their last committed batch, and the audiences they ran in
// as failed (or ready when the job had applied nothing).
func (m *Manager) recoverJobs() error {
	var stale []Job
	err := store.Scan(m.db, []byte(store.PrefixAudienceJob), func(_, v []byte) error {
		var j Job
		if err := json.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("decode upload job: %w", err)
		}
		if j.State == JobRunning {
			stale = append(stale, j)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audience: load upload jobs: %w", err)
	}
	if len(stale) == 0 {
		return nil
	}
	b := m.db.NewBatch()
	defer b.Close()
	now := m.now().UTC()
	for i := range stale {
		j := &stale[i]
		j.State = JobFailed
		j.Error = "interrupted: the server stopped during the upload after applying " +
			strconv.FormatInt(j.Applied, 10) + " ids of " + strconv.FormatInt(j.RowsRead, 10) + " rows read; upload again to finish"
		j.FinishedAt, j.UpdatedAt = &now, now
		if err := putJob(b, j); err != nil {
			return err
		}
		a := m.auds[j.AudienceID]
		if a == nil {
			continue
		}
		if a.Upload == nil || a.Upload.ID == j.ID || a.Upload.StartedAt.Before(j.StartedAt) {
			jc := j.clone()
			a.Upload = &jc
			a.Status = StatusReady
			if j.Applied > 0 {
				a.Status = StatusFailed
			}
			v, err := json.Marshal(a)
			if err != nil {
				return err
			}
			_ = b.Set(audKey(a.ID), v, nil)
		}
		jobsRecovery.Inc()
		m.log.Warn("audience upload job was interrupted", "audience", j.AudienceID, "job", j.ID,
			"rows_read", j.RowsRead, "applied", j.Applied)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("audience: mark interrupted jobs: %w", err)
	}
	return nil
}

// Jobs returns an audience's upload jobs, newest first, with the running
// one's live progress.
func (m *Manager) Jobs(audID string) ([]Job, error) {
	st := m.state(audID)
	if st == nil {
		return nil, ErrNotFound
	}
	var out []Job
	err := store.Scan(m.db, jobPrefix(audID), func(_, v []byte) error {
		var j Job
		if err := json.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("decode upload job: %w", err)
		}
		out = append(out, j)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if js := st.job.Load(); js != nil {
		live := js.snapshot()
		for i := range out {
			if out[i].ID == live.ID {
				out[i] = live
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// pruneJobs deletes (in b) all but the newest maxJobsKept-1 job records of an
// audience, making room for a new one.
func (m *Manager) pruneJobs(b *pebble.Batch, audID string) error {
	var keys [][]byte
	if err := store.Scan(m.db, jobPrefix(audID), func(k, _ []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		return nil
	}); err != nil {
		return err
	}
	for i := 0; i+maxJobsKept-1 < len(keys); i++ {
		_ = b.Delete(keys[i], nil)
	}
	return nil
}
