package redisstore

// InterruptNext makes the next create or delete of s stop right after its write in
// the entity's slot and return an error, leaving claims, locators and index
// entries as a process that died there would.
func InterruptNext(s *Store) { s.interrupt.Store(true) }
