// Package loadtest is Chaser's exchange simulator: it measures a bidder the
// way an ad exchange would load it.
//
// It owns:
//
//   - request generation: a pool of pre-encoded, realistic OpenRTB 2.6 bid
//     requests (site and app, banner and native imps, floors, geo, device,
//     consent signals, known and unknown users, some gzip bodies), each sent
//     with a fresh, unique request id patched into the pre-encoded bytes;
//   - rate control: open loop at a target rate (latency measured from the
//     intended send time, so a slow bidder shows as latency and not as a
//     slower generator) or closed loop at maximum throughput;
//   - the exchange simulation: a first- or second-price auction against a
//     competing price drawn from a log-normal distribution, OpenRTB macro
//     substitution, and win (with duplicates and late ones), billing and
//     loss notices fired at the URLs the bidder returned;
//   - latency histograms (HDR) and the run report: throughput, latency
//     percentiles, bid and win rates, spend per campaign, errors by kind,
//     and, in check mode, every way a response broke the OpenRTB contract;
//   - the baseline: a no-op fasthttp handler measured with the same settings
//     in the same run, so a bidder's throughput is stated as a share of the
//     ceiling on the same machine.
//
// The binary cmd/chaser-load is a thin wrapper that turns flags into a
// [Config] and calls [Run] or [RunBaseline]. Nothing here reads flags or
// environment variables, and nothing here keeps global state.
package loadtest
