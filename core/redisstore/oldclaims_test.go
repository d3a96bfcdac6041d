package redisstore_test

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// testOldClaims: claims written as keys of their own (P claim:<kind>:<name>,
// the layout before claim buckets) keep holding their names: every lookup
// finds them, a create of a name one holds for a live owner is Conflict and
// leaves nothing, a stale one of an owner that no longer holds the name is
// taken over, and a rename releases the old key. Doctor reports them, and
// its repair moves them into their buckets and writes the marker, after
// which lookups read no old key, in this process and in one started later.
func testOldClaims(t *testing.T, opts *redis.UniversalOptions, admin redis.UniversalClient) {
	ctx := t.Context()
	prefix := newPrefix()
	client := redisstore.NewClient(opts)
	olds := &oldReads{prefix: prefix}
	client.AddHook(redistest.OnSend(olds.count))
	s := redisstore.New(client, loaded(redisstore.Options{Prefix: prefix}))
	defer s.Close()

	uid, keyID := core.NewID(), "old-claim-key"
	stamp := `"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:07.123Z"`
	slot := prefix + "u:{" + uid + "}"
	set := func(key, val string) { t.Helper(); must(t, admin.Set(ctx, key, val, 0).Err()) }
	zadd := func(key, member string) {
		t.Helper()
		must(t, admin.ZAdd(ctx, key, redis.Z{Score: 1, Member: member}).Err())
	}
	held := uid + "|1741064767123000"
	set(slot, `{"number":1,"username":"olden","email":"olden@example.com","isActive":true,`+stamp+`}`)
	set(slot+":cred:key-auth:"+keyID, `{"id":"`+keyID+`","seq":1,"isActive":true,"s256":"`+
		strings.Repeat("A", 43)+`",`+stamp+`}`)
	zadd(slot+":creds", "key-auth:"+keyID)
	zadd(prefix+"idx:users", uid)
	zadd(prefix+"idx:creds", uid+"/key-auth/"+keyID)
	set(prefix+"seq:users", "1")
	set(prefix+"seq:creds", "1")
	set(prefix+"claim:username:olden", held)
	set(prefix+"claim:email:olden@example.com", held)
	set(prefix+"claim:key-auth:"+keyID, held)
	// A claim left long ago by a create whose user never was written.
	set(prefix+"claim:username:ghost", core.NewID()+"|1741064767123000")

	// Every lookup finds the old claims.
	email := "olden@example.com"
	lookups := func(when string) {
		t.Helper()
		if got, err := s.LocateUser(ctx, core.NameUsername, "Olden"); err != nil || got != uid {
			t.Errorf("%s: LocateUser(username) = %q, %v; want %s", when, got, err, uid)
		}
		if got, err := s.UserByName(ctx, core.NameEmail, email); err != nil || got.ID != uid {
			t.Errorf("%s: UserByName(email) = %q, %v; want %s", when, got.ID, err, uid)
		}
		if got, err := s.LocateCredential(ctx, core.KeyAuth, keyID); err != nil || got != uid {
			t.Errorf("%s: LocateCredential = %q, %v; want %s", when, got, err, uid)
		}
		if got, err := s.GetCredential(ctx, core.KeyAuth, keyID); err != nil || got.UserID != uid {
			t.Errorf("%s: GetCredential = %+v, %v; want the user's", when, got, err)
		}
	}
	lookups("old claim keys")
	if olds.n.Load() == 0 {
		t.Error("the lookups read no old claim key before the repair")
	}

	// A name an old key holds for its live owner is refused, and the
	// refused create leaves no claim of its own.
	now := time.Now().UTC().Truncate(time.Millisecond)
	user := func(name, email string) core.User {
		return core.User{ID: core.NewID(), Username: name, Email: email, IsActive: true, CreatedAt: now, UpdatedAt: now}
	}
	bucketHas := func(kind, name string) bool {
		key, field := redisstore.ClaimBucket(s, kind, name)
		return admin.HExists(ctx, prefix+key, field).Val()
	}
	for _, u := range []core.User{user("olden", ""), user("other", "Olden@Example.com")} {
		err := s.CreateUser(ctx, &u)
		if core.KindOf(err) != core.Conflict {
			t.Errorf("CreateUser of %q, %q held by old claim keys: %v, want Conflict", u.Username, u.Email, err)
		}
		if bucketHas("username", u.Username) {
			t.Errorf("the refused create of %q left its username claim", u.Username)
		}
	}
	b := user("bee", "")
	must(t, s.CreateUser(ctx, &b))
	dup := core.Credential{Type: core.KeyAuth, ID: keyID, ConsumerID: b.ID, ConsumerKind: core.ConsumerUser, UserID: b.ID,
		IsActive: true, Secret: core.HashSHA256("x"), CreatedAt: now, UpdatedAt: now}
	if err := s.CreateCredential(ctx, &dup); core.KindOf(err) != core.Conflict {
		t.Errorf("CreateCredential of a keyId held by an old claim key: %v, want Conflict", err)
	}
	if bucketHas("key-auth", keyID) {
		t.Error("the refused credential left its keyId claim")
	}
	// A stale old claim of an owner that holds nothing is taken over.
	ghost := user("ghost", "")
	must(t, s.CreateUser(ctx, &ghost))
	if got, err := s.LocateUser(ctx, core.NameUsername, "ghost"); err != nil || got != ghost.ID {
		t.Errorf("LocateUser of a name taken over from a stale old claim = %q, %v; want %s", got, err, ghost.ID)
	}
	// Racing creates of a name whose old key is stale: exactly one wins.
	set(prefix+"claim:username:racer", core.NewID()+"|1741064767123000")
	var wg sync.WaitGroup
	var wins atomic.Int64
	var winner atomic.Value
	for range 8 {
		wg.Go(func() {
			r := user("racer", "")
			switch err := s.CreateUser(ctx, &r); {
			case err == nil:
				wins.Add(1)
				winner.Store(r.ID)
			case core.KindOf(err) != core.Conflict:
				t.Errorf("a racing create: %v", err)
			}
		})
	}
	wg.Wait()
	if got, err := s.LocateUser(ctx, core.NameUsername, "racer"); wins.Load() != 1 || err != nil || got != winner.Load() {
		t.Errorf("8 creates racing over a stale old claim: %d won; the name's owner %q, %v", wins.Load(), got, err)
	}

	// A changed email releases its old claim key, and the name is free.
	_, err := s.UpdateUser(ctx, uid, func(u *core.User) error { u.Email = "olden2@example.com"; return nil })
	must(t, err)
	if n := admin.Exists(ctx, prefix+"claim:email:olden@example.com").Val(); n != 0 {
		t.Error("a changed email left its old claim key")
	}
	email = "olden2@example.com"
	must(t, s.CreateUser(ctx, new(user("third", "olden@example.com"))))
	lookups("after the creates")

	// Doctor reports the old keys; its repair moves them and writes the marker.
	rep, err := s.Doctor(ctx, false)
	must(t, err)
	for _, key := range []string{"claim:username:olden", "claim:key-auth:" + keyID} {
		if !slices.ContainsFunc(rep.DanglingIndex, func(e string) bool { return strings.HasPrefix(e, key+" ") }) {
			t.Errorf("Doctor: DanglingIndex %q, want %s", rep.DanglingIndex, key)
		}
	}
	if !redisstore.ReadsOldClaims(s) || admin.Exists(ctx, prefix+"layout:claims").Val() != 0 {
		t.Error("Doctor without repair wrote the marker")
	}
	_, err = s.Doctor(ctx, true)
	must(t, err)
	for _, k := range rawKeys(t, admin, prefix) {
		if strings.HasPrefix(k, "claim:") {
			t.Errorf("old claim key %s left after doctor --repair", k)
		}
	}
	if v := admin.Get(ctx, prefix+"layout:claims").Val(); v != "buckets" || redisstore.ReadsOldClaims(s) {
		t.Errorf("after doctor --repair: marker %q, the store reads old keys %v", v, redisstore.ReadsOldClaims(s))
	}
	if !bucketHas("username", "olden") || !bucketHas("key-auth", keyID) {
		t.Error("doctor --repair did not move the old claims into their buckets")
	}

	noOldReads := func(s *redisstore.Store, who string) {
		t.Helper()
		olds.n.Store(0)
		lookups(who)
		if n := olds.n.Load(); n != 0 {
			t.Errorf("%s: the lookups read %d old claim keys", who, n)
		}
	}
	noOldReads(s, "after the repair")
	// Another process reads the marker with its first lookup.
	client2 := redisstore.NewClient(opts)
	client2.AddHook(redistest.OnSend(olds.count))
	s2 := redisstore.New(client2, loaded(redisstore.Options{Prefix: prefix}))
	defer s2.Close()
	if !redisstore.ReadsOldClaims(s2) {
		t.Fatal("a new store assumes no old claim keys before reading the marker")
	}
	if got, err := s2.LocateUser(ctx, core.NameUsername, "olden"); err != nil || got != uid {
		t.Errorf("a new store's first lookup = %q, %v", got, err)
	}
	if redisstore.ReadsOldClaims(s2) {
		t.Error("a new store still reads old claim keys after its first lookup read the marker")
	}
	s = s2
	noOldReads(s2, "another store")

	// The names still hold after the move, and a delete frees them.
	if err := s.CreateUser(ctx, new(user("olden", ""))); core.KindOf(err) != core.Conflict {
		t.Errorf("CreateUser of a moved name: %v, want Conflict", err)
	}
	must(t, s.DeleteUser(ctx, uid))
	must(t, s.CreateUser(ctx, new(user("olden", email))))
}

// oldReads counts (through redistest.OnSend) the commands that read a claim key
// of the layout before claim buckets.
type oldReads struct {
	prefix string
	n      atomic.Int64
}

func (o *oldReads) count(cmds ...redis.Cmder) {
	for _, c := range cmds {
		if args := c.Args(); len(args) > 1 && c.Name() == "get" {
			if k, _ := args[1].(string); strings.HasPrefix(k, o.prefix+"claim:") {
				o.n.Add(1)
			}
		}
	}
}
