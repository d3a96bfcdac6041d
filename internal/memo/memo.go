// Package memo is a bounded, process-local memo keyed by strings: what is
// derived from a value alone (a record's decoding, a view's encoding), kept by
// the value's exact bytes, so that it is correct by construction (a changed
// value is another key) and needs no invalidation.
package memo

import "sync"

// Memo keeps at most 2 × size entries in two generations: when the current one
// is full it becomes the old one and the old one is dropped; a hit in the old
// one moves to the current one. The zero value is not usable: use New. Safe for
// concurrent use. Its values are shared by every caller that gets them: they
// must not be changed.
type Memo[V any] struct {
	mu       sync.Mutex
	size     int
	cur, old map[string]V
}

// New returns an empty memo of at most 2 × size entries.
func New[V any](size int) *Memo[V] {
	return &Memo[V]{size: max(size, 1), cur: map[string]V{}}
}

// Get returns the value kept for key.
func (m *Memo[V]) Get(key string) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.cur[key]; ok {
		return v, true
	}
	v, ok := m.old[key]
	if ok {
		m.put(key, v)
	}
	return v, ok
}

// Put keeps v for key.
func (m *Memo[V]) Put(key string, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.put(key, v)
}

func (m *Memo[V]) put(key string, v V) {
	if len(m.cur) >= m.size {
		m.old, m.cur = m.cur, make(map[string]V, m.size)
	}
	m.cur[key] = v
}

// Len returns the number of entries kept.
func (m *Memo[V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.cur) + len(m.old)
}
