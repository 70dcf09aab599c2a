// Package admin owns the admin port: the JSON REST API campaign managers and
// advertisers use (advertisers and keys, campaigns, audiences and member
// uploads, product feeds, privacy erasure), its access control and
// operations endpoints (/metrics, /healthz, /readyz, /openapi.yaml,
// /debug/pprof).
//
// One route table (server.go, table) lists every route with who may call
// it: no key, any key, the admin key, or a key of the path's advertiser.
// The admin key sees everything; an advertiser key sees only its own
// advertiser, and other tenants' resources answer 404. Keys are stored as
// hashes with a public id (auth.go); failed authentications are rate
// limited per client address. The OpenAPI document (openapi.yaml, embedded)
// is checked against the table by a test, and an authorization test walks
// the table with every kind of caller.
//
// Handlers translate HTTP to the domain packages' Go APIs and map their
// typed errors to status codes; errors are {"error": "...", "field": "..."}.
// Lists are paginated by id cursor (page.go).
package admin
