package core

import (
	"sync"
	"time"
)

// boundedCache is a small concurrent map with a size bound and optional expiry.
// When full, an arbitrary entry makes room: every use here is safe with any
// eviction (locators are checked against the records they lead to; a forgotten
// argon2 success only costs one more hash).
type boundedCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]cacheEntry
}

type cacheEntry struct {
	value   string
	expires time.Time // zero: never
}

func newBoundedCache(max int) *boundedCache {
	return &boundedCache{max: max, entries: make(map[string]cacheEntry)}
}

// get returns the value under key, if present and not expired at now.
func (c *boundedCache) get(key string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return "", false
	}
	if !e.expires.IsZero() && !now.Before(e.expires) {
		delete(c.entries, key)
		return "", false
	}
	return e.value, true
}

// put stores value under key until expires (zero: no expiry).
func (c *boundedCache) put(key, value string, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k := range c.entries { // Go's map order is random enough to spread evictions
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = cacheEntry{value: value, expires: expires}
}

// del forgets key.
func (c *boundedCache) del(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}
