// Package memo owns Table, the bid path's memo of recent answers: a fixed
// array of slots, each holding the last key that hashed to it and its
// value, read and replaced without locks.
//
// It suits answers that are costly to compute and come back often with the
// same key, where a wrong answer is impossible and a lost one only costs a
// recomputation: consent strings (a user's comes back with each of their
// requests), native request templates, click signatures of the products a
// campaign shows again and again, a returning user's audience filters.
// An entry is replaced whole, never changed, so a reader sees either the
// old entry or the new one; two keys sharing a slot evict each other.
package memo
