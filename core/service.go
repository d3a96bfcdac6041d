package core

import (
	"context"
	"time"
)

// Service is Gatehouse's domain logic: every admin, public and dialect surface
// changes data only through it. It validates input, applies the rules of SPEC §9
// and calls the Store.
type Service struct {
	store    Store
	models   *Models
	hasher   *Hasher
	keyring  *Keyring
	now      func() time.Time
	adminKey string // GATEHOUSE_ADMIN_KEY, held in memory only
}

// Options configures a Service.
type Options struct {
	// Models are the user, app and credential models; nil loads nothing and must
	// not happen outside tests of unrelated parts.
	Models *Models
	// Hasher hashes passwords; nil uses DefaultArgon2 with a CPU-sized cap.
	Hasher *Hasher
	// Keyring encrypts jwt key secrets; nil makes jwt credentials Unavailable.
	Keyring *Keyring
	// AdminKey is the bootstrap key from GATEHOUSE_ADMIN_KEY, if any.
	AdminKey string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// NewService returns a Service over store.
func NewService(store Store, opt Options) *Service {
	s := &Service{store: store, models: opt.Models, hasher: opt.Hasher, keyring: opt.Keyring, now: opt.Now, adminKey: opt.AdminKey}
	if s.hasher == nil {
		s.hasher = NewHasher(DefaultArgon2, 0)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Now returns the service's clock reading, in UTC and truncated to milliseconds,
// the precision every stored timestamp has.
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Ping reports whether the store can answer.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// Doctor reports (and with repair removes) leftovers of interrupted writes.
func (s *Service) Doctor(ctx context.Context, repair bool) (DoctorReport, error) {
	return s.store.Doctor(ctx, repair)
}

// checkList validates paging options (SPEC §9: count 1..1000, default 100).
func checkList(op string, opt *ListOptions) error {
	var c checker
	if opt.Count == 0 {
		opt.Count = DefaultPageSize
	}
	if opt.Count < 1 || opt.Count > MaxPageSize {
		c.fail("count", "must be between 1 and %d", MaxPageSize)
	}
	if opt.Start < 0 {
		c.fail("start", "must be 0 or a nextKey returned earlier")
	}
	return c.err(op)
}
