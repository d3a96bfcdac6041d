package redisstore_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// memoryUsers is how many users TestMemoryPerUser writes: enough that the
// share of the global indexes and the server's own noise average out.
// GATEHOUSE_MEMORY_USERS sets another number (docs/scale.md's 200 000).
var memoryUsers = func() int {
	if n, err := strconv.Atoi(os.Getenv("GATEHOUSE_MEMORY_USERS")); err == nil && n > 0 {
		return n
	}
	return 2000
}()

// maxBytesPerUser bounds the Redis memory of a user with one key-auth
// credential, everything it costs included (its keys, its claims, its share of
// the global indexes and of the keyspace's tables): what the layout reaches,
// with a little room (a size class more on any key fails it). The product's
// target is under 1 KiB; docs/scale.md has the breakdown and what is left.
// It was 2176 before the compact records (1,770 bytes measured after them),
// 1792 before a user's own consumer list went (1,579 after), 1600 before a
// credential record left out its type (1,546 after), 1568 before the claims
// moved into claim buckets (1,569 after: at 2,000 users nearly every bucket
// holds one claim, which costs a little more than a key of its own; the
// buckets pay off with many users, docs/scale.md), 1600 before the list
// indexes went into buckets (1,382 after), 1408 before the username index
// went into name buckets (1,253 after), 1280 before claim values kept their
// time in base 36 milliseconds (1,220 after), 1248 before the short records
// (1,114 after; 989 at 200,000 users).
const maxBytesPerUser = 1144

// TestMemoryPerUser writes users with one key-auth credential each, as the
// admin API and gatehouse seed do, on a real redis-server, and measures what
// one costs: used_memory before and after, and MEMORY USAGE of each key of
// one user. It fails when a user costs more than maxBytesPerUser or owns more
// keys than the layout gives it.
func TestMemoryPerUser(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	opts, err := redisstore.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := redisstore.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	s := redisstore.New(client, loaded(redisstore.Options{Prefix: "gh:"}))
	ctx := t.Context()

	// One user first, so the global keys exist before the baseline.
	createSeedUser(t, s, 0)
	before := redistest.UsedMemory(t, client)
	var last core.User
	for i := 1; i <= memoryUsers; i++ {
		last, _ = createSeedUser(t, s, i)
	}
	after := redistest.UsedMemory(t, client)
	perUser := float64(after-before) / float64(memoryUsers)

	// The keys one user costs: those of its slot and its claims. The global
	// indexes are shared, each user holding one member.
	var own []string
	it := client.Scan(ctx, 0, "gh:u:{"+last.ID+"}*", 10000).Iterator()
	for it.Next(ctx) {
		own = append(own, it.Val())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(own)
	userKeys := own
	var b strings.Builder
	total := int64(0)
	fmt.Fprintf(&b, "%-6s %-9s %-8s %s\n", "bytes", "type", "encoding", "key")
	for _, k := range userKeys {
		n, err := client.MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", k, err)
		}
		typ := client.Type(ctx, k).Val()
		enc := client.ObjectEncoding(ctx, k).Val()
		total += n
		fmt.Fprintf(&b, "%-6d %-9s %-8s %s\n", n, typ, enc, strings.ReplaceAll(k, last.ID, "<uid>"))
	}
	// The bucketed list indexes and the username index: every bucket, counter
	// and directory, shared by all.
	for _, k := range []string{"gh:{idx:users}:*", "gh:{idx:creds}:*", "gh:{ix}:un*"} {
		var n int64
		var keys []string
		it := client.Scan(ctx, 0, k, 10000).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		if err := it.Err(); err != nil || len(keys) == 0 {
			t.Fatalf("SCAN %s: %d keys, %v", k, len(keys), err)
		}
		for _, key := range keys {
			m, err := client.MemoryUsage(ctx, key, 0).Result()
			if err != nil {
				t.Fatalf("MEMORY USAGE %s: %v", key, err)
			}
			n += m
		}
		slices.Sort(keys)
		share := float64(n) / float64(memoryUsers+1)
		fmt.Fprintf(&b, "%-6.0f %-9s %-8s %s (its share: %d bytes in %d keys / %d users)\n", share, "zset", client.ObjectEncoding(ctx, keys[0]).Val(), k, n, len(keys), memoryUsers+1)
		total += int64(share)
	}
	// The claims: the user's share of the claim buckets of its kind.
	for _, kind := range []string{"username", "key-auth"} {
		var n, buckets int64
		encodings := map[string]int{}
		it := client.Scan(ctx, 0, "gh:cb:"+kind+":*", 10000).Iterator()
		for it.Next(ctx) {
			m, err := client.MemoryUsage(ctx, it.Val(), 0).Result()
			if err != nil {
				t.Fatalf("MEMORY USAGE %s: %v", it.Val(), err)
			}
			n += m
			buckets++
			encodings[client.ObjectEncoding(ctx, it.Val()).Val()]++
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		share := float64(n) / float64(memoryUsers+1)
		fmt.Fprintf(&b, "%-6.0f %-9s %-8v gh:cb:%s:{<n>} (its share: %d bytes / %d users in %d buckets)\n", share, "hash", encodings, kind, n, memoryUsers+1, buckets)
		total += int64(share)
	}
	t.Logf("one user with one key-auth credential: %d keys of its own; MEMORY USAGE %d bytes with its index and claim bucket shares; used_memory %.0f bytes per user over %d users\n%s",
		len(userKeys), total, perUser, memoryUsers, b.String())

	if want := 3; len(userKeys) != want {
		t.Errorf("a user with one key owns %d keys, want %d: %v", len(userKeys), want, userKeys)
	}
	if perUser > maxBytesPerUser {
		t.Errorf("a user with one key-auth credential costs %.0f bytes of Redis memory (used_memory), more than %d", perUser, maxBytesPerUser)
	}
}

// createSeedUser writes user i with one key-auth credential as the admin API
// would: a username, firstname and lastname, and a generated key.
func createSeedUser(t *testing.T, s *redisstore.Store, i int) (core.User, core.Credential) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	name := "seed-" + strconv.Itoa(i)
	u := core.User{ID: core.NewID(), Username: name, IsActive: true, CreatedAt: now, UpdatedAt: now,
		Props: map[string]any{"firstname": "Seed", "lastname": name}}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	c := core.Credential{Type: core.KeyAuth, ID: core.NewSecret("", 16), ConsumerID: u.ID, ConsumerKind: core.ConsumerUser,
		UserID: u.ID, IsActive: true, Secret: core.HashSHA256(core.NewSecret("", 32)), CreatedAt: now, UpdatedAt: now}
	if err := s.CreateCredential(ctx, &c); err != nil {
		t.Fatal(err)
	}
	return u, c
}
