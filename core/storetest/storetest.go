// Package storetest is the conformance suite of core.Store (as testing/fstest is
// for fs.FS): every backend runs Run and must pass all of it. The suite drives
// the store through its interface only, but for three backend hooks of Harness:
// listing raw keys (to prove a failed or concurrent write leaves nothing behind),
// planting a claim as a crashed create would leave it, and interrupting a write
// right after its slot write.
package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// StaleAfter is the claim staleness window the suite assumes: a claim
// whose owner does not hold the name is free once this old, and blocks before.
const StaleAfter = time.Minute

// Harness adapts a backend to the suite.
type Harness struct {
	// New returns an empty store, isolated from every other store New returns,
	// that tells time (claims and their staleness) with clock; a nil clock means the
	// backend's own (Redis TIME). New registers the store's Close with t.Cleanup.
	New func(t *testing.T, clock core.Clock) core.Store

	// Keys lists the names of the raw keys the store s holds, in any order and
	// without its isolation prefix, so that the listings of two stores compare.
	Keys func(t *testing.T, s core.Store) []string

	// LeaveClaim plants a name claim in s exactly as a create that crashed between
	// its claim and its write would leave it.
	LeaveClaim func(t *testing.T, s core.Store, c Claim)

	// Interrupt, if set, makes the next CreateUser, CreateApp, CreateCredential,
	// CreateClient, CreateClientKey, DeleteUser, DeleteApp, DeleteCredential or
	// DeleteClient on s stop right after writing the
	// entity's own keys (its record, or their removal) and return an error, leaving
	// claims, locators and index entries as a process that died there would.
	// Without it the crash subtests are skipped.
	Interrupt func(t *testing.T, s core.Store)

	// NewLimiter, if set, returns the core.Limiter whose keys the Throttle of
	// s.ReadAuth reads, isolated from other stores' limiters as s is. Without it
	// the limiter subtest is skipped.
	NewLimiter func(t *testing.T, s core.Store) core.Limiter

	// FastForward, if set, makes d pass for the key expiries of s's backend
	// (PluginKV TTLs), whose clock does not move by itself (miniredis). Without it
	// the expiries follow the real clock and the suite sleeps d.
	FastForward func(t *testing.T, s core.Store, d time.Duration)
}

// Claim describes a unique-name claim for Harness.LeaveClaim.
type Claim struct {
	// Kind is a core.NameKind ("username", "email", "externalId",
	// "clientIdentifier"), "identity" or a keyed credential type ("key-auth", "jwt").
	Kind string
	// Name is the normalised name: core.UsernameKey of a username, core.EmailKey of
	// an email, "<provider>:<subject>" of an identity, core.ClientIdentifierName
	// of a client identifier, the externalId or the keyId as they are.
	Name string
	// Owner is the id of the user the claim names (who may not exist).
	Owner string
	// At is the claim time.
	At time.Time
}

// Clock is a settable core.Clock for tests. It is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
	hook func()
}

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time, then moves it forward by the step (see SetStep).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	t := c.now
	c.now = c.now.Add(c.step)
	hook := c.hook
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	return t
}

// SetHook makes every later Now call run f (nil: none) before it returns, so a
// test can act in the middle of a write.
func (c *Clock) SetHook(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hook = f
}

// SetStep makes every later Now call move the clock forward by d after reading
// it, so that any write that reads the clock twice seems to take d; 0 stops it.
func (c *Clock) SetStep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.step = d
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Run runs the conformance suite against the backend h describes. Subtests run in
// parallel, each on its own store from h.New.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Keys == nil || h.LeaveClaim == nil {
		t.Fatal("storetest: Harness needs New, Keys and LeaveClaim")
	}
	tests := []struct {
		name string
		f    func(*testing.T, Harness)
	}{
		{"Users/CRUD", testUsersCRUD},
		{"Users/Unique", testUsersUnique},
		{"Users/ConcurrentUsername", func(t *testing.T, h Harness) { testConcurrentCreate(t, h, "username") }},
		{"Users/ConcurrentEmail", func(t *testing.T, h Harness) { testConcurrentCreate(t, h, "email") }},
		{"Users/ConcurrentIdentity", func(t *testing.T, h Harness) { testConcurrentCreate(t, h, "identity") }},
		{"Identities", testIdentities},
		{"Identities/Update", testIdentitiesUpdate},
		{"Identities/Claims", testIdentityClaims},
		{"Expiring", testExpiring},
		{"Expiring/Doctor", testExpiringDoctor},
		{"Users/NameChange", testNameChange},
		{"Users/ConcurrentUpdate", testConcurrentUpdate},
		{"Users/Paging", testUsersPaging},
		{"Numbers/Kept", testKeptNumbers},
		{"Lists/Paging", testListPaging},
		{"Lists/Concurrency", testListConcurrency},
		{"Groups", testGroups},
		{"Groups/Members", testGroupMembers},
		{"Groups/DeleteRace", testGroupDeleteRace},
		{"Apps/CRUD", testApps},
		{"Apps/ByRedirectURI", testAppsByRedirectURI},
		{"Apps/ByRedirectURIDoctor", testRedirectURIDoctor},
		{"Concurrent/Names", testConcurrentNames},
		{"Apps/Paging", testAppsCredsPaging},
		{"Credentials/CRUD", testCredentials},
		{"Credentials/OnePerConsumer", testOnePerConsumer},
		{"DerivedState", testDerivedState},
		{"Delete/User", testDeleteUser},
		{"Delete/App", testDeleteApp},
		{"Claims", testClaims},
		{"Claims/Deadline", testDeadline},
		{"Claims/Overtaken", testOvertaken},
		{"Doctor", testDoctor},
		{"Interrupted", testInterrupted},
		{"Scopes", testScopes},
		{"AdminKeys", testAdminKeys},
		{"AdminKeys/ConcurrentFirst", testConcurrentFirstAdminKey},
		{"Sessions", testSessions},
		{"Sessions/Limit", testSessionsLimit},
		{"Sessions/Expiry", testSessionsExpiry},
		{"Sessions/Delete", testSessionsDelete},
		{"Sessions/TouchRace", testTouchRace},
		{"ReadAuth", testReadAuth},
		{"Locate", testLocate},
		{"Limiter", testLimiter},
		{"PluginKV", testKV},
		{"PluginKV/Concurrent", testKVConcurrent},
		{"PluginKV/TTL", testKVTTL},
		{"Clock", testClock},
		{"Unavailable", testUnavailable},
		{"Errors/NoEcho", testNoEcho},
		{"LinkedAccounts", testLinkedAccounts},
		{"LinkedAccounts/DeleteUserRace", testLinkedAccountsDeleteRace},
		{"LinkedAccounts/Unavailable", testLinkedUnavailable},
		{"LinkedAccounts/Selection", testLinkedSelection},
		{"Users/ClientIdentifier", testClientIdentifiers},
		{"Clients", testClients},
		{"Clients/Concurrent", testConcurrentClients},
		{"Clients/Doctor", testClientsDoctor},
		{"Versions", testVersions},
		{"Versions/Race", testVersionRace},
		{"Versions/Checks", testVersionChecks},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f(t, h)
		})
	}
}

// sortedKeys returns a sorted copy of keys.
func sortedKeys(keys []string) []string {
	out := slices.Clone(keys)
	slices.Sort(out)
	return out
}
