package core

import "fmt"

// VerifyCacheDump prints every entry of s's verification cache, its key and
// its value, for tests that look for what must not be there.
func VerifyCacheDump(s *Service) []string {
	c := s.vcache
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for el := c.lru.Front(); el != nil; el = el.Next() {
		v := el.Value.(*verdict)
		out = append(out, fmt.Sprintf("%x %+v", v.key, *v))
	}
	return out
}

// VerifyCacheOn reports whether s has a verification cache.
func VerifyCacheOn(s *Service) bool { return s.vcache != nil }

// VerifyWaiters returns how many verifications wait for another's verdict.
func VerifyWaiters(s *Service) int {
	c := s.vcache
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, f := range c.flights {
		n += f.waiters
	}
	return n
}
