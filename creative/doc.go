// Package creative owns what an ad shows: each advertiser's product
// catalogue (feeds uploaded as CSV or JSON lines, validated row by row,
// replaced atomically, persisted under the "prd/" prefix), the recommender
// that picks the products for a user at bid time, the templates that render
// banner HTML and native responses, and signed click URLs that only ever
// redirect to a product's own landing page.
//
// The bid path reads catalogues through lock-free snapshots
// (atomic.Pointer); feed uploads build a new snapshot and swap it in.
package creative
