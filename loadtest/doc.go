// Package loadtest is Chaser's exchange simulator: it measures a bidder the
// way an ad exchange would load it.
//
// It owns:
//
//   - request generation: a pool of pre-encoded, realistic OpenRTB 2.6 bid
//     requests (site and app, banner and native imps, floors, geo, device,
//     consent signals, known and unknown users, some gzip bodies), each sent
//     with a fresh, unique request id patched into the pre-encoded bytes;
//   - rate control: open loop at a target rate (a request that falls due
//     while its connection still waits for the bidder is charged the wait,
//     so a slow bidder shows as latency and not as a slower generator) or
//     closed loop at maximum throughput;
//   - the exchange simulation: a first- or second-price auction against a
//     competing price drawn from a log-normal distribution, OpenRTB macro
//     substitution, and win (with duplicates and late ones), billing and
//     loss notices fired at the URLs the bidder returned;
//   - latency histograms (HDR) and the run report: throughput, latency
//     percentiles, bid and win rates, spend per campaign, errors by kind,
//     and, in check mode, every way a response broke the OpenRTB contract;
//   - the baseline: a no-op fasthttp handler (in a child process, like the
//     bidder) measured with the same settings in the same run, in slices
//     alternating with the target's, so a bidder's throughput is stated as a
//     share of the ceiling on the same machine even when the machine's load
//     drifts. The bidder must run in the generator's login session (not
//     under setsid): with CPU autogroups, a session of its own gets half the
//     machine against the generator and the no-op child.
//
// # Reading the report
//
//   - requests are sent; answered are 200s and 204s. Throughput is answered
//     per second from the first due send to the last answer.
//   - latency is HDR-recorded (3 significant digits) for every answer and
//     every timeout, never for connection errors. In open loop a request that
//     fell due while its connection was still waiting for the bidder is
//     charged that wait (shown as "queued"); a late send on a free connection
//     is the generator's own delay, shown as "timer lag" and not charged.
//   - bid rate is answers with at least one bid over requests; win rate is
//     won bids over bids. A bid wins its imp's auction when it is valid, at
//     least the floor, the highest of the bidder's bids for the imp and
//     strictly above the competing price.
//   - spend is Σ clearing CPM / 1000 per campaign (Bid.cid), in the
//     response's currency.
//   - notices count requests fired: win (first nurl, including late ones),
//     duplicate win, bill (burl) and loss (lurl). Failed means a transport
//     error or a status of 400 or more.
//   - violations are always counted; with Config.Check they fail the run,
//     as do HTTP error statuses, undecodable 200s, campaigns over budget,
//     no answer at all, or connection errors and timeouts above
//     Config.MaxErrorShare of requests.
//
// The binary cmd/chaser-load is a thin wrapper that turns flags into a
// [Config] and calls [Run] or [RunBaseline]. Nothing here reads flags or
// environment variables, and nothing here keeps global state.
package loadtest
