package redisstore

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
