// Package campaign owns the campaign model: advertisers, campaigns, their
// validation, persistence (Pebble keys "adv/" and "cmp/") and the immutable
// snapshot of live campaigns the bid path reads without locking.
//
// Money is integer micros of the campaign currency; the JSON form spoken by
// the admin API uses CPM and budgets in currency units and is converted at
// the edge of this package (MarshalJSON / UnmarshalJSON).
package campaign
