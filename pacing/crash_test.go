package pacing

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chaser-dsp/chaser/campaign"
)

const crashDirEnv = "CHASER_PACING_CRASH_DIR"

// TestSpendSurvivesSIGKILL runs a child process that records win notices
// as fast as it can and prints each acknowledged one, kills it with SIGKILL
// mid-stream, reopens the store and checks every acknowledged spend is there.
func TestSpendSurvivesSIGKILL(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpendSurvivesSIGKILL$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked int64
	n := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || f[0] != "ack" {
			continue
		}
		acked, _ = strconv.ParseInt(f[1], 10, 64)
		if n++; n == 300 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Acknowledgements the child wrote before it died are still in the pipe.
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "ack" {
			acked, _ = strconv.ParseInt(f[1], 10, 64)
			n++
		}
	}
	_ = cmd.Wait()
	if n < 300 {
		t.Fatalf("child acknowledged only %d notices", n)
	}
	e := &env{t: t, dir: dir, clock: newClock(t0), camps: newCampSrc(testCampaign("cmp_crash", campaign.PacingASAP)), signer: NewSigner(testSecret)}
	e.open()
	defer e.close()
	_, total := e.p.Spend(e.camps.get("cmp_crash"))
	// Every acknowledged notice is there; at most the one in flight beyond.
	if total < acked || total > acked+1000 {
		t.Fatalf("spend after SIGKILL %d micros, acknowledged %d", total, acked)
	}
	t.Logf("acknowledged %d micros over %d notices; recovered %d", acked, n, total)
}

func crashChild(t *testing.T, dir string) {
	c := testCampaign("cmp_crash", campaign.PacingASAP)
	c.Budget.DailyMicros = campaign.Micros(1e6)
	e := &env{t: t, dir: dir, clock: newClock(t0), camps: newCampSrc(c), signer: NewSigner(testSecret)}
	e.open()
	w := bufio.NewWriter(os.Stdout)
	var spent int64
	for i := 0; ; i++ {
		tok, _, why := e.bid(c.ID, byte(i), Quote{}, fmt.Sprintf("crash-%d", i))
		if why != "" {
			t.Fatalf("bid: %s", why)
		}
		r, err := e.p.Notice(NoticeWin, []byte(tok), 1_000_000, -1)
		if err != nil {
			t.Fatal(err)
		}
		spent += r.Spent
		fmt.Fprintf(w, "ack %d\n", spent)
		w.Flush()
		if i > 100000 {
			time.Sleep(time.Second) // wait for the kill
		}
	}
}
