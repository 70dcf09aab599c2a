// Package audience owns who a user is and which audiences they belong to:
// identifier types and their normalisation (e-mail, phone, mobile ad id,
// Chaser's cookie id, exchange ids), pseudonymisation under CHASER_SECRET,
// list audiences and their member uploads, site events and user profiles,
// and the in-memory bloom filters the bid path asks "is this user in audience
// X?". Only pseudonyms are stored, held in filters or logged.
//
// Readers on the bid path never lock: they load a *Snapshot from an
// atomic.Pointer and test cache-line-blocked bloom filters whose words are
// read and set atomically. Writers add members to the live filters in place,
// rebuild a filter from the store into a new one (adds made meanwhile reach
// both) and swap it in; a new Snapshot is swapped in only when audiences come
// or go or a user is erased.
//
// An upload is a job: its record is written when it starts and in the same
// Pebble batch as every batch of members it writes, so its counts always
// match the store; a job a crash left running is marked failed at the next
// start. Identity links (an e-mail seen with a cookie) make an e-mail list
// match cookies: filter builds follow lnk/ from e-mail and phone members, and
// OnLink adds a link that appears later.
//
// The program calls Maintain from a ticker (expired members, removals and
// erasures rebuild filters; full or stale filters are resized), Erase from
// the privacy endpoint, and Close at shutdown.
//
// Lookalike audiences (lookalike.go): Lookalikes validates the spec (a list
// or rule seed of the same advertiser, percent 1..10), creates the audience
// in status building and builds it in one background goroutine, one build at
// a time: the seed's members, lookalike.Build over the population, then the
// members replaced exactly (new ones added first, the rest removed), with
// progress, the quality report and built_at in the audience's "lookalike"
// block. Maintain queues a rebuild daily, an hour after a failure, or when
// the seed's size moved by more than 10 %; a build a stop interrupted is
// marked failed at the next start and retried. Dependencies run one way:
// audience imports lookalike, which imports no Chaser package.
//
// Site events and rule audiences (events.go, profile.go, rules.go,
// segments.go): RecordEvent keeps a compact binary profile per advertiser and
// user (recent events, counts per type, RFM totals, product counters) and
// stores identity links; rule audiences hold their members in exact
// lock-free sets (Snapshot.Contains consults them), re-evaluated at each of a
// user's events, when a time window passes (SweepRules), over stored
// profiles when a rule is created (back-fill) and at start. Estimate sizes an
// unsaved rule over the stored profiles.
//
// Keys (see package store): "aud/<id>" audience metadata (JSON),
// "mem/<id>/<pseudonym>" membership (value: expiry in unix seconds, 0 = none,
// then the id kind), "auj/<id>/<job>" upload jobs (JSON), "prf/<adv>/<p>"
// user profiles (binary, first byte the version), "lnk/<p>/<q>" identity
// links (both directions; value: the kind of q), "ers/<p>" erasures (value:
// unix seconds).
package audience
