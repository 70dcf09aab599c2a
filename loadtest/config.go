package loadtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Mode is how the generator paces requests.
type Mode string

const (
	// ModeOpen sends at a fixed rate whatever the bidder does. Latency is
	// measured from the time a request was due, so queueing behind a slow
	// bidder counts (no coordinated omission).
	ModeOpen Mode = "open"
	// ModeClosed keeps every connection busy: a new request leaves as soon as
	// the previous answer on that connection arrived. It finds the maximum
	// throughput; latency is measured from the actual send.
	ModeClosed Mode = "closed"
)

// AuctionType is the exchange's auction rule.
type AuctionType string

const (
	// FirstPrice charges the winner its own bid (BidRequest.at = 1).
	FirstPrice AuctionType = "first"
	// SecondPrice charges the winner the price it needed to win plus one
	// cent, capped at its bid (BidRequest.at = 2).
	SecondPrice AuctionType = "second"
)

// at returns the OpenRTB BidRequest.at value for the auction type.
func (a AuctionType) at() int64 {
	if a == SecondPrice {
		return 2
	}
	return 1
}

// Config describes one run. Start from [DefaultConfig]: zero values are taken
// literally (a zero share means "never"), and [Config.Validate] rejects the
// ones that make no sense.
type Config struct {
	// Target is the bidder's base URL. Default "http://127.0.0.1:8080".
	Target string
	// Path is the bid endpoint below Target. Default "/openrtb2/bid".
	Path string
	// Mode is ModeOpen or ModeClosed. Default ModeOpen.
	Mode Mode
	// QPS is the open-loop send rate, requests per second. Default 1000.
	// Ignored in closed loop.
	QPS float64
	// Connections is the number of concurrent connections (and so the most
	// requests in flight). Default 32.
	Connections int
	// Duration is how long requests are sent. Default 30s. Answers to
	// requests in flight at the end, and their notices, are still awaited.
	Duration time.Duration
	// TMax is the exchange's deadline: it is sent as BidRequest.tmax, and an
	// answer that has not arrived TMax after the request was sent counts as a
	// timeout and its bids are ignored. Default 100ms.
	TMax time.Duration
	// Auction is FirstPrice or SecondPrice. Default FirstPrice.
	Auction AuctionType
	// Competition is the price the bidder must beat in each imp's auction.
	Competition Competition
	// Traffic shapes the generated requests.
	Traffic Traffic
	// Notices configures win, billing and loss notices.
	Notices NoticeConfig
	// Check makes the run fail (Report.Check.Passed false) on any invalid
	// response, any HTTP error status, bad JSON, a campaign over its budget or
	// too many connection errors and timeouts. Default false.
	Check bool
	// Budgets maps a campaign id (Bid.cid) to the most it may spend in the
	// run, in currency units. Only enforced with Check. Default none.
	Budgets map[string]float64
	// MaxErrorShare is the share of requests that may end in a connection
	// error or timeout before a checked run fails. Default 0.01.
	MaxErrorShare float64
	// Progress receives one line a second while the run goes on. Default nil
	// (no progress).
	Progress io.Writer
	// Label names the run in progress lines and the report ("baseline",
	// "target"). Default empty.
	Label string
	// Rounds is, for RunBaseline only, how many alternating baseline and
	// target slices share Duration. Default 5.
	Rounds int
	// DropLate (open loop only) makes the generator behave like an
	// exchange whose auction will not wait: a request whose connection is
	// still busy TMax after it fell due is not sent at all and is counted
	// in Report.Dropped, instead of being sent late and charged the wait.
	// It keeps a run above the bidder's capacity from building an endless
	// backlog. Default false (RunOverload sets it).
	DropLate bool
}

// Competition is the log-normal distribution of the best competing bid in
// each imp's auction, in CPM currency units: Median × e^(Sigma × N(0,1)).
type Competition struct {
	// Median is the median competing CPM. Zero means no competition: any
	// valid bid at or above the floor wins. Default 1.0.
	Median float64
	// Sigma is the log-normal shape; zero makes every competing price equal
	// to Median. Default 0.6.
	Sigma float64
}

// NoticeConfig configures the notices the simulated exchange sends.
type NoticeConfig struct {
	// Disabled sends no notices at all, to measure bid handling alone (the
	// no-op baseline gets no notices either). Default false.
	Disabled bool
	// DuplicateShare is the share of wins whose nurl is fired twice.
	// Default 0.01.
	DuplicateShare float64
	// LateShare is the share of wins whose notices are fired only after
	// LateDelay. Default 0.01.
	LateShare float64
	// LateDelay is how late a late win notice is. Default 2s.
	LateDelay time.Duration
	// Workers is the number of goroutines firing notices, each one notice
	// at a time; too few and notices queue up (see NoticeReport.Unsent).
	// Default 32.
	Workers int
	// Timeout bounds one notice request. Default 2s.
	Timeout time.Duration
	// Queue is how many notice chains may wait for a worker; beyond that
	// notices are dropped and counted. Default 65536.
	Queue int
	// DrainTimeout bounds how long the run waits, after the last answer, for
	// queued and late notices. It must exceed LateDelay. Default 10s.
	DrainTimeout time.Duration
}

// Traffic shapes the generated bid requests.
type Traffic struct {
	// PoolSize is the number of distinct pre-encoded requests; the run
	// cycles through them, each time with a new request id. Default 10000.
	PoolSize int
	// Seed makes the pool and the run's random draws reproducible.
	// Default 1.
	Seed uint64
	// SiteShare is the share of site requests; the rest are app requests.
	// Default 0.6.
	SiteShare float64
	// NativeShare is the share of imps that are native instead of banner.
	// Default 0.15.
	NativeShare float64
	// FloorShare is the share of imps with a bidfloor. Default 0.8.
	FloorShare float64
	// FloorMedian is the median floor, CPM in USD. Default 0.5.
	FloorMedian float64
	// GzipShare is the share of requests sent with a gzip body.
	// Default 0.2.
	GzipShare float64
	// GDPRShare is the share of requests from the EU with regs.gdpr=1 and a
	// TCF v2 string in user.consent. Default 0.15.
	GDPRShare float64
	// GDPRConsentShare is the share of those whose TCF string consents to
	// all purposes and vendors 1–1500; the others consent to nothing.
	// Default 0.6.
	GDPRConsentShare float64
	// COPPAShare is the share of requests with regs.coppa=1. Default 0.02.
	COPPAShare float64
	// USPrivacyOptOutShare is the share of requests from the USA whose
	// regs.us_privacy is the opt-out "1YYN" (other US requests carry
	// "1YNN"). Default 0.05.
	USPrivacyOptOutShare float64
	// UnknownShare is the share of users the bidder cannot know. The rest
	// are drawn uniformly from the known users. Default 0.7.
	UnknownShare float64
	// KnownPrefix and KnownCount name the known users sent as
	// user.buyeruid: KnownPrefix+"1" … KnownPrefix+KnownCount. Defaults
	// "demo-user-" and 100, the users `chaser serve --demo` seeds.
	KnownPrefix string
	KnownCount  int
	// KnownIFAs are mobile ad ids the bidder knows. When set, known users of
	// app requests are sent by device.ifa from this list instead of by
	// buyeruid. Default none.
	KnownIFAs []string
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Target:        "http://127.0.0.1:8080",
		Path:          "/openrtb2/bid",
		Mode:          ModeOpen,
		QPS:           1000,
		Connections:   32,
		Duration:      30 * time.Second,
		TMax:          100 * time.Millisecond,
		Auction:       FirstPrice,
		Competition:   Competition{Median: 1.0, Sigma: 0.6},
		MaxErrorShare: 0.01,
		Rounds:        5,
		Notices: NoticeConfig{
			DuplicateShare: 0.01,
			LateShare:      0.01,
			LateDelay:      2 * time.Second,
			Workers:        32,
			Timeout:        2 * time.Second,
			Queue:          65536,
			DrainTimeout:   10 * time.Second,
		},
		Traffic: Traffic{
			PoolSize:             10000,
			Seed:                 1,
			SiteShare:            0.6,
			NativeShare:          0.15,
			FloorShare:           0.8,
			FloorMedian:          0.5,
			GzipShare:            0.2,
			GDPRShare:            0.15,
			GDPRConsentShare:     0.6,
			COPPAShare:           0.02,
			USPrivacyOptOutShare: 0.05,
			UnknownShare:         0.7,
			KnownPrefix:          "demo-user-",
			KnownCount:           100,
		},
	}
}

// Validate reports the first setting that makes no sense, naming it.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Target)
	if err != nil {
		return fmt.Errorf("loadtest: target %q: %w", c.Target, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("loadtest: target %q: scheme must be http or https", c.Target)
	}
	if u.Host == "" {
		return fmt.Errorf("loadtest: target %q: no host", c.Target)
	}
	if !strings.HasPrefix(c.Path, "/") {
		return fmt.Errorf("loadtest: path %q must start with /", c.Path)
	}
	switch c.Mode {
	case ModeOpen:
		if !(c.QPS > 0) {
			return fmt.Errorf("loadtest: open loop needs qps > 0, got %v", c.QPS)
		}
	case ModeClosed:
	default:
		return fmt.Errorf("loadtest: mode %q: want %q or %q", c.Mode, ModeOpen, ModeClosed)
	}
	switch c.Auction {
	case FirstPrice, SecondPrice:
	default:
		return fmt.Errorf("loadtest: auction %q: want %q or %q", c.Auction, FirstPrice, SecondPrice)
	}
	if c.Connections < 1 {
		return fmt.Errorf("loadtest: connections must be at least 1, got %d", c.Connections)
	}
	if c.Duration <= 0 {
		return fmt.Errorf("loadtest: duration must be positive, got %v", c.Duration)
	}
	if c.TMax < time.Millisecond {
		return fmt.Errorf("loadtest: tmax must be at least 1ms, got %v", c.TMax)
	}
	if c.Competition.Median < 0 || c.Competition.Sigma < 0 {
		return errors.New("loadtest: competition median and sigma must not be negative")
	}
	n := c.Notices
	if n.Workers < 1 || n.Queue < 1 {
		return errors.New("loadtest: notice workers and queue must be at least 1")
	}
	if n.Timeout <= 0 {
		return fmt.Errorf("loadtest: notice timeout must be positive, got %v", n.Timeout)
	}
	if n.LateShare > 0 && n.DrainTimeout <= n.LateDelay {
		return fmt.Errorf("loadtest: notice drain timeout %v must exceed the late delay %v", n.DrainTimeout, n.LateDelay)
	}
	if err := checkShares(share{"duplicate win share", n.DuplicateShare}, share{"late win share", n.LateShare},
		share{"max error share", c.MaxErrorShare}); err != nil {
		return err
	}
	for cid, b := range c.Budgets {
		if b < 0 {
			return fmt.Errorf("loadtest: budget for %q is negative", cid)
		}
	}
	return c.Traffic.validate()
}

func (t *Traffic) validate() error {
	if t.PoolSize < 1 {
		return fmt.Errorf("loadtest: pool size must be at least 1, got %d", t.PoolSize)
	}
	if err := checkShares(
		share{"site share", t.SiteShare}, share{"native share", t.NativeShare}, share{"floor share", t.FloorShare},
		share{"gzip share", t.GzipShare}, share{"gdpr share", t.GDPRShare}, share{"gdpr consent share", t.GDPRConsentShare},
		share{"coppa share", t.COPPAShare}, share{"us privacy opt-out share", t.USPrivacyOptOutShare},
		share{"unknown share", t.UnknownShare},
	); err != nil {
		return err
	}
	if t.GDPRShare+t.USPrivacyOptOutShare > 1 {
		return errors.New("loadtest: gdpr share and us privacy opt-out share add up to more than 1")
	}
	if t.FloorMedian < 0 {
		return errors.New("loadtest: floor median must not be negative")
	}
	if t.UnknownShare < 1 && t.KnownCount < 1 && len(t.KnownIFAs) == 0 {
		return errors.New("loadtest: known users wanted (unknown share < 1) but known count is 0")
	}
	return nil
}

// share is a named fraction, for validation.
type share struct {
	name string
	v    float64
}

func checkShares(shares ...share) error {
	for _, s := range shares {
		if !(s.v >= 0 && s.v <= 1) {
			return fmt.Errorf("loadtest: %s must be between 0 and 1, got %v", s.name, s.v)
		}
	}
	return nil
}

// ParseBudget parses "cid=amount" (amount in currency units), the form of the
// --budget flag.
func ParseBudget(s string) (cid string, amount float64, err error) {
	cid, v, ok := strings.Cut(s, "=")
	cid = strings.TrimSpace(cid)
	if !ok || cid == "" {
		return "", 0, fmt.Errorf("loadtest: budget %q: want campaign=amount", s)
	}
	amount, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || amount < 0 {
		return "", 0, fmt.Errorf("loadtest: budget %q: amount must be a non-negative number", s)
	}
	return cid, amount, nil
}

// ReadIDs reads one id a line, as for Traffic.KnownIFAs: blank lines and
// lines starting with # are skipped, ids are trimmed and lower-cased (mobile
// ad ids are normalised to lower case).
func ReadIDs(r io.Reader) ([]string, error) {
	var ids []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ids = append(ids, strings.ToLower(line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadtest: read ids: %w", err)
	}
	return ids, nil
}
