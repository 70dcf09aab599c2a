// Package lookalike owns lookalike audiences: the population of users Chaser
// sees in the bid stream and on advertisers' sites, described by sparse
// hashed features and kept in Pebble under "lk/"; the model that learns what
// sets a seed audience apart from that population; the expansion (the N %
// of the population most like the seed); and the quality report that says
// whether the expansion is any better than a random sample.
//
// It imports no other Chaser package. Identifiers arrive already
// pseudonymised (UserID is a keyed hash); nothing here sees a raw id.
//
// # API
//
//	pop, err := lookalike.OpenPopulation(db, lookalike.PopulationOptions{}) // defaults below
//	pop.Observe(uid, lookalike.Observation{Domain: ..., Categories: ..., Country: ..., Hour: ...}) // bid path
//	pop.ObserveSiteEvent(uid, "adv_1", "add_to_cart", "shoes")                                     // pixel / events
//	pop.Flush(); pop.Size(); pop.Stats()
//	removed, err := pop.Expire() // periodically: users not seen within TTL
//	err = pop.Erase(uid)         // privacy: at once, synced
//	res, err := lookalike.Build(ctx, pop, seed, lookalike.BuildOptions{Percent: 5, RandSeed: 1})
//	res.Members  // the expansion, most seed-like first (then the seed, with IncludeSeed)
//	res.Quality  // SeedSize, SeedInPopulation, PopulationSize, Expansion, HeldOut,
//	             // HeldOutRecall, RandomRate, Lift, AUC, Note
//	pop.Close()  // before closing db
//
// Observe and ObserveSiteEvent are for the bid path: they never block, hold
// no lock, start no goroutine and allocate nothing (BenchmarkObserve). Observe
// keeps SampleRate of its calls (default 10 %; calls are sampled, not users,
// so everyone seen often enough is in the population); it hashes the
// observation's features on the caller's goroutine into a fixed-size value
// and offers it to a bounded queue, dropping it (counted in Stats.Dropped)
// when the queue is full. One background writer drains the queue, merges
// each user's new features into the stored record in Pebble batches
// (read-modify-write; NoSync) and keeps the user count. Erase first writes
// what is queued, then deletes the user with a synced write, so a queued
// observation cannot bring the user back; the caller must stop observing an
// erased user (audience keeps the erase list). Expire scans without holding
// up the writer and deletes in re-checked batches.
//
// Build refuses, with errors.Is-able errors whose messages state the limit:
// ErrSeedTooSmall when fewer than MinSeedMembers (100) seed members are
// active in the population; ErrPopulationTooThin when the population has
// fewer than MinPopulation (1000) active users or fewer than
// MinPopulationPerSeed (10) times the seed's present members (so the
// expansion, at most 10 % of the population, is never mostly the seed's own
// kind by construction); ErrInvalidOptions for Percent outside 1..10 or
// HoldoutFraction outside (0, 0.5]. Build is deterministic for a RandSeed
// (seed order and duplicates do not matter) and honours ctx.
//
// # Features and storage
//
// A user's features are 32-bit hashes (FNV-1a with a namespace byte,
// ASCII-case-folded, murmur-finalised; pinned by a test since they are
// stored) of: site domain ("www." stripped) or app bundle; each IAB content
// category and its parent ("IAB12-3" and "IAB12"); country; country+region;
// device type; OS; the 4-hour bucket of the local hour; and from site
// events, the advertiser, advertiser+event, the product category, and
// advertiser+category. The value at "lk/u/<16-byte pseudonym>" is
// version(1) | last seen (unix s, 8) | n (1) | n × (id 4, count 2, last day
// 2), sorted by id: at most MaxFeaturesPerUser (default 64) features, the
// least recently (then least often) seen evicted first, features older than
// TTL dropped when the user is next written. "lk/m/size" holds the user
// count, updated in the same batches. TTL defaults to 30 days. Nothing is
// written outside "lk/".
//
// Build reads the population once through a Pebble iterator (a consistent
// snapshot; the writer goes on meanwhile), skipping users and features older
// than TTL, into a compact in-memory form: the pseudonyms in key order, and
// every user's features folded to 2^20 buckets and packed into one arena of
// 4 MiB chunks (4 bytes a feature, about 21 bytes a user besides the
// pseudonym) — no map or slice per user.
//
// # The model, and why
//
// Positive-unlabeled logistic regression: seed members are positives, the
// rest of the population unlabeled negatives, trained by FTRL-Proximal
// (per-coordinate learning rates, L1 = 1 to keep only the features that
// separate the seed, L2 = 1, α = 0.05, β = 1) over 4 epochs, each of all
// positives and a fresh random sample of 4× as many unlabeled users, so
// training costs O(seed), not O(population). Features seen on fewer than 5
// users are ignored. Every user is scored by the linear log-odds (in
// parallel; 2^20 float32 weights), the non-seed users are ranked (ties by
// pseudonym order), and the top Percent % of the population is the
// expansion.
//
// Quality is measured honestly: HoldoutFraction (default 20 %) of the seed's
// present members is held out, a model is trained on the rest, and everyone
// but the training seed is ranked. HeldOutRecall is the share of held-out
// members inside an expansion of the requested size, RandomRate the
// expansion's share of those candidates, Lift their ratio, and AUC the
// chance that a held-out member outranks a random non-seed user. Then the
// audience itself is built by a second model trained on the whole seed
// (the reported quality is thus slightly pessimistic). Note says "no
// structure: lift near 1 …" when lift < 1.5, AUC < 0.55 or the held-out
// members found are within two standard deviations of chance.
//
// Three models were measured on the synthetic populations of the tests
// (interest groups drive both features and seed membership; a "weak" world
// has fewer group visits, 10 % instead of 30 %, and fewer requests per user,
// 4 instead of 6): 100 k users, a 5 k seed (+ 250 absent ids), a 5 %
// expansion, 20 % held out, mean of 3 hold-out draws (BenchmarkModels,
// command in BENCHMARKS.md):
//
//	model                         world     lift   AUC    build
//	logistic regression (FTRL)    planted   9.2    0.784  0.19 s
//	naive Bayes (feature lift)    planted   9.8    0.782  0.11 s
//	MinHash LSH, 32 bands × 2     planted   8.7    0.756  1.1 s
//	logistic regression (FTRL)    weak      5.3    0.668  0.17 s
//	naive Bayes (feature lift)    weak      4.5    0.645  0.08 s
//	MinHash LSH, 32 bands × 2     weak      4.5    0.652  1.0 s
//
// (A perfect oracle of the planted groups reaches lift 12.5 and AUC 0.83 on
// the 20 k test world; the seed is 30 % random users.) Logistic regression
// is chosen: it is best where the signal is weak, which is the common case
// (most users show up a few times), because it weighs correlated features
// (a domain, its categories and their parents) jointly where naive Bayes
// counts them again for each; it is within noise of naive Bayes where the
// signal is strong; it costs O(seed) to train. MinHash/LSH similarity
// ranks no better, costs 5× the time (k hash functions per feature) and
// needs a bucket table of bands × users entries, which at 2 M users is
// gigabytes. At the target size, 100 k seed over 2 M users on this 2-core
// machine, a build takes SEE-BENCHMARKS with a peak Go heap of SEE-BENCHMARKS,
// and finds held-out seed members at 10.2× the random rate (AUC 0.80).
//
// # Left for later
//
// Build holds the whole active population in memory for its duration
// (about 200 bytes a user at 22 features); run one build at a time. A
// population far beyond 10 M users would want a sampled build. Site events
// and bid-stream observations of the same person link only through the
// pseudonym the caller passes (audience resolves cookie ↔ e-mail links).
package lookalike
