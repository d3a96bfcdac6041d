package core

import (
	"context"
	"sync"
	"time"
)

// registryTTL is how long the process' copy of the scope and group registries
// is used before it is read again. Every change of a registry drops the copy
// at once (through the change feed); the lifetime bounds how long a change
// whose notice was lost (Redis failed between the write and the publish)
// goes unseen, as the verification cache's lifetimes do.
const registryTTL = time.Second

// registryCopy is this process' copy of the scope registry (name →
// registration) and the group registry (by id), which every verification
// needs: with it, a verification that misses the cache reads only the
// user's slot and the throttles. It is used only while the store's change
// feed is followed; it is dropped at every registry change and whenever the
// subscription is lost. It does not depend on the verification cache: an
// instance with the cache off keeps it too.
type registryCopy struct {
	mu      sync.Mutex
	live    bool
	gen     uint64 // bumped by every invalidation: a load older than it is not kept
	loading bool   // one verification is reading the registries
	scopes  map[string]string
	groups  map[string]Group
	expires time.Time
}

// Changed drops the copy when the registries changed ("").
func (c *registryCopy) Changed(userID string) {
	if userID != "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.scopes, c.groups = nil, nil
}

// Following drops the copy and makes it usable (ok) or not.
func (c *registryCopy) Following(ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = ok
	c.scopes, c.groups = nil, nil
}

// ChangesFollowed reports whether the store's change feed is subscribed: the
// copy of the registries (and the verification cache, when on) is in use.
func (s *Service) ChangesFollowed() bool {
	s.regs.mu.Lock()
	defer s.regs.mu.Unlock()
	return s.regs.live
}

// registries returns the scope and group registries from the copy, reading
// them first when the copy is empty or old; ok is false when the copy is not
// usable (the change feed is not followed, another verification is reading
// them, or the read failed): the caller reads them with the record then. The
// maps are shared: read them, never write them.
func (s *Service) registries(ctx context.Context) (scopes map[string]string, groups map[string]Group, ok bool) {
	c := s.regs
	now := s.now()
	c.mu.Lock()
	switch {
	case !c.live || c.loading:
		c.mu.Unlock()
		return nil, nil, false
	case c.scopes != nil && now.Before(c.expires):
		scopes, groups = c.scopes, c.groups
		c.mu.Unlock()
		return scopes, groups, true
	}
	c.loading = true
	gen := c.gen
	c.mu.Unlock()

	var list []Scope
	var serr, gerr error
	var wg sync.WaitGroup
	wg.Go(func() { list, serr = s.store.Scopes(ctx) })
	groups, gerr = s.store.Groups(ctx)
	wg.Wait()
	ok = serr == nil && gerr == nil
	if ok {
		scopes = make(map[string]string, len(list))
		for _, sc := range list {
			scopes[sc.Name] = sc.Reg
		}
		if groups == nil {
			groups = map[string]Group{}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loading = false
	if ok && c.live && gen == c.gen {
		c.scopes, c.groups, c.expires = scopes, groups, now.Add(registryTTL)
	}
	return scopes, groups, ok
}

// readAuth is the store's ReadAuth for a verification: lean records, the
// registries from the process' copy and the failure throttles from its set of
// those over their rate, each when it is usable, so that Redis reads only the
// user's slot.
func (s *Service) readAuth(ctx context.Context, q AuthQuery) (AuthRecord, error) {
	q.Lean = true // a verification reads nothing else of the records
	over, overKnown := s.over.retryAfter(q.Throttles)
	if overKnown {
		q.Throttles = nil
	}
	scopes, groups, ok := s.registries(ctx)
	if ok {
		q.SkipRegistries = true
	}
	rec, err := s.store.ReadAuth(ctx, q)
	if err != nil {
		return rec, err
	}
	if ok {
		rec.Scopes, rec.Groups = scopes, groups
	}
	if overKnown {
		rec.RetryAfter = over
	}
	return rec, nil
}

// changeSinks delivers a change feed's reports to each sink in turn. It is
// used by pointer: a feed compares the sinks it holds.
type changeSinks struct{ sinks []ChangeSink }

func (cs *changeSinks) Changed(userID string) {
	for _, c := range cs.sinks {
		c.Changed(userID)
	}
}

func (cs *changeSinks) Following(ok bool) {
	for _, c := range cs.sinks {
		c.Following(ok)
	}
}

func (cs *changeSinks) Throttled(key string, retryAfter time.Duration) {
	for _, c := range cs.sinks {
		if t, ok := c.(ThrottleSink); ok {
			t.Throttled(key, retryAfter)
		}
	}
}
