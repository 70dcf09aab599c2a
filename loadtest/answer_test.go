package loadtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"
	segjson "github.com/segmentio/encoding/json"
	"github.com/valyala/fasthttp"
)

// richAnswer has every field set, in two seats.
const richAnswer = `{"id":"rich","bidid":"bb","cur":"EUR","customdata":"cd","nbr":2,"ext":{"r":1},"seatbid":[{"seat":"s1","group":1,"ext":{"s":1},"bid":[` +
	`{"id":"b1","impid":"1","price":1.5,"nurl":"http://h/w1","burl":"http://h/b1","lurl":"http://h/l1","adm":"<div>1</div>","adid":"ad1","adomain":["a.test","b.test"],"bundle":"bu","iurl":"http://h/i","cid":"c1","crid":"cr1","tactic":"t","cattax":2,"cat":["IAB1","IAB2"],"attr":[1,2],"apis":[3],"api":4,"protocol":5,"qagmediarating":1,"language":"en","langb":"en","dealid":"d","w":300,"h":250,"wratio":1,"hratio":1,"exp":30,"dur":15,"mtype":1,"slotinpod":1,"ext":{"b":1}},` +
	`{"id":"b2","impid":"2","price":2.5,"nurl":"http://h/w2","burl":"http://h/b2","lurl":"http://h/l2","adm":"<div>2</div>","adomain":["c.test"],"cid":"c2","crid":"cr2","cat":["IAB3"],"attr":[3],"w":320,"h":50,"mtype":4,"ext":{"b":2}},` +
	`{"id":"b3","impid":"3","price":3.5,"nurl":"http://h/w3","adm":"<div>3</div>","cid":"c3","mtype":1}]},` +
	`{"seat":"s2","group":0,"bid":[{"id":"b4","impid":"1","price":4,"nurl":"http://h/w4","adm":"x","mtype":1}]}]}`

// decodeBodies are the answers the decode tests try: valid and invalid,
// rich and sparse, so that decoding one after another into the same target
// would show any field left over.
var decodeBodies = []string{
	`{"id":"r1","cur":"USD","seatbid":[{"seat":"chaser","bid":[{"id":"b1","impid":"1","price":1.25,"adm":"<a href=\"https://x.test/c?u=1&amp;p=2\">\u00e9 \ud83d\ude00</a>","mtype":1,"nurl":"http://h/w?p=${AUCTION_PRICE}","cid":"c1","crid":"cr","adomain":["shop.test"],"w":300,"h":250,"ext":{"k":1}}]}]}`,
	`{"id":"r2","seatbid":[{"bid":[{"id":"b1","impid":"1","price":1,"adm":"","mtype":4},{"id":"b2","impid":"2","price":2,"adm":null}]}],"bidid":"x","nbr":0}`,
	`{"id":"r3","seatbid":[{"bid":[{"id":"b1","impid":"1","price":1,"mtype":2}]}]}`,
	`{"id":"r4","seatbid":[{"bid":[{"id":"b1","adm":"{\"native\":{\"ver\":\"1.2\",\"assets\":[{\"id\":1,\"title\":{\"text\":\"T\"}}]}}"}]},{"seat":"s2","bid":[]}]}`,
	`{"id":"r5","seatbid":null}`,
	`{"id":"r6","adm":"stray top-level"}`,
	`{"id":"r7","seatbid":[{"bid":[{"id":"b1","adm":"invalid \xff utf-8"}]}]}`,
	`{"id":"r8","seatbid":[{"bid":[{"id":"b1","adm":12}]}]}`,
	`{"id":"r9","seatbid":[{"bid":[{"id":"b1","adm":{"html":"x"}}]}]}`,
	`{"id":"r10","seatbid":[{"bid":[{"id":"b1","adm":["x"]}]}]}`,
	`{"id":"r11","seatbid":[{"bid":[{"id":"b1","price":"1"}]}]}`,
	`{"id":"r12","seatbid":[{"bid":[{"id":"b1","adm":"x"}]}]`,
	`{"id":"r13","seatbid":{"bid":[]}}`,
	`[]`,
	``,
	richAnswer,
	// Sparse: what the rich one had, missing.
	`{"id":"sparse","seatbid":[{"bid":[{"id":"b1","impid":"1","price":1}]}]}`,
	`{"id":"sparse2","seatbid":[{"bid":[{"impid":"2"}]},{}]}`,
	`{"id":"sparse3","seatbid":[{"seat":"s"}]}`,
	`{"seatbid":[]}`,
	`{}`,
	// Keys given twice: the second list decoded over the first.
	`{"id":"dup","seatbid":[{"bid":[{"id":"a","nurl":"http://h/a"},{"id":"b","nurl":"http://h/b"}]},{"seat":"s2"}],"seatbid":[{"bid":[{"id":"c"}]}]}`,
	// More seats and bids than a reused answer keeps room for.
	`{"id":"big","seatbid":[` + strings.Repeat(`{"seat":"s","bid":[`+strings.Repeat(`{"id":"b","impid":"1","price":1,"nurl":"http://h/w","adm":"x","mtype":1},`, 19)+`{"id":"last"}]},`, 5) + `{"seat":"last"}]}`,
	// Errors after part of the answer is decoded.
	`{"id":"late-error","seatbid":[{"seat":"s","bid":[{"id":"b1","nurl":"http://h/w","adm":"x"},{"id":"b2","lurl":"http://h/l","w":"wide"}]}]}`,
	`{"id":"late-adm","seatbid":[{"seat":"s","bid":[{"id":"b1","nurl":"http://h/w","adm":"x"},{"id":"b2","adm":true}]}]}`,
	`{"id":"trailing","seatbid":[{"bid":[{"id":"b1","nurl":"http://h/w"}]}]} {}`,
	`{"id":"trailing2"}x`,
	` {"id":"spaces","seatbid":[ {"bid":[ ]} ]} ` + "\n",
}

// TestDecodeAnswer checks decodeAnswer against encoding/json decoding into
// openrtb2.BidResponse: the same answers are errors, and the same fields
// come out, the markup unquoted on demand; both into a fresh answer and
// into one that held every answer before.
func TestDecodeAnswer(t *testing.T) {
	var reused answer
	for _, body := range decodeBodies {
		var want openrtb2.BidResponse
		wantErr := json.Unmarshal([]byte(body), &want)
		var fresh answer
		err := decodeAnswer([]byte(body), &fresh)
		reusedErr := decodeAnswer([]byte(body), &reused)
		if (err != nil) != (wantErr != nil) || (reusedErr != nil) != (wantErr != nil) {
			t.Errorf("%s: error %v, reused %v, encoding/json %v", body, err, reusedErr, wantErr)
			continue
		}
		if err != nil {
			continue
		}
		emptyAsNil(&want)
		for _, a := range []*answer{&fresh, &reused} {
			for s, seat := range a.SeatBid {
				for b, bid := range seat.Bid {
					if bid.Bid.AdM != "" {
						t.Errorf("%s: embedded AdM %q set", body, bid.Bid.AdM)
					}
					if hasMarkup(bid.AdM) != (want.SeatBid[s].Bid[b].AdM != "") {
						t.Errorf("%s: hasMarkup(%s) disagrees with %q", body, bid.AdM, want.SeatBid[s].Bid[b].AdM)
					}
				}
			}
			if got := asBidResponse(a); !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\ngot  %+v\nwant %+v", body, got, want)
			}
		}
	}
}

// TestDecodeAnswerErrors checks that decodeAnswer's errors, which become
// the detail of VBadJSON, are those it gave before it decoded into a
// reused answer (decodeAnswerFresh).
func TestDecodeAnswerErrors(t *testing.T) {
	var reused answer
	for _, body := range decodeBodies {
		want := decodeAnswerFresh([]byte(body), new(answer))
		err := decodeAnswer([]byte(body), &reused)
		if fmt.Sprint(err) != fmt.Sprint(want) {
			t.Errorf("%s: error %v, want %v", body, err, want)
		}
	}
}

// decodeAnswerFresh is decodeAnswer as it was before it reused its target
// and let it point into body: segmentio's Unmarshal into a fresh answer.
func decodeAnswerFresh(body []byte, a *answer) error {
	if err := segjson.Unmarshal(body, a); err != nil {
		return err
	}
	for _, s := range a.SeatBid {
		for _, b := range s.Bid {
			if len(b.AdM) > 0 && b.AdM[0] != '"' && string(b.AdM) != "null" {
				return errAdmNotString
			}
		}
	}
	return nil
}

// FuzzDecodeAnswer decodes each input into a fresh answer, and into one
// that held a rich answer before, and compares both with
// decodeAnswerFresh: the same error, or the same answer. The seeds
// (decodeBodies) run as a test.
func FuzzDecodeAnswer(f *testing.F) {
	for _, body := range decodeBodies {
		f.Add([]byte(body))
	}
	rich := []byte(richAnswer)
	f.Fuzz(func(t *testing.T, body []byte) {
		var want answer
		wantErr := decodeAnswerFresh(body, &want)
		var fresh, reused answer
		if err := decodeAnswer(rich, &reused); err != nil {
			t.Fatal(err)
		}
		for _, a := range []*answer{&fresh, &reused} {
			err := decodeAnswer(body, a)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("%q: error %v, want %v", body, err, wantErr)
			}
			if err != nil {
				continue
			}
			if got, want := asBidResponse(a), asBidResponse(&want); !reflect.DeepEqual(got, want) {
				t.Errorf("%q:\ngot  %+v\nwant %+v", body, got, want)
			}
			if got, want := rawBids(a), rawBids(&want); !reflect.DeepEqual(got, want) {
				t.Errorf("%q: bids %+v, want %+v", body, got, want)
			}
		}
	})
}

// TestDecodeAnswerReused decodes every answer into a target that held each
// other answer, and compares with a fresh decode: nothing of the first may
// show in the second (a bid without nurl must not keep the previous bid's;
// a shorter seatbid must not keep old seats).
func TestDecodeAnswerReused(t *testing.T) {
	for _, first := range decodeBodies {
		for _, second := range decodeBodies {
			var a, fresh answer
			_ = decodeAnswer([]byte(first), &a)
			err := decodeAnswer([]byte(second), &a)
			freshErr := decodeAnswer([]byte(second), &fresh)
			if fmt.Sprint(err) != fmt.Sprint(freshErr) {
				t.Errorf("%s after %s: error %v, fresh %v", second, first, err, freshErr)
				continue
			}
			if err != nil {
				continue
			}
			if got, want := asBidResponse(&a), asBidResponse(&fresh); !reflect.DeepEqual(got, want) {
				t.Errorf("%s after %s:\ngot  %+v\nwant %+v", second, first, got, want)
			}
			// What examine and the auction see, slices and all.
			if !reflect.DeepEqual(rawBids(&a), rawBids(&fresh)) {
				t.Errorf("%s after %s: bids %+v, fresh %+v", second, first, rawBids(&a), rawBids(&fresh))
			}
		}
	}
}

// rawBids lists a's bids with their raw adm.
func rawBids(a *answer) []answerBid {
	var bids []answerBid
	for _, s := range a.SeatBid {
		bids = append(bids, s.Bid...)
	}
	return bids
}

// asBidResponse returns a as encoding/json would decode it into
// openrtb2.BidResponse, the markup unquoted, and empty seatbid and bid
// lists as nil (see answer.reset).
func asBidResponse(a *answer) openrtb2.BidResponse {
	r := a.BidResponse
	r.SeatBid = nil
	for _, seat := range a.SeatBid {
		s := seat.SeatBid
		s.Bid = nil
		for _, bid := range seat.Bid {
			b := bid.Bid
			b.AdM = markupText(bid.AdM)
			s.Bid = append(s.Bid, b)
		}
		r.SeatBid = append(r.SeatBid, s)
	}
	return r
}

// emptyAsNil sets r's empty seatbid and bid lists to nil.
func emptyAsNil(r *openrtb2.BidResponse) {
	if len(r.SeatBid) == 0 {
		r.SeatBid = nil
	}
	for i := range r.SeatBid {
		if len(r.SeatBid[i].Bid) == 0 {
			r.SeatBid[i].Bid = nil
		}
	}
}

func BenchmarkDecodeAnswer(b *testing.B) {
	adm := `<div class="chaser"><a href="https://bid.example.com/click?c=cmp_1&p=SKU-1&sig=abcdef0123456789"><img src="https://cdn.example.com/img/sku-1.jpg" width="300" height="250" alt="A product"></a><img src="https://bid.example.com/px?x=1" width="1" height="1" style="display:none"></div>`
	for len(adm) < 3000 {
		adm += adm
	}
	resp := openrtb2.BidResponse{ID: "r", Cur: "USD", SeatBid: []openrtb2.SeatBid{{Seat: "chaser", Bid: []openrtb2.Bid{{
		ID: "b", ImpID: "1", Price: 1.5, AdM: adm, MType: 1, NURL: "https://bid.example.com/win?p=${AUCTION_PRICE}", CID: "c", CrID: "cr", ADomain: []string{"shop.test"},
	}}}}}
	body, err := json.Marshal(resp)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var a answer // reused, as by a worker
	for b.Loop() {
		if err := decodeAnswer(body, &a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnswered runs the whole path of a 200 answer with bids (decode,
// examine, auction, spend; notices disabled) on an answer shaped like
// Chaser's (testdata/chaser_answer.json, 4.7 KB): one seat, two banner
// bids with signed-token notice URLs and 1.3-1.7 KB of markup, one with
// double-quoted attributes (escaped in the JSON), one single-quoted as
// Chaser's renderer writes them (nothing to escape).
func BenchmarkAnswered(b *testing.B) {
	body, err := os.ReadFile("testdata/chaser_answer.json")
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Notices.Disabled = true
	r := &runner{cfg: cfg}
	t := &template{imps: []ImpSpec{{ID: "1", Floor: 0.5, Banner: true}, {ID: "2", Floor: 0.3, Banner: true}}}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.SetBody(body)
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		br    answer
		bids  []bidEntry
		found []finding
	)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		bids, found = r.answered(rng, t, "5f3a9c1e-000000000012345", resp, &br, bids[:0], found[:0])
	}
	if len(found) != 0 || len(bids) != 2 || r.c.status200.Load() == 0 {
		b.Fatalf("found %+v, %d bids", found, len(bids))
	}
}

// TestAnsweredKeepsCopies runs answered, then overwrites the answer's body
// and decodes another answer into the same target, as a worker's next
// request does. What outlives the call (queued notices, the spend ledger,
// the sample markup, findings) must not change: the decoded strings point
// into the body.
func TestAnsweredKeepsCopies(t *testing.T) {
	chaser, err := os.ReadFile("testdata/chaser_answer.json")
	if err != nil {
		t.Fatal(err)
	}
	const reqID = "5f3a9c1e-000000000012345"
	bodies := []string{
		string(chaser),
		// No macros to expand (Expand returns its input), a wrong cur, a
		// lost bid, findings.
		`{"id":"` + reqID + `","cur":"USD","bidid":"bb","seatbid":[{"seat":"s","bid":[` +
			`{"id":"b1","impid":"1","price":2,"nurl":"http://h/win","burl":"http://h/bill?x=${UNKNOWN}","lurl":"http://h/loss","adm":"<div>${AUCTION_ID}</div>","cid":"c1","mtype":1},` +
			`{"id":"b2","impid":"1","price":1,"lurl":"http://h/loss2","adm":"x","cid":"c2","mtype":1},` +
			`{"id":"b3","impid":"2","price":0.1,"lurl":"not a url","adm":"x","cid":"c3","mtype":1}]}]}`,
		`{"id":"other","cur":"EUR","seatbid":[{"seat":"s","bid":[{"id":"b1","impid":"1","price":2,"nurl":"http://h/win","lurl":"http://h/loss","adm":"x","cid":"c1","mtype":1}]}]}`,
	}
	for _, body := range bodies {
		cfg := DefaultConfig()
		cfg.Competition = Competition{} // every valid bid at or above the floor wins
		cfg.Notices.DuplicateShare, cfg.Notices.LateShare = 0, 0
		r := &runner{cfg: cfg, notices: &notifier{jobs: make(chan chain, 64)}}
		tpl := &template{imps: []ImpSpec{{ID: "1", Floor: 0.5, Banner: true}, {ID: "2", Floor: 0.3, Banner: true}}}
		resp := fasthttp.AcquireResponse()
		resp.SetStatusCode(fasthttp.StatusOK)
		resp.SetBodyString(body)
		var br answer
		_, found := r.answered(rand.New(rand.NewPCG(1, 2)), tpl, reqID, resp, &br, nil, nil)
		var chains []chain
		for len(r.notices.jobs) > 0 {
			chains = append(chains, <-r.notices.jobs)
		}
		kept := func() []string {
			var s []string
			for _, c := range chains {
				for _, n := range c.steps {
					s = append(s, n.url)
				}
			}
			for _, c := range r.spend.report() {
				s = append(s, c.Campaign, c.Currency)
			}
			if p := r.sample.Load(); p != nil {
				s = append(s, *p)
			}
			for _, f := range found {
				s = append(s, f.detail)
			}
			return s
		}
		var want []string
		for _, s := range kept() {
			want = append(want, strings.Clone(s))
		}
		if len(chains) == 0 {
			t.Fatalf("%.60s: kept only %q", body, want)
		}
		b := resp.Body()
		for i := range b {
			b[i] = 'X'
		}
		if err := decodeAnswer([]byte(bodies[0]), &br); err != nil {
			t.Fatal(err)
		}
		if got := kept(); !reflect.DeepEqual(got, want) {
			t.Errorf("%.60s: after the body changed, kept\n%q\nwant\n%q", body, got, want)
		}
		fasthttp.ReleaseResponse(resp)
	}
}
