package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gatehouse/gatehouse/core"
)

// epoch is where every fake clock starts.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)

// cmpOpts compare stored values: nil and empty slices and maps are alike.
var cmpOpts = []cmp.Option{cmpopts.EquateEmpty(), cmpopts.IgnoreFields(core.User{}, "Stored")}

// env is one subtest's store with its clock.
type env struct {
	t     *testing.T
	h     Harness
	s     core.Store
	clock *Clock
	ctx   context.Context
}

func newEnv(t *testing.T, h Harness) *env {
	t.Helper()
	clock := NewClock(epoch)
	return &env{t: t, h: h, s: h.New(t, clock), clock: clock, ctx: t.Context()}
}

// fresh returns another empty store on the same clock.
func (e *env) fresh() core.Store {
	e.t.Helper()
	return e.h.New(e.t, e.clock)
}

// newUser returns a user (not stored) whose names derive from name.
func (e *env) newUser(name string) core.User {
	now := e.clock.Now()
	return core.User{
		ID: core.NewID(), Username: name, Email: name + "@example.com", IsActive: true,
		Props:     map[string]any{"firstname": "F " + name},
		CreatedAt: now, UpdatedAt: now,
	}
}

// createUser stores a user named name and returns it.
func (e *env) createUser(name string) core.User {
	e.t.Helper()
	u := e.newUser(name)
	e.must(e.s.CreateUser(e.ctx, &u))
	return u
}

// newApp returns an app (not stored) of owner.
func (e *env) newApp(owner, name string) core.App {
	now := e.clock.Now()
	return core.App{
		ID: core.NewID(), Name: name, UserID: owner, RedirectURI: "https://app.example/cb",
		IsActive: true, Props: map[string]any{"description": "d " + name}, CreatedAt: now, UpdatedAt: now,
	}
}

// createApp stores an app of owner named name and returns it.
func (e *env) createApp(owner, name string) core.App {
	e.t.Helper()
	a := e.newApp(owner, name)
	e.must(e.s.CreateApp(e.ctx, &a))
	return a
}

// newCred returns a credential (not stored, without scopes) of the consumer: a
// user when userID is consumerID, else an app of userID. id is the keyId for
// keyed types.
func (e *env) newCred(typ core.CredentialType, id, consumerID, userID string) core.Credential {
	now := e.clock.Now()
	kind := core.ConsumerUser
	if consumerID != userID {
		kind = core.ConsumerApp
	}
	if !typ.Keyed() {
		id = consumerID
	}
	c := core.Credential{
		Type: typ, ID: id, ConsumerID: consumerID, ConsumerKind: kind, UserID: userID,
		IsActive: true,
		Secret:   "sha256:" + strings.Repeat("ab", 32), CreatedAt: now, UpdatedAt: now,
	}
	if typ == core.JWT {
		c.Algorithm = "HS256"
	}
	return c
}

// createCred stores a credential (see newCred) and returns it.
func (e *env) createCred(typ core.CredentialType, id, consumerID, userID string) core.Credential {
	e.t.Helper()
	c := e.newCred(typ, id, consumerID, userID)
	e.must(e.s.CreateCredential(e.ctx, &c))
	return c
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// wantKind fails unless err has kind k.
func wantKind(t *testing.T, err error, k core.Kind, what string) {
	t.Helper()
	if got := core.KindOf(err); got != k {
		t.Fatalf("%s: got kind %v (err %v), want %v", what, got, err, k)
	}
}

// wantConflict fails unless err is a Conflict whose message contains every part.
func wantConflict(t *testing.T, err error, what string, parts ...string) {
	t.Helper()
	wantKind(t, err, core.Conflict, what)
	msg := core.MessageOf(err)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("%s: Conflict message %q does not name %q", what, msg, p)
		}
	}
}

// diff fails with a (-want +got) diff when want and got differ.
func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

// keys returns the sorted raw keys of s.
func (e *env) keys(s core.Store) []string {
	e.t.Helper()
	return sortedKeys(e.h.Keys(e.t, s))
}

// sameKeys fails unless s holds exactly the keys of a fresh store that build
// fills: the proof that nothing was left behind.
func (e *env) sameKeys(s core.Store, build func(fresh core.Store)) {
	e.t.Helper()
	f := e.fresh()
	build(f)
	if d := cmp.Diff(e.keys(f), e.keys(s)); d != "" {
		e.t.Errorf("raw keys differ from a store holding only the expected data (-want +got):\n%s", d)
	}
}

// replayUser stores a copy of u in s (Number reassigned).
func replayUser(t *testing.T, s core.Store, u core.User) {
	t.Helper()
	u.Number = 0
	if err := s.CreateUser(t.Context(), &u); err != nil {
		t.Fatal(err)
	}
}

// replayApp stores a copy of a in s.
func replayApp(t *testing.T, s core.Store, a core.App) {
	t.Helper()
	a.Seq = 0
	if err := s.CreateApp(t.Context(), &a); err != nil {
		t.Fatal(err)
	}
}

// replayCred stores a copy of c in s.
func replayCred(t *testing.T, s core.Store, c core.Credential) {
	t.Helper()
	c.Seq = 0
	if err := s.CreateCredential(t.Context(), &c); err != nil {
		t.Fatal(err)
	}
}

// doctorClean fails unless Doctor reports nothing.
func (e *env) doctorClean(s core.Store) {
	e.t.Helper()
	r, err := s.Doctor(e.ctx, false)
	e.must(err)
	if n := len(r.StaleClaims) + len(r.DanglingIndex) + len(r.StaleGrants); n > 0 {
		e.t.Errorf("Doctor found %d leftovers, want none: %+v", n, r)
	}
}

// walk pages through a collection with list and returns every item.
func walk[T any](t *testing.T, count int, list func(start int64) (core.Page[T], error)) []T {
	t.Helper()
	var out []T
	var start int64
	for range 10_000 {
		p, err := list(start)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > count {
			t.Fatalf("page of %d items, want at most %d", len(p.Items), count)
		}
		out = append(out, p.Items...)
		if p.NextKey == 0 {
			return out
		}
		if p.NextKey <= start {
			t.Fatalf("NextKey %d does not move past start %d", p.NextKey, start)
		}
		start = p.NextKey
	}
	t.Fatal("paging does not end")
	return nil
}

// name returns a per-index name.
func name(prefix string, i int) string { return fmt.Sprintf("%s%d", prefix, i) }
