// Package store owns Chaser's single Pebble database: opening it with the
// options Chaser needs, and the key space. Every domain package keeps its data
// under one key prefix registered here, so a scan of one concept never reads
// another's keys and a data-dir inspection can tell what each key is.
//
// Key prefixes (first bytes of every key):
//
//	"adv/"  advertisers             (admin)
//	"key/"  API key hashes          (admin)
//	"cmp/"  campaigns               (campaign)
//	"aud/"  audience metadata       (audience)
//	"mem/"  audience memberships    (audience)
//	"auj/"  audience upload jobs    (audience)
//	"prf/"  user profiles, events   (audience)
//	"lnk/"  identity links          (audience)
//	"ers/"  erase log               (audience)
//	"prd/"  product feeds           (creative)
//	"pac/"  spend ledger, notices   (pacing)
//	"frq/"  frequency counters      (pacing)
//	"lk/"   lookalike population    (lookalike)
//	"syn/"  exchange id mappings    (audience, cookie sync)
package store
