package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds cmd/chaser once for the tests that run the real program.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func chaserBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chaser-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "chaser")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running chaser process.
type proc struct {
	cmd              *exec.Cmd
	bidURL, adminURL string
	log              *bytes.Buffer
}

const crashToken = "crash-test-admin-token-000000"

func startProc(t *testing.T, bin, dir, bidAddr, adminAddr string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--demo", "--data-dir", dir, "--bid-addr", bidAddr, "--admin-addr", adminAddr)
	cmd.Env = append(os.Environ(), "CHASER_SECRET=crash-test-secret-0123456789abcdef", "CHASER_ADMIN_TOKEN="+crashToken)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, bidURL: "http://" + bidAddr, adminURL: "http://" + adminAddr, log: &log}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get(p.bidURL + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatalf("chaser did not become healthy: %s", log.String())
	return nil
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

func (p *proc) adminGet(t *testing.T, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", p.adminURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+crashToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// TestCrashSafety runs the real binary under bids and win notices, kills it
// with SIGKILL at random points several times, restarts it on the same data
// dir, and checks the books: recorded spend equals the sum of the win
// notices it accepted (notices whose answer was lost in a crash are sent
// again, as exchanges retry, and must count once), no campaign is over
// budget, and no audience member is lost.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	bin := chaserBinary(t)
	dir := t.TempDir()
	bidAddr, adminAddr := freeAddr(t), freeAddr(t)
	rng := rand.New(rand.NewPCG(1, 2))
	client := &http.Client{Timeout: 5 * time.Second}

	var (
		mu       sync.Mutex
		accepted = map[string]int64{} // notice URL → micros, answered 204
		unsure   = map[string]int64{} // notice URL → micros, answer lost
		seq      int
	)
	sendNotice := func(u string, micros int64) {
		resp, err := client.Get(u)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			unsure[u] = micros
			return
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case 204:
			accepted[u] = micros
			delete(unsure, u)
		case 503:
			unsure[u] = micros
		default:
			delete(unsure, u)
		}
	}
	const rounds = 4
	for round := 0; round < rounds; round++ {
		p := startProc(t, bin, dir, bidAddr, adminAddr)
		// Exchanges retry notices whose answer they never got.
		mu.Lock()
		retry := make(map[string]int64, len(unsure))
		for u, m := range unsure {
			retry[u] = m
		}
		mu.Unlock()
		for u, m := range retry {
			sendNotice(u, m)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					seq++
					n := seq
					mu.Unlock()
					id := fmt.Sprintf("crash-%d-%d", round, n)
					body := fmt.Sprintf(`{"id":%q,"imp":[{"id":"1","banner":{"w":300,"h":250}}],"user":{"buyeruid":"demo-user-%d"}}`, id, n%100+1)
					resp, err := client.Post(p.bidURL+"/openrtb2/bid", "application/json", strings.NewReader(body))
					if err != nil {
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						continue
					}
					var br struct {
						SeatBid []struct {
							Bid []struct {
								Price float64 `json:"price"`
								NURL  string  `json:"nurl"`
							} `json:"bid"`
						} `json:"seatbid"`
					}
					if json.Unmarshal(b, &br) != nil || len(br.SeatBid) == 0 {
						continue
					}
					bid := br.SeatBid[0].Bid[0]
					price := bid.Price * 0.8 // second price below the bid
					micros := int64(price*1e6+0.5) / 1000
					sendNotice(strings.Replace(bid.NURL, "${AUCTION_PRICE}", fmt.Sprintf("%.6f", price), 1), micros)
				}
			}(w)
		}
		time.Sleep(time.Duration(150+rng.IntN(450)) * time.Millisecond)
		p.kill()
		close(stop)
		wg.Wait()
	}
	// Final start: settle what is unsure, then check the books.
	p := startProc(t, bin, dir, bidAddr, adminAddr)
	defer p.kill()
	mu.Lock()
	retry := unsure
	unsure = map[string]int64{}
	mu.Unlock()
	for u, m := range retry {
		sendNotice(u, m)
	}
	if len(unsure) != 0 {
		t.Fatalf("%d notices still unanswered after restart", len(unsure))
	}
	var want int64
	for _, m := range accepted {
		want += m
	}
	if len(accepted) < 10 {
		t.Fatalf("only %d notices accepted: the load did not run", len(accepted))
	}
	var list struct {
		Campaigns []struct {
			ID     string `json:"id"`
			Budget struct {
				Daily float64 `json:"daily"`
				Total float64 `json:"total"`
			} `json:"budget"`
		} `json:"campaigns"`
	}
	p.adminGet(t, "/v1/campaigns", &list)
	var c struct {
		SpendToday float64 `json:"spend_today"`
		SpendTotal float64 `json:"spend_total"`
	}
	p.adminGet(t, "/v1/campaigns/"+list.Campaigns[0].ID, &c)
	got := int64(c.SpendTotal*1e6 + 0.5)
	if got != want {
		t.Fatalf("recorded spend %d micros, accepted win notices sum to %d (%d notices)", got, want, len(accepted))
	}
	if c.SpendTotal > list.Campaigns[0].Budget.Total || c.SpendToday > list.Campaigns[0].Budget.Daily {
		t.Fatalf("over budget: %+v vs %+v", c, list.Campaigns[0].Budget)
	}
	var auds struct {
		Audiences []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Size int64  `json:"size"`
		} `json:"audiences"`
	}
	p.adminGet(t, "/v1/audiences", &auds)
	// The demo's list audience of 100, and its cart-abandoner rule audience
	// (every third user), rebuilt from the profiles at each start.
	if len(auds.Audiences) != 2 {
		t.Fatalf("demo audiences after crashes: %+v (want a list of 100 and a rule of 33)", auds.Audiences)
	}
	listID := ""
	for _, a := range auds.Audiences {
		if (a.Type == "list" && a.Size != 100) || (a.Type == "rule" && a.Size != 33) {
			t.Fatalf("demo audiences after crashes: %+v (want a list of 100 and a rule of 33)", auds.Audiences)
		}
		if a.Type == "list" {
			listID = a.ID
		}
	}
	// Membership, asked directly: bidding would also answer 204 for users the
	// load above took to the demo campaign's frequency cap.
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf(`{"type":"uid","value":"demo-user-%d"}`, i+1)
	}
	req, _ := http.NewRequest("POST", p.adminURL+"/v1/audiences/"+listID+"/contains",
		strings.NewReader(`{"ids":[`+strings.Join(ids, ",")+`]}`))
	req.Header.Set("Authorization", "Bearer "+crashToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var member struct {
		Results []bool `json:"results"`
	}
	err = json.NewDecoder(resp.Body).Decode(&member)
	resp.Body.Close()
	if err != nil || len(member.Results) != 100 {
		t.Fatalf("contains: %v %+v", err, member)
	}
	for i, in := range member.Results {
		if !in {
			t.Fatalf("demo-user-%d lost after crashes", i+1)
		}
	}
	// And a member still gets a bid, or is held back by the frequency cap
	// the load took it to (which survived the crashes too).
	capped := func() string {
		req, _ := http.NewRequest("GET", p.adminURL+"/metrics", nil)
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, `chaser_nobid_total{reason="frequency_cap"} `) {
				return line
			}
		}
		return ""
	}
	before := capped()
	body := `{"id":"check-1","imp":[{"id":"1","banner":{"w":300,"h":250}}],"user":{"buyeruid":"demo-user-1"}}`
	r, err := client.Post(p.bidURL+"/openrtb2/bid", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 && (r.StatusCode != 204 || capped() == before) {
		t.Fatalf("bid for a member after crashes: status %d, frequency cap no-bids %q → %q", r.StatusCode, before, capped())
	}
	t.Logf("%d rounds, %d notices accepted, spend %d micros", rounds, len(accepted), got)
}
