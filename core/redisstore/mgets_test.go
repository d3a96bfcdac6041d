package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// testReadAuthTogether checks the verification reads that go together
// (mgets.go): while the first ones are in flight, the next ones wait and then
// go as one pipeline, each answered with its own records; one whose caller
// leaves while it waits returns at once, and the others still get their answers.
func testReadAuthTogether(t *testing.T, opts *redis.UniversalOptions) {
	ctx := t.Context()
	client := redisstore.NewClient(opts)
	if _, ok := client.(*redis.ClusterClient); ok {
		t.Skip("on a Cluster each verification read goes alone")
	}
	var (
		hold     atomic.Bool // MGETs sent alone wait for release
		release  = make(chan struct{})
		held     sync.WaitGroup // the MGETs held
		together atomic.Int64   // pipelines of more than one MGET
	)
	client.AddHook(redistest.OnSend(func(cmds ...redis.Cmder) {
		mgets := 0
		for _, c := range cmds {
			if c.Name() == "mget" {
				mgets++
			}
		}
		switch {
		case mgets == 1 && len(cmds) == 1 && hold.Load():
			held.Done()
			<-release
		case mgets > 1:
			together.Add(1)
		}
	}))
	s := redisstore.New(client, loaded(redisstore.Options{Prefix: newPrefix()}))
	defer s.Close()
	now := time.Now().UTC()
	const n = 8
	users := make([]core.User, n)
	for i := range users {
		users[i] = core.User{ID: core.NewID(), Username: fmt.Sprintf("together%d", i), IsActive: true, CreatedAt: now, UpdatedAt: now}
		must(t, s.CreateUser(ctx, &users[i]))
		c := core.Credential{Type: core.KeyAuth, ID: fmt.Sprintf("together-key-%d", i), ConsumerID: users[i].ID, ConsumerKind: core.ConsumerUser,
			UserID: users[i].ID, IsActive: true, Secret: core.HashSHA256("x"), CreatedAt: now, UpdatedAt: now}
		must(t, s.CreateCredential(ctx, &c))
	}
	query := func(i int) core.AuthQuery {
		return core.AuthQuery{UserID: users[i].ID, Credential: &core.CredentialRef{Type: core.KeyAuth, ID: fmt.Sprintf("together-key-%d", i)}, SkipRegistries: true, Lean: true}
	}
	check := func(i int, r core.AuthRecord, err error) {
		if err != nil || r.User.ID != users[i].ID || r.Credential == nil || r.Credential.ID != query(i).Credential.ID {
			t.Errorf("verification read %d: %+v, %v", i, r, err)
		}
	}

	hold.Store(true)
	held.Add(redisstore.MGetFlights)
	var wg sync.WaitGroup
	for i := range redisstore.MGetFlights {
		wg.Go(func() { r, err := s.ReadAuth(ctx, query(i)); check(i, r, err) })
	}
	held.Wait() // the first ones are in flight, held
	hold.Store(false)
	for i := redisstore.MGetFlights; i < n; i++ {
		wg.Go(func() { r, err := s.ReadAuth(ctx, query(i)); check(i, r, err) })
	}
	waitFor(t, "the next reads to wait", func() bool { return redisstore.QueuedMGets(s) == n-redisstore.MGetFlights })

	// One more, whose caller leaves while it waits: it returns at once.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if _, err := s.ReadAuth(short, query(0)); core.KindOf(err) != core.Unavailable {
		t.Errorf("a read whose caller left while it waited: %v, want Unavailable", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("a read whose caller left while it waited returned after %v", d)
	}

	close(release)
	wg.Wait()
	if together.Load() == 0 {
		t.Error("the reads that waited did not go together")
	}
	// Then one alone again.
	r, err := s.ReadAuth(ctx, query(1))
	check(1, r, err)
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10 s", what)
		}
	}
}
