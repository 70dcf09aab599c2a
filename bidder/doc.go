// Package bidder owns the public port: the fasthttp server that answers
// OpenRTB bid requests (POST /openrtb2/bid), win/billing/loss/impression
// notices, click redirects, and health checks. A bid request is decoded,
// validated, matched against lock-free snapshots of campaigns and audiences,
// priced, rendered and answered; every refusal is counted by reason.
//
// The package holds no state of its own beyond counters: campaigns,
// audiences, products and spend live in their domain packages.
package bidder
