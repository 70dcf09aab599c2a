// Package admin owns the admin port: the JSON REST API campaign managers and
// advertisers use (advertisers and keys, campaigns, audiences and member
// uploads, product feeds), its authentication (Bearer keys: the admin key
// sees everything, an advertiser key only its own advertiser; other tenants'
// resources answer 404), and operations endpoints (/metrics, /healthz).
//
// Handlers translate HTTP to the domain packages' Go APIs and map their
// typed errors to status codes; errors are {"error": "...", "field": "..."}.
package admin
