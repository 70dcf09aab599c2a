// Package creative owns what an ad shows: each advertiser's product
// catalogue (feeds uploaded as CSV or JSON lines, validated row by row,
// replaced atomically, persisted under the "prd/" prefix), the recommender
// that picks the products for a user at bid time, the templates that render
// banner HTML and native responses, and signed click URLs that only ever
// redirect to a product's own landing page.
//
// The bid path reads catalogues through lock-free snapshots
// (atomic.Pointer); feed uploads build a new snapshot and swap it in.
//
// # Warm start of the recommender
//
// The recommender's counters (co-views, co-carts, co-purchases, popularity)
// live in memory, fed by live events. So that a restart does not reset
// every user to best-sellers, `chaser serve` rebuilds them at start from the
// user profiles the audience package keeps in Pebble: a Warmer replays each
// stored user's recent events, oldest first, each one observed with the
// events before it as history — exactly the call observeEvent makes live —
// then RebuildAll publishes the neighbour lists. It runs inside openApp,
// before either port listens: /readyz answers only once it is done, and no
// live event can be both replayed and observed.
//
// Replay rather than persisted counters, because the profiles are already
// the source of truth: an erased person's profile is deleted, so their
// events are gone from the next start (persisted counters could not
// subtract them), and ingest pays no second write per event (a co-view
// updates about 2×CoWindow counters). The cost, measured
// (BENCHMARKS.md, "Recommender"): about 2.2–3.5 µs per stored product
// event, linear — 100,000 profiles holding 1.05 M events replay and rebuild
// in 2.3 s on 2 cores (up to 3.7 s with other jobs running), 10,000 in
// 0.3 s; memory is the counters themselves (44 MB for 3.3 M) plus one
// profile at a time. Past a few million profiles, persisting the counters (or
// replaying advertisers in parallel) becomes worth its complexity.
//
// Where the replayed state differs from what live observation built:
//   - It learns only what profiles still hold: at most 200 events and 180
//     days per user and advertiser (audience.MaxProfileEvents,
//     ProfileRetentionDays); live counters hold every event since the last
//     start.
//   - Order: live counts events in arrival order, interleaved across users;
//     replay goes by advertiser, user pseudonym, then time. Counts are sums,
//     so the results agree up to float rounding, except where an item
//     reaches MaxPairsPerItem co-occurring items (which small counters are
//     pruned depends on order) and popularity rebasing (after 256
//     PopularityHalfLife, in practice never). When live events did arrive
//     user after user in that order, the two are identical (tests
//     TestWarmerMatchesLiveObserve, cmd/chaser TestWarmStartEqualsLive).
//   - An event that arrived late (its time before events already stored)
//     was observed live with those later events in its history; replayed,
//     its history holds only earlier events.
//   - An event keyed by a hashed e-mail is stored in the e-mail's profile
//     and, marked as a linked copy (audience.ProfileEvent.Linked), in up to
//     four linked cookie or ad id profiles: live observes it once, and
//     replay skips the copies. Profiles written before the mark existed
//     (format version 2) replay their copies too.
//   - Erased users are not replayed (their profiles are deleted), while the
//     running process keeps their contribution to the counters until the
//     next start.
package creative
