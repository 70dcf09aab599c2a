package loadtest

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PrepareConfig describes the realistic mix [Prepare] sets up on a running
// Chaser through its admin API: list audiences of synthetic uids (with the
// generator's known users spread across them) and running campaigns that
// target them, with budgets no load run exhausts. Start from
// [DefaultPrepareConfig].
type PrepareConfig struct {
	// Admin is the admin API's base URL. Default "http://127.0.0.1:18081"
	// (the admin port of scripts/loadtest-demo.sh).
	Admin string
	// Token is the admin key (Authorization: Bearer). Required.
	Token string
	// Advertiser owns the audiences and campaigns; it must exist and have a
	// product feed. Default "adv_demo", which `chaser serve --demo` seeds.
	Advertiser string
	// Audiences is the number of list audiences, named lt-aud-00, lt-aud-01
	// …. Default 50.
	Audiences int
	// Members is each audience's size, in uids. Default 1 000 000.
	Members int
	// Campaigns is the number of running campaigns, named lt-cmp-00 ….
	// Default 20.
	Campaigns int
	// KnownPrefix and KnownCount name the users the generator sends as
	// known (Traffic.KnownPrefix, Traffic.KnownCount): each of them is a
	// member of KnownPerUser audiences. Defaults "demo-user-", 100.
	KnownPrefix string
	KnownCount  int
	// KnownPerUser is how many audiences each known user is in (at most
	// Audiences). Default 3.
	KnownPerUser int
	// Parallel is how many uploads run at once. Default 2.
	Parallel int
	// Gzip sends member lists gzip-compressed (application/gzip) instead of
	// plain text/csv with a Content-Length. Default false.
	Gzip bool
	// PauseOthers pauses the advertiser's active campaigns that are not
	// part of the mix (the demo's "Demo retargeting", whose higher CPM would
	// win most auctions until its small budget ran out mid-run), so that a
	// run measures the mix and only the mix. Default true.
	PauseOthers bool
	// DailyBudget and TotalBudget are each campaign's budgets, currency
	// units: large enough that a 60 s run at 30 k qps without notices (every
	// bid reserved) cannot exhaust them, and that even pacing's target
	// spend stays above what the run can buy. Defaults 1e6 and 1e7.
	DailyBudget, TotalBudget float64
	// Progress receives a progress line every ProgressEvery while uploads
	// run. Default nil (none).
	Progress      io.Writer
	ProgressEvery time.Duration // default 2s
	// Client sends the admin requests. Default a client without a timeout
	// (an upload of 1 M members takes seconds to minutes).
	Client *http.Client
}

// DefaultPrepareConfig returns the documented defaults (no token).
func DefaultPrepareConfig() PrepareConfig {
	return PrepareConfig{
		Admin:         "http://127.0.0.1:18081",
		Advertiser:    "adv_demo",
		Audiences:     50,
		Members:       1_000_000,
		Campaigns:     20,
		KnownPrefix:   "demo-user-",
		KnownCount:    100,
		KnownPerUser:  3,
		Parallel:      2,
		PauseOthers:   true,
		DailyBudget:   1e6,
		TotalBudget:   1e7,
		ProgressEvery: 2 * time.Second,
	}
}

// Validate reports the first setting that makes no sense, naming it.
func (c *PrepareConfig) Validate() error {
	u, err := url.Parse(c.Admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("loadtest: admin URL %q: want http://host:port", c.Admin)
	}
	switch {
	case c.Token == "":
		return errors.New("loadtest: prepare needs the admin token (--admin-token or CHASER_ADMIN_TOKEN)")
	case c.Advertiser == "":
		return errors.New("loadtest: prepare needs an advertiser")
	case c.Audiences < 1 || c.Audiences > 1000:
		return fmt.Errorf("loadtest: prepare audiences must be 1 to 1000, got %d", c.Audiences)
	case c.Campaigns < 1 || c.Campaigns > 1000:
		return fmt.Errorf("loadtest: prepare campaigns must be 1 to 1000, got %d", c.Campaigns)
	case c.KnownCount < 0 || c.KnownPerUser < 1:
		return errors.New("loadtest: prepare known count must not be negative and known per user at least 1")
	case c.KnownCount > 0 && c.KnownPrefix == "":
		return errors.New("loadtest: prepare known users need a prefix")
	case c.Parallel < 1:
		return fmt.Errorf("loadtest: prepare parallel uploads must be at least 1, got %d", c.Parallel)
	case !(c.DailyBudget > 0) || !(c.TotalBudget >= c.DailyBudget) || c.TotalBudget > 1e9:
		return fmt.Errorf("loadtest: prepare budgets: want 0 < daily ≤ total ≤ 1e9, got %v and %v", c.DailyBudget, c.TotalBudget)
	}
	// Each audience holds its known users plus synthetic ones up to Members.
	for a := range c.Audiences {
		if k := len(c.knownIn(a)); c.Members < k || c.Members < 1 {
			return fmt.Errorf("loadtest: prepare members (%d) must be at least 1 and hold the %d known users of audience %d", c.Members, k, a)
		}
	}
	return nil
}

// PrepareReport says what Prepare found and did. Its JSON form is what
// --prepare --json prints.
type PrepareReport struct {
	Admin      string `json:"admin"`
	Advertiser string `json:"advertiser"`
	// AlreadyPrepared is true when every audience was full, every campaign
	// existed and none had to be paused: nothing was changed.
	AlreadyPrepared bool               `json:"already_prepared"`
	Audiences       []PreparedAudience `json:"audiences"`
	Campaigns       []PreparedCampaign `json:"campaigns"`
	// Paused are the campaigns outside the mix that this run paused
	// (PauseOthers).
	Paused []string `json:"paused,omitempty"`
	// Members is the sum of the audiences' sizes.
	Members int64 `json:"members"`
	// UploadS is the wall time of the uploads, ElapsedS of the whole step.
	UploadS  float64 `json:"upload_s"`
	ElapsedS float64 `json:"elapsed_s"`
}

// PreparedAudience is one list audience of the mix.
type PreparedAudience struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	Known   int    `json:"known_users"`
	Created bool   `json:"created"`
	// Uploaded is true when members were sent in this run; UploadS is how
	// long the upload took.
	Uploaded bool    `json:"uploaded"`
	UploadS  float64 `json:"upload_s,omitempty"`
}

// PreparedCampaign is one campaign of the mix.
type PreparedCampaign struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Created   bool     `json:"created"`
	Audiences []string `json:"audiences"`
	Pacing    string   `json:"pacing"`
	BaseCPM   float64  `json:"base_cpm"`
	MaxCPM    float64  `json:"max_cpm"`
	Sizes     []string `json:"sizes"`
	Native    bool     `json:"native"`
}

// Prepare sets up the mix PrepareConfig describes, reusing what a previous
// run made: audiences and campaigns are found by name, a full audience is
// not uploaded again (an audience short of members is: uploads are
// idempotent), an existing campaign is left as it is. Any admin API error
// stops it, as an *AdminError.
func Prepare(ctx context.Context, cfg PrepareConfig) (*PrepareReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 2 * time.Second
	}
	c := &adminClient{base: strings.TrimRight(cfg.Admin, "/"), token: cfg.Token, http: cfg.Client}
	if c.http == nil {
		c.http = &http.Client{}
	}
	start := time.Now()
	rep := &PrepareReport{Admin: c.base, Advertiser: cfg.Advertiser}
	adv := url.PathEscape(cfg.Advertiser)
	if err := c.call(ctx, http.MethodGet, "/v1/advertisers/"+adv, "", nil, -1, nil); err != nil {
		return nil, fmt.Errorf("advertiser %s (start the server with --demo, or name another with its product feed): %w", cfg.Advertiser, err)
	}

	// Audiences: find by name, create what is missing.
	var existing []adminAudience
	if err := listAll(ctx, c, "/v1/audiences?advertiser_id="+url.QueryEscape(cfg.Advertiser), "audiences", &existing); err != nil {
		return nil, err
	}
	byName := map[string]adminAudience{}
	for _, a := range existing {
		byName[a.Name] = a
	}
	var todo []int // audiences to upload
	rep.Audiences = make([]PreparedAudience, cfg.Audiences)
	for i := range cfg.Audiences {
		pa := &rep.Audiences[i]
		pa.Name, pa.Known = audienceName(i), len(cfg.knownIn(i))
		a, ok := byName[pa.Name]
		if !ok {
			b, _ := json.Marshal(map[string]string{"advertiser_id": cfg.Advertiser, "name": pa.Name, "type": "list"})
			body := string(b)
			if err := c.call(ctx, http.MethodPost, "/v1/audiences", "application/json", strings.NewReader(body), int64(len(body)), &a); err != nil {
				return nil, fmt.Errorf("create audience %s: %w", pa.Name, err)
			}
			pa.Created = true
		}
		pa.ID, pa.Size = a.ID, a.Size
		switch {
		case a.Type != "list":
			return nil, fmt.Errorf("audience %s (%s) is of type %q, not list: prepare a fresh data directory", pa.Name, a.ID, a.Type)
		case a.Size > int64(cfg.Members):
			return nil, fmt.Errorf("audience %s (%s) has %d members, more than %d: prepare a fresh data directory or pass the same size", pa.Name, a.ID, a.Size, cfg.Members)
		case a.Size < int64(cfg.Members) || a.Status != "ready":
			todo = append(todo, i)
		}
	}

	upStart := time.Now()
	if err := prepareUploads(ctx, c, &cfg, rep, todo); err != nil {
		return nil, err
	}
	if len(todo) > 0 {
		rep.UploadS = time.Since(upStart).Seconds()
	}
	for i := range rep.Audiences {
		rep.Members += rep.Audiences[i].Size
	}

	// Campaigns: find by name, create what is missing.
	var camps []struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	if err := listAll(ctx, c, "/v1/campaigns?advertiser_id="+url.QueryEscape(cfg.Advertiser), "campaigns", &camps); err != nil {
		return nil, err
	}
	campByName := map[string]string{}
	mine := map[string]bool{}
	for i := range cfg.Campaigns {
		mine[campaignName(i)] = true
	}
	for _, k := range camps {
		campByName[k.Name] = k.ID
		if cfg.PauseOthers && !mine[k.Name] && k.Status == "active" {
			body := `{"status":"paused"}`
			if err := c.call(ctx, http.MethodPatch, "/v1/campaigns/"+url.PathEscape(k.ID), "application/merge-patch+json",
				strings.NewReader(body), int64(len(body)), nil); err != nil {
				return nil, fmt.Errorf("pause campaign %s (%s): %w", k.Name, k.ID, err)
			}
			rep.Paused = append(rep.Paused, k.ID)
		}
	}
	created := len(rep.Paused) > 0
	for i := range cfg.Campaigns {
		pc := cfg.campaignPlan(i, rep.Audiences)
		if id, ok := campByName[pc.Name]; ok {
			pc.ID = id
		} else {
			body := pc.body(&cfg)
			var out struct {
				ID string `json:"id"`
			}
			if err := c.call(ctx, http.MethodPost, "/v1/campaigns", "application/json", strings.NewReader(body), int64(len(body)), &out); err != nil {
				return nil, fmt.Errorf("create campaign %s: %w", pc.Name, err)
			}
			pc.ID, pc.Created, created = out.ID, true, true
		}
		rep.Campaigns = append(rep.Campaigns, pc)
	}
	rep.AlreadyPrepared = len(todo) == 0 && !created
	for _, a := range rep.Audiences {
		rep.AlreadyPrepared = rep.AlreadyPrepared && !a.Created
	}
	rep.ElapsedS = time.Since(start).Seconds()
	return rep, nil
}

// WriteText prints what Prepare created and found, and the time it took.
func (r *PrepareReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "prepare: advertiser %s on %s\n", r.Advertiser, r.Admin)
	if r.AlreadyPrepared {
		b.WriteString("already prepared: every audience is full and every campaign exists; nothing done\n")
	}
	nc, nu := 0, 0
	for _, a := range r.Audiences {
		nc += btoi(a.Created)
		nu += btoi(a.Uploaded)
	}
	fmt.Fprintf(&b, "audiences: %d (%d created, %d uploaded), %d members in all, uploads %.1f s\n", len(r.Audiences), nc, nu, r.Members, r.UploadS)
	for _, a := range r.Audiences {
		fmt.Fprintf(&b, "  %-10s %s  %9d members (%d known users)", a.Name, a.ID, a.Size, a.Known)
		if a.Uploaded {
			fmt.Fprintf(&b, "  uploaded in %.1f s", a.UploadS)
		}
		b.WriteByte('\n')
	}
	nc = 0
	for _, c := range r.Campaigns {
		nc += btoi(c.Created)
	}
	fmt.Fprintf(&b, "campaigns: %d (%d created)", len(r.Campaigns), nc)
	if len(r.Paused) > 0 {
		fmt.Fprintf(&b, "; paused the advertiser's other campaigns %s", strings.Join(r.Paused, ","))
	}
	b.WriteByte('\n')
	for _, c := range r.Campaigns {
		fmt.Fprintf(&b, "  %-10s %s  %-5s CPM %.2f–%.2f  audiences %s  sizes %s", c.Name, c.ID, c.Pacing, c.BaseCPM, c.MaxCPM,
			strings.Join(c.Audiences, ","), strings.Join(c.Sizes, ","))
		if c.Native {
			b.WriteString(" +native")
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "took %.1f s\n", r.ElapsedS)
	_, err := io.WriteString(w, b.String())
	return err
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func audienceName(i int) string { return fmt.Sprintf("lt-aud-%02d", i) }
func campaignName(i int) string { return fmt.Sprintf("lt-cmp-%02d", i) }

// knownIn returns the known users (1-based numbers) in audience a: user k
// is in audiences (k-1 + j×step) mod Audiences for j < KnownPerUser, with
// step = Audiences / KnownPerUser, so each is in KnownPerUser distinct
// audiences spread over the range.
func (c *PrepareConfig) knownIn(a int) []int {
	per := min(c.KnownPerUser, c.Audiences)
	step := max(1, c.Audiences/per)
	var users []int
	for k := 1; k <= c.KnownCount; k++ {
		for j := range per {
			if (k-1+j*step)%c.Audiences == a {
				users = append(users, k)
				break
			}
		}
	}
	return users
}

// writeMembers writes audience a's members, one uid a line: its known users,
// then synthetic uids lt-aNN-1 … up to Members lines. It returns the bytes
// written.
func (c *PrepareConfig) writeMembers(w io.Writer, a int) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var n int64
	line := make([]byte, 0, 64)
	known := c.knownIn(a)
	for _, k := range known {
		line = append(strconv.AppendInt(append(line[:0], c.KnownPrefix...), int64(k), 10), '\n')
		m, err := bw.Write(line)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	prefix := fmt.Appendf(nil, "lt-a%02d-", a)
	for i := 1; i <= c.Members-len(known); i++ {
		line = append(strconv.AppendInt(append(line[:0], prefix...), int64(i), 10), '\n')
		m, err := bw.Write(line)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

// countWriter counts what is written to it and keeps nothing.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// prepareUploads uploads the members of the audiences todo, cfg.Parallel at
// a time, printing progress; the first error stops the rest.
func prepareUploads(ctx context.Context, c *adminClient, cfg *PrepareConfig, rep *PrepareReport, todo []int) error {
	if len(todo) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next     atomic.Int64
		done     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		running  = map[int]bool{} // audiences being uploaded
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel(err)
		}
		mu.Unlock()
	}
	for range min(cfg.Parallel, len(todo)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= len(todo) {
					return
				}
				a := todo[k]
				mu.Lock()
				running[a] = true
				mu.Unlock()
				t0 := time.Now()
				size, err := uploadMembers(ctx, c, cfg, rep.Audiences[a].ID, a)
				mu.Lock()
				delete(running, a)
				mu.Unlock()
				if err != nil {
					fail(fmt.Errorf("upload %s (%s): %w", rep.Audiences[a].Name, rep.Audiences[a].ID, err))
					return
				}
				pa := &rep.Audiences[a]
				pa.Size, pa.Uploaded, pa.UploadS = size, true, time.Since(t0).Seconds()
				done.Add(1)
			}
		})
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.Progress == nil {
			return
		}
		t0 := time.Now()
		tick := time.NewTicker(cfg.ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
			}
			mu.Lock()
			ids := make([]int, 0, len(running))
			for a := range running {
				ids = append(ids, a)
			}
			mu.Unlock()
			slices.Sort(ids)
			var parts []string
			for _, a := range ids {
				parts = append(parts, uploadProgress(ctx, c, rep.Audiences[a], cfg.Members))
			}
			fmt.Fprintf(cfg.Progress, "prepare: %3.0fs  uploaded %d/%d audiences  running: %s\n",
				time.Since(t0).Seconds(), done.Load(), len(todo), strings.Join(parts, ", "))
		}
	}()
	wg.Wait()
	close(stopProgress)
	<-progressDone
	return firstErr
}

// uploadProgress polls a running upload job's status (GET
// /v1/audiences/{id}) and describes it.
func uploadProgress(ctx context.Context, c *adminClient, pa PreparedAudience, members int) string {
	var au struct {
		Upload *struct {
			State    string `json:"state"`
			RowsRead int64  `json:"rows_read"`
		} `json:"upload"`
	}
	if err := c.call(ctx, http.MethodGet, "/v1/audiences/"+url.PathEscape(pa.ID), "", nil, -1, &au); err != nil || au.Upload == nil {
		return pa.Name + " (status unknown)"
	}
	if au.Upload.State != "running" {
		return pa.Name + " starting"
	}
	return fmt.Sprintf("%s %d k/%d k rows", pa.Name, au.Upload.RowsRead/1000, members/1000)
}

// uploadMembers streams audience a's members to POST
// /v1/audiences/{id}/members?id_type=uid through a pipe (the list is never
// held in memory), waits for the job's answer, and checks with GET
// /v1/audiences/{id} that the audience is ready and full. It returns the
// audience's size.
func uploadMembers(ctx context.Context, c *adminClient, cfg *PrepareConfig, id string, a int) (int64, error) {
	length, ctype := int64(-1), "text/csv"
	if cfg.Gzip {
		ctype = "application/gzip"
	} else {
		var cw countWriter
		if _, err := cfg.writeMembers(&cw, a); err != nil {
			return 0, err
		}
		length = cw.n
	}
	pr, pw := io.Pipe()
	writeDone := make(chan struct{})
	go func() {
		defer close(writeDone)
		var w io.Writer = pw
		var zw *gzip.Writer
		if cfg.Gzip {
			zw, _ = gzip.NewWriterLevel(pw, gzip.BestSpeed)
			w = zw
		}
		_, err := cfg.writeMembers(w, a)
		if err == nil && zw != nil {
			err = zw.Close()
		}
		pw.CloseWithError(err) // nil: EOF
	}()
	var job struct {
		State   string `json:"state"`
		Error   string `json:"error"`
		Valid   int64  `json:"valid"`
		Invalid int64  `json:"invalid"`
	}
	err := c.call(ctx, http.MethodPost, "/v1/audiences/"+url.PathEscape(id)+"/members?id_type=uid", ctype, pr, length, &job)
	pr.CloseWithError(errors.New("upload answered")) // unblock the writer if the server stopped reading
	<-writeDone
	if err != nil {
		return 0, err
	}
	if job.State != "done" || job.Invalid != 0 || job.Valid != int64(cfg.Members) {
		return 0, fmt.Errorf("upload job %s (%s): %d valid, %d invalid rows of %d", job.State, job.Error, job.Valid, job.Invalid, cfg.Members)
	}
	var au adminAudience
	if err := c.call(ctx, http.MethodGet, "/v1/audiences/"+url.PathEscape(id), "", nil, -1, &au); err != nil {
		return 0, err
	}
	if au.Status != "ready" || au.Size != int64(cfg.Members) {
		return au.Size, fmt.Errorf("after the upload the audience is %s with %d members, want ready with %d", au.Status, au.Size, cfg.Members)
	}
	return au.Size, nil
}

// adminAudience is the part of the admin API's Audience that Prepare reads.
type adminAudience struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Status string `json:"status"`
	Size   int64  `json:"size"`
}

// campaignPlan is campaign i of the mix: audiences taken in turn (2 or 3
// each, so 20 campaigns cover 50 audiences), banner sizes the generator
// sends (every third campaign also native), base CPM from 0.40 up in steps
// of 0.10 around the generator's floors (median 0.5) and competition
// (median 1.0), max CPM 3× base, asap and even pacing alternating.
func (c *PrepareConfig) campaignPlan(i int, auds []PreparedAudience) PreparedCampaign {
	n := min(2+(i+1)%2, len(auds)) // 3, 2, 3, 2 …
	first := 0
	for j := range i {
		first += 2 + (j+1)%2
	}
	pc := PreparedCampaign{Name: campaignName(i), Pacing: "asap", Native: i%3 == 2}
	seen := map[string]bool{}
	for j := range n {
		id := auds[(first+j)%len(auds)].ID
		if !seen[id] {
			seen[id] = true
			pc.Audiences = append(pc.Audiences, id)
		}
	}
	if i%2 == 1 {
		pc.Pacing = "even"
	}
	pc.BaseCPM = float64(40+10*(i%20)) / 100
	pc.MaxCPM = float64(3*(40+10*(i%20))) / 100
	pc.Sizes = prepSizeSets[i%len(prepSizeSets)]
	return pc
}

// prepSizeSets are banner sizes chaser-load sends (siteSlots, mobileSlots,
// interstitialSlot), in overlapping sets.
var prepSizeSets = [][]string{
	{"300x250", "728x90", "320x50", "300x600", "160x600", "320x480"},
	{"300x250", "320x50"},
	{"728x90", "300x600", "160x600"},
	{"300x250", "300x600", "320x480"},
}

// body is the POST /v1/campaigns body of the plan.
func (pc *PreparedCampaign) body(cfg *PrepareConfig) string {
	type budget struct {
		Daily float64 `json:"daily"`
		Total float64 `json:"total"`
	}
	type bid struct {
		Base float64 `json:"base_cpm"`
		Max  float64 `json:"max_cpm"`
	}
	type targeting struct {
		Audiences []string `json:"audiences"`
	}
	type creative struct {
		Sizes  []string `json:"sizes"`
		Native bool     `json:"native"`
		Offer  string   `json:"offer"`
	}
	b, _ := json.Marshal(struct {
		Advertiser string    `json:"advertiser_id"`
		Name       string    `json:"name"`
		Status     string    `json:"status"`
		Currency   string    `json:"currency"`
		Pacing     string    `json:"pacing"`
		Budget     budget    `json:"budget"`
		Bid        bid       `json:"bid"`
		Targeting  targeting `json:"targeting"`
		Creative   creative  `json:"creative"`
	}{cfg.Advertiser, pc.Name, "active", "USD", pc.Pacing, budget{cfg.DailyBudget, cfg.TotalBudget},
		bid{pc.BaseCPM, pc.MaxCPM}, targeting{pc.Audiences}, creative{pc.Sizes, pc.Native, "Load test offer"}})
	return string(b)
}
