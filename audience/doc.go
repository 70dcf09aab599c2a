// Package audience owns who a user is and which audiences they belong to:
// identifier types and their normalisation (e-mail, phone, mobile ad id,
// Chaser's cookie id, exchange ids), pseudonymisation under CHASER_SECRET,
// list audiences and their member uploads, site events and user profiles,
// and the in-memory bloom filters the bid path asks "is this user in audience
// X?". Only pseudonyms are stored, held in filters or logged.
//
// Readers on the bid path never lock: they load an immutable *Snapshot from
// an atomic.Pointer; writers build a new snapshot and swap it in.
//
// Keys (see package store): "aud/<id>" audience metadata (JSON),
// "mem/<id>/<pseudonym>" membership (value: expiry, unix seconds, 0 = none),
// "prf/<adv>/<pseudonym>" user profile.
package audience
