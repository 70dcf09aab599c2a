// Package pacing owns money and frequency: bid pricing, the spend ledger fed
// by signed win/billing/loss notices (idempotent: each auction counts once,
// however often its notice comes), budget checks on the bid path, and the
// pacing state of each campaign. Spend is kept in integer micros and
// persisted under the "pac/" prefix so a restart loses no recorded spend.
package pacing
