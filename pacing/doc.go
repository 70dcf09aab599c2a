// Package pacing owns money and frequency: bid pricing, budgets, the spend
// ledger fed by signed win, billing, loss and impression notices, the
// pacing controller, frequency caps and the hourly campaign reports.
//
// # The bid path
//
// For each campaign whose audience and targeting match, the bidder calls
// Pacer.Admit (budget left, frequency cap, even pacing's throttle; counts
// the request as matched), then Handle.Quote per imp (the price, or a reason
// for no bid) and Handle.Reserve for the bid it places. These read atomics
// and immutable snapshots only: no lock held by anything slow, no
// allocation (TestBidPathAllocs, BenchmarkBidPath).
//
// # Budgets that hold
//
// Money bid but not yet confirmed counts against the budget: Reserve holds
// what the impression may cost (the bid price) until a notice settles it —
// a win or billing notice turns it into spend, a loss notice frees it — or
// until Options.ReserveTTL (2 min) passes without one. A reservation is
// refused when spend plus reservations would pass the daily or total
// budget, so however many bids race, spend stays within the budget as long
// as notices arrive within the TTL and no clearing price exceeds its bid
// (the ledger refuses those). A win whose notice comes after its
// reservation expired is still recorded (the exchange bills it): only then
// can spend pass the budget, by such late wins. Reservations live in
// per-second slots of packed atomic words (reserve.go).
//
// At a restart reservations are not lost outright: Tick saves their total
// every 10 s (and Flush at shutdown) and the next start restores it as one
// reservation expiring a TTL after it was saved, so bids in flight at a
// shutdown keep holding budget until their notices can come. After a crash
// the bids of the last seconds before it are missing from that total; their
// wins can pass the budget by that much.
//
// # The spend ledger
//
// Notices carry a token signed with CHASER_SECRET (campaign, auction, imp,
// bid price, bid time, user pseudonym, first-price flag) and the clearing
// price. Forged or tampered tokens, prices above the bid, tokens older than
// 24 h, and campaigns that no longer exist are refused; the caller counts
// each by outcome. Ledger.Apply keeps one record per auction, so each
// notice kind counts once and the auction's spend moves once however often
// and in whatever order its win and billing notices come. Win and billing
// notices are durable (WAL fsync, shared between concurrent notices) before
// Notice returns: a restart, including SIGKILL, loses no acknowledged spend
// (TestSpendSurvivesSIGKILL). Spend counts toward the day of the bid in the
// campaign's time zone. Ledger is an interface; PebbleLedger is the
// single-node implementation, and one on Redis could share budgets between
// bidders (see DESIGN.md, "Later: more than one machine").
//
// # Pacing
//
// asap bids on every matched request until the budget is spent. even
// spreads the day's budget (the daily budget, no more than what is left of
// the total; with only a total budget, what is left of it over the days to
// the end date, or all of it today when there is none) over the day in
// proportion to the campaign's traffic:
// matched requests are counted per minute of the campaign's local day, and
// each full day is folded into a learned curve (a flat or configured curve
// until then). A controller run by Tick every ControlInterval sets a
// throttle — the share of matched requests that may bid — and, when even
// bidding on everything falls short, a bid multiplier (see controller).
// The controller's state shows in State and in the report.
//
// # Pricing
//
// The base CPM, times 0.7 for users only a lookalike audience matched, times
// a recency factor (×1.5 within an hour of a product view or cart, ×1.25
// within a day, ×0.8 after a week), times even pacing's multiplier, capped
// at the max CPM. A floor is converted to the campaign currency with a rate
// table (DefaultRates, overridable); a floor in an unknown currency or above
// the max CPM is no bid, a lower one raises the bid to it. In first-price
// auctions (at=1) bids are shaded to the price maximising expected surplus
// under a win curve learned from ${AUCTION_MIN_TO_WIN} or the share of bids
// won per price bucket (market.go).
//
// # Frequency caps
//
// An auction's first win, billing or impression notice counts one
// impression for its campaign and user (the token's pseudonym). Admit
// refuses users at their cap. Frequency is an interface; PebbleFrequency
// keeps counts in memory and in Pebble so they survive restarts. Bids in
// flight are not counted, so a user can exceed a cap by the bids placed for
// them while earlier ones were still unanswered.
//
// # Keys
//
// Everything is under store.PrefixPacing ("pac/") except frequency counts
// ("frq/<campaign>/<user>"):
//
//	pac/t/<cmp>                   total spend                 (ledger)
//	pac/d/<cmp>/<yyyymmdd>        day spend                   (ledger)
//	pac/h/<cmp>/<hour>            hourly spend, wins, imps    (ledger)
//	pac/n/<hour><auction>         one auction's notices       (ledger; forgotten after 25 h)
//	pac/r/<cmp>/<hour>            hourly matched, bids, clicks, pacing state (Tick)
//	pac/v/<cmp>                   reservations and controller state (Tick)
//	pac/c/<cmp>                   learned traffic curve       (Tick)
//
// Bid-path counters (matched, bids, clicks) are flushed every 10 s and at
// shutdown, so a crash loses at most 10 s of them; spend, wins and
// impressions are written with each notice.
package pacing
