package redisstore

import (
	"context"
	"time"
)

// InterruptNext makes the next create or delete of s stop right after its write in
// the entity's slot and return an error, leaving claims, locators and index
// entries as a process that died there would.
func InterruptNext(s *Store) { s.interrupt.Store(true) }

// HasKeyShape reports whether key, without the store's prefix, has a shape of
// the layout that the package comment documents.
func HasKeyShape(s *Store, key string) bool {
	_, ok := s.k.parseKey(s.k.p + key)
	return ok
}

// UserKey is the key of the user record of id.
func UserKey(s *Store, id string) string { return s.k.user(id) }

// ClaimBucket returns the key (without the store's prefix) and the field of
// the claim of kind and name.
func ClaimBucket(s *Store, kind, name string) (key, field string) {
	c := s.newClaim(kind, name, "")
	return c.bucket[len(s.k.p):], c.name
}

// ReadClaimLayout makes s read the marker P layout:claims now, as it does
// with its first lookup and every minute until it has seen it.
func ReadClaimLayout(ctx context.Context, s *Store) error { return s.readLayout(ctx) }

// ReadsOldClaims reports whether s still reads the claim keys of the layout
// before claim buckets.
func ReadsOldClaims(s *Store) bool { return s.oldClaims() }

// QueuedMGets is how many verification reads of s wait for a flight to land.
func QueuedMGets(s *Store) int {
	s.mgets.mu.Lock()
	defer s.mgets.mu.Unlock()
	return len(s.mgets.queue)
}

// MGetFlights is how many verification reads of s go alone before the next
// ones wait (mgetFlights).
const MGetFlights = mgetFlights

// ParseClaim splits a claim value (either form) into its owner and time.
func ParseClaim(v string) (owner string, at time.Time, ok bool) { return parseClaim(v) }

// CountNames counts the username index's names with the prefix as a
// username filter's Total does, reading per buckets a call.
func CountNames(ctx context.Context, s *Store, prefix string, per int) (int64, error) {
	p := usernameIndexKey(prefix)
	return s.nameCountBy(ctx, "["+p, "["+p+"\xff", per)
}
