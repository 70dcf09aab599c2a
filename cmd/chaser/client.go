package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// The admin client: `chaser <resource> <verb> …` calls the admin API of a
// running Chaser, so common work needs no curl.
//
// Every client command reads --admin-url (default http://127.0.0.1:8081, or
// CHASER_ADMIN_URL) and the key from CHASER_API_KEY (an advertiser key),
// else CHASER_ADMIN_TOKEN, else the admin_token file of --data-dir (default
// ./data, or CHASER_DATA_DIR).

const clientUsage = `Admin client commands (talk to a running "chaser serve"):

  chaser advertisers list|get ID
  chaser advertisers create --name NAME [--domain shop.example] [--country 82]
  chaser keys create|list --advertiser ADV
  chaser keys revoke --advertiser ADV KEY_ID
  chaser campaigns list [--advertiser ADV] [--status active|paused]
  chaser campaigns get|pause|resume|delete ID
  chaser campaigns create -f campaign.json          ("-" reads stdin)
  chaser campaigns update ID -f patch.json          (a JSON merge patch)
  chaser audiences list [--advertiser ADV]
  chaser audiences get ID
  chaser audiences create --advertiser ADV --name NAME [--ttl-days N]   or  -f audience.json
  chaser audiences upload FILE --id AUD --type email|email_sha256|phone|phone_sha256|maid|uid [--remove]
  chaser products upload FILE --advertiser ADV      (.csv, or .jsonl/.ndjson)
  chaser products list --advertiser ADV
  chaser erase --type email --value someone@example.com [--country 82]

Common flags: --admin-url URL (default http://127.0.0.1:8081), --data-dir DIR (for
the admin_token file), -o table|json (lists). The key comes from CHASER_API_KEY,
CHASER_ADMIN_TOKEN or DATA_DIR/admin_token.
`

// clientCommands are the resources the client knows.
var clientCommands = map[string]bool{"advertisers": true, "keys": true, "campaigns": true, "audiences": true, "products": true, "erase": true}

// commandFlags are the flags of each command beyond the common ones.
var commandFlags = map[string][]string{
	"advertisers create": {"name", "domain", "country"},
	"keys create":        {"advertiser"},
	"keys list":          {"advertiser"},
	"keys revoke":        {"advertiser"},
	"campaigns list":     {"advertiser", "status"},
	"campaigns create":   {"f"},
	"campaigns update":   {"f"},
	"audiences list":     {"advertiser"},
	"audiences create":   {"advertiser", "name", "ttl-days", "f"},
	"audiences upload":   {"id", "type", "remove"},
	"products upload":    {"advertiser"},
	"products list":      {"advertiser"},
	"erase ":             {"type", "value", "country"},
}

// client is one admin client invocation.
type client struct {
	base           string
	key            string
	http           *http.Client
	stdout, stderr io.Writer
	output         string // table or json
}

// clientFlags are the flags every client command takes.
type clientFlags struct {
	adminURL, dataDir, output string
}

func (cf *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&cf.adminURL, "admin-url", envOr("CHASER_ADMIN_URL", "http://127.0.0.1:8081"), "admin API base URL")
	fs.StringVar(&cf.dataDir, "data-dir", envOr("CHASER_DATA_DIR", "./data"), "data directory holding the admin_token file")
	fs.StringVar(&cf.output, "o", "table", "list output: table or json")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (cf *clientFlags) client(stdout, stderr io.Writer) (*client, error) {
	u, err := url.Parse(cf.adminURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--admin-url %q: want http://host:port", cf.adminURL)
	}
	if cf.output != "table" && cf.output != "json" {
		return nil, fmt.Errorf("-o %q: want table or json", cf.output)
	}
	key := os.Getenv("CHASER_API_KEY")
	if key == "" {
		key = os.Getenv("CHASER_ADMIN_TOKEN")
	}
	if key == "" {
		path := filepath.Join(cf.dataDir, "admin_token")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("no API key: set CHASER_API_KEY or CHASER_ADMIN_TOKEN, or point --data-dir at the server's data directory (%v)", err)
		}
		key = strings.TrimSpace(string(b))
	}
	return &client{base: strings.TrimRight(cf.adminURL, "/"), key: key, http: &http.Client{},
		stdout: stdout, stderr: stderr, output: cf.output}, nil
}

// apiError is an error answer of the admin API.
type apiError struct {
	Method, Path string
	Status       int
	Msg, Field   string
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// call sends one request; a 2xx JSON answer is decoded into out (when not
// nil), anything else is an *apiError.
func (c *client) call(method, path, ctype string, body io.Reader, size int64, out any) error {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return err
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w (is chaser serve running? --admin-url %s)", method, path, err, c.base)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		ae := &apiError{Method: method, Path: path, Status: resp.StatusCode}
		var e struct{ Error, Field string }
		if json.Unmarshal(b, &e) == nil {
			ae.Msg, ae.Field = e.Error, e.Field
		} else {
			ae.Msg = strings.TrimSpace(string(b))
		}
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			ae.Msg += " (retry after " + ra + "s)"
		}
		return ae
	}
	if out != nil && len(b) > 0 {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = append((*raw)[:0], b...)
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// jsonBody encodes v for a request.
func jsonBody(v any) (io.Reader, int64) {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b), int64(len(b))
}

// printJSON pretty-prints a JSON answer.
func (c *client) printJSON(raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		_, err = c.stdout.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := c.stdout.Write(buf.Bytes())
	return err
}

// send calls and prints the answer.
func (c *client) send(method, path, ctype string, body io.Reader, size int64) error {
	var raw json.RawMessage
	if err := c.call(method, path, ctype, body, size, &raw); err != nil {
		return err
	}
	if len(raw) == 0 {
		fmt.Fprintf(c.stdout, "ok\n")
		return nil
	}
	return c.printJSON(raw)
}

// list fetches every page of a list endpoint and prints the items as a
// table (columns) or as one JSON array.
func (c *client) list(path, name string, q url.Values, columns ...string) error {
	var all []map[string]any
	for cursor := ""; ; {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		qq.Set("limit", "1000")
		if cursor != "" {
			qq.Set("cursor", cursor)
		}
		var page map[string]json.RawMessage
		if err := c.call("GET", path+"?"+qq.Encode(), "", nil, -1, &page); err != nil {
			return err
		}
		var items []map[string]any
		if err := json.Unmarshal(page[name], &items); err != nil {
			return fmt.Errorf("GET %s: decode %s: %w", path, name, err)
		}
		all = append(all, items...)
		var next string
		_ = json.Unmarshal(page["next_cursor"], &next)
		if next == "" || len(items) == 0 {
			break
		}
		cursor = next
	}
	if c.output == "json" {
		b, _ := json.Marshal(all)
		if all == nil {
			b = []byte("[]")
		}
		return c.printJSON(b)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(columns, "\t")))
	for _, it := range all {
		cells := make([]string, len(columns))
		for i, col := range columns {
			cells[i] = cell(it, col)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// cell renders item[col]; "a.b" reaches into objects.
func cell(item map[string]any, col string) string {
	var v any = item
	for _, part := range strings.Split(col, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[part]
	}
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	case []any:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = fmt.Sprint(e)
		}
		return strings.Join(s, ",")
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// parseArgs parses flags that may come before or after positional
// arguments ("upload FILE --id X" as well as "upload --id X FILE").
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// readBody opens -f FILE, or stdin for "-".
func readBody(file string, stdin io.Reader) ([]byte, error) {
	if file == "" {
		return nil, errors.New("-f FILE is required (a JSON file, or - for stdin)")
	}
	if file == "-" {
		return io.ReadAll(io.LimitReader(stdin, 1<<20))
	}
	return os.ReadFile(file)
}

// runClient runs one client command.
func runClient(resource string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	verb := ""
	if resource != "erase" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return fmt.Errorf("chaser %s: which action?\n\n%s", resource, clientUsage)
		}
		verb, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(strings.TrimSpace(resource+" "+verb), flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	var (
		file, advertiser, status, name, domain, country, id, idType, value string
		ttlDays                                                            int
		remove                                                             bool
	)
	strFlags := map[string]struct {
		p     *string
		usage string
	}{
		"f":          {&file, "JSON file (- for stdin)"},
		"advertiser": {&advertiser, "advertiser id"},
		"status":     {&status, "status filter: active or paused"},
		"name":       {&name, "name"},
		"domain":     {&domain, "advertiser domain, e.g. shop.example"},
		"country":    {&country, "calling code for national phone numbers, e.g. 82"},
		"id":         {&id, "audience id"},
		"type":       {&idType, "id type: email, email_sha256, phone, phone_sha256, maid, uid"},
		"value":      {&value, "the identifier"},
	}
	for _, f := range commandFlags[resource+" "+verb] {
		switch f {
		case "ttl-days":
			fs.IntVar(&ttlDays, f, 0, "days a member stays in the audience (0: forever)")
		case "remove":
			fs.BoolVar(&remove, f, false, "remove the listed members instead of adding them")
		default:
			fs.StringVar(strFlags[f].p, f, "", strFlags[f].usage)
		}
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	c, err := cf.client(stdout, stderr)
	if err != nil {
		return err
	}
	one := func(what string) (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("chaser %s %s: want one %s", resource, verb, what)
		}
		return url.PathEscape(pos[0]), nil
	}
	needAdv := func() (string, error) {
		if advertiser == "" {
			return "", fmt.Errorf("chaser %s %s: --advertiser is required", resource, verb)
		}
		return url.PathEscape(advertiser), nil
	}
	q := url.Values{}
	switch resource + " " + verb {
	case "advertisers list":
		return c.list("/v1/advertisers", "advertisers", q, "id", "name", "domain", "country", "created_at")
	case "advertisers get":
		adv, err := one("advertiser id")
		if err != nil {
			return err
		}
		return c.send("GET", "/v1/advertisers/"+adv, "", nil, -1)
	case "advertisers create":
		if name == "" {
			return errors.New("chaser advertisers create: --name is required")
		}
		body, n := jsonBody(map[string]string{"name": name, "domain": domain, "country": country})
		return c.send("POST", "/v1/advertisers", "application/json", body, n)

	case "keys create", "keys list", "keys revoke":
		adv, err := needAdv()
		if err != nil {
			return err
		}
		switch verb {
		case "create":
			return c.send("POST", "/v1/advertisers/"+adv+"/keys", "", nil, -1)
		case "list":
			return c.list("/v1/advertisers/"+adv+"/keys", "keys", q, "id", "created_at", "revoked_at")
		}
		kid, err := one("key id")
		if err != nil {
			return err
		}
		return c.send("DELETE", "/v1/advertisers/"+adv+"/keys/"+kid, "", nil, -1)

	case "campaigns list":
		if advertiser != "" {
			q.Set("advertiser_id", advertiser)
		}
		if status != "" {
			q.Set("status", status)
		}
		return c.list("/v1/campaigns", "campaigns", q, "id", "advertiser_id", "name", "status", "budget.daily", "bid.base_cpm", "targeting.audiences")
	case "campaigns get", "campaigns delete", "campaigns pause", "campaigns resume":
		cid, err := one("campaign id")
		if err != nil {
			return err
		}
		switch verb {
		case "get":
			return c.send("GET", "/v1/campaigns/"+cid, "", nil, -1)
		case "delete":
			return c.send("DELETE", "/v1/campaigns/"+cid, "", nil, -1)
		}
		st := map[string]string{"pause": "paused", "resume": "active"}[verb]
		body, n := jsonBody(map[string]string{"status": st})
		return c.send("PATCH", "/v1/campaigns/"+cid, "application/merge-patch+json", body, n)
	case "campaigns create":
		b, err := readBody(file, stdin)
		if err != nil {
			return err
		}
		return c.send("POST", "/v1/campaigns", "application/json", bytes.NewReader(b), int64(len(b)))
	case "campaigns update":
		cid, err := one("campaign id")
		if err != nil {
			return err
		}
		b, err := readBody(file, stdin)
		if err != nil {
			return err
		}
		return c.send("PATCH", "/v1/campaigns/"+cid, "application/merge-patch+json", bytes.NewReader(b), int64(len(b)))

	case "audiences list":
		if advertiser != "" {
			q.Set("advertiser_id", advertiser)
		}
		return c.list("/v1/audiences", "audiences", q, "id", "advertiser_id", "name", "type", "status", "size")
	case "audiences get":
		aid, err := one("audience id")
		if err != nil {
			return err
		}
		return c.send("GET", "/v1/audiences/"+aid, "", nil, -1)
	case "audiences create":
		if file != "" {
			b, err := readBody(file, stdin)
			if err != nil {
				return err
			}
			return c.send("POST", "/v1/audiences", "application/json", bytes.NewReader(b), int64(len(b)))
		}
		if name == "" {
			return errors.New("chaser audiences create: --name is required (or -f audience.json)")
		}
		body, n := jsonBody(map[string]any{"advertiser_id": advertiser, "name": name, "type": "list", "ttl_days": ttlDays})
		return c.send("POST", "/v1/audiences", "application/json", body, n)
	case "audiences upload":
		if len(pos) != 1 || id == "" {
			return errors.New("chaser audiences upload FILE --id AUD [--type T]: want a file and --id")
		}
		q.Set("id_type", idType)
		if idType == "" {
			q.Del("id_type") // the file's header row names its columns
		}
		method := "POST"
		if remove {
			method = "DELETE"
		}
		ctype := "text/csv"
		if strings.HasSuffix(pos[0], ".gz") {
			ctype = "application/gzip"
		}
		return c.upload(method, "/v1/audiences/"+url.PathEscape(id)+"/members?"+q.Encode(), ctype, pos[0])
	case "products upload", "products list":
		adv, err := needAdv()
		if err != nil {
			return err
		}
		if verb == "list" {
			return c.list("/v1/advertisers/"+adv+"/products", "products", q, "id", "title", "price_micros", "currency", "in_stock")
		}
		if len(pos) != 1 {
			return errors.New("chaser products upload FILE --advertiser ADV: want one file")
		}
		ctype := "text/csv"
		switch strings.ToLower(filepath.Ext(pos[0])) {
		case ".jsonl", ".ndjson", ".json":
			ctype = "application/x-ndjson"
		case ".csv", ".txt":
		default:
			return fmt.Errorf("%s: want a .csv or .jsonl file", pos[0])
		}
		return c.upload("PUT", "/v1/advertisers/"+adv+"/products", ctype, pos[0])

	case "erase ":
		if idType == "" || value == "" {
			return errors.New("chaser erase --type T --value V: both are required")
		}
		body, n := jsonBody(map[string]string{"type": idType, "value": value, "country": country})
		return c.send("POST", "/v1/privacy/erase", "application/json", body, n)
	}
	return fmt.Errorf("chaser %s: unknown action %q\n\n%s", resource, verb, clientUsage)
}

// upload sends a file with a progress bar on stderr.
func (c *client) upload(method, path, ctype, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pr := &progress{r: f, total: st.Size(), name: filepath.Base(file), w: c.stderr, every: 200 * time.Millisecond}
	var raw json.RawMessage
	err = c.call(method, path, ctype, pr, st.Size(), &raw)
	pr.finish(err == nil)
	if err != nil {
		return err
	}
	return c.printJSON(raw)
}

// progress reports bytes sent of a file on a terminal line.
type progress struct {
	r     io.Reader
	total int64
	name  string
	w     io.Writer
	every time.Duration

	mu        sync.Mutex
	sent      int64
	last      time.Time
	start     time.Time
	announced bool
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.start.IsZero() {
		p.start = time.Now()
	}
	p.sent += int64(n)
	if now := time.Now(); now.Sub(p.last) >= p.every || err == io.EOF {
		p.last = now
		p.draw()
		if err == io.EOF && !p.announced {
			p.announced = true
			fmt.Fprintf(p.w, "  sent, waiting for the server…")
		}
	}
	return n, err
}

// draw writes the bar; caller holds p.mu.
func (p *progress) draw() {
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.sent) / float64(p.total)
	}
	frac = min(max(frac, 0), 1)
	filled := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %s / %s %3.0f%%", p.name, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		humanBytes(p.sent), humanBytes(p.total), frac*100)
}

func (p *progress) finish(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.announced {
		p.draw()
	}
	took := time.Since(p.start).Round(time.Millisecond)
	if ok {
		fmt.Fprintf(p.w, "  done in %s\n", took)
	} else {
		fmt.Fprintf(p.w, "  failed after %s\n", took)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	f := float64(n) / unit
	i := 0
	for f >= unit && i < len(units)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
