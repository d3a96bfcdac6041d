package redisstore_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// TestWritesWaitForReplicas checks that every write method of the store (and
// of a plugin's KV) waits for the replicas: its first deferred call is
// replicated (replicated.go). Touches (a last-use time) are not writes a
// caller relies on and do not wait.
func TestWritesWaitForReplicas(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	write := regexp.MustCompile(`^(Create|Update|Delete|Put|Set|Select|CompareAndSet)`)
	var checked []string
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || !fn.Name.IsExported() || !write.MatchString(fn.Name.Name) {
				continue
			}
			star, ok := fn.Recv.List[0].Type.(*ast.StarExpr)
			if !ok {
				continue
			}
			recv := star.X.(*ast.Ident).Name
			if recv != "Store" && recv != "pluginKV" {
				continue
			}
			name := recv + "." + fn.Name.Name
			checked = append(checked, name)
			if !defersReplicated(fn.Body) {
				t.Errorf("%s: a write method must start with `defer s.replicated(ctx, op, &err)`", name)
			}
		}
	}
	if len(checked) < 30 {
		t.Errorf("checked only %d write methods: %v", len(checked), checked)
	}
}

// defersReplicated reports whether the first defer statement of body calls
// a method named replicated.
func defersReplicated(body *ast.BlockStmt) bool {
	for _, st := range body.List {
		d, ok := st.(*ast.DeferStmt)
		if !ok {
			continue
		}
		sel, ok := d.Call.Fun.(*ast.SelectorExpr)
		return ok && sel.Sel.Name == "replicated"
	}
	return false
}

// TestCheckWait: WaitReplicas is refused on a Cluster client, by CheckWait
// and by New.
func TestCheckWait(t *testing.T) {
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cluster.Close()
	if err := redisstore.CheckWait(cluster, redisstore.Options{WaitReplicas: 1}); err == nil {
		t.Error("CheckWait accepts WaitReplicas 1 on a Cluster client")
	}
	if err := redisstore.CheckWait(cluster, redisstore.Options{}); err != nil {
		t.Errorf("CheckWait refuses WaitReplicas 0 on a Cluster client: %v", err)
	}
	single := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer single.Close()
	if err := redisstore.CheckWait(single, redisstore.Options{WaitReplicas: 1}); err != nil {
		t.Errorf("CheckWait refuses WaitReplicas 1 on a client of one server: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepts WaitReplicas 1 on a Cluster client")
		}
	}()
	redisstore.New(cluster, redisstore.Options{WaitReplicas: 1})
}

// TestWaitReplicas runs writes on a Sentinel-managed primary with one
// replica. A write waiting for one replica succeeds; one that cannot get the
// replicas it waits for (two, or the replica stalled) answers Unavailable,
// although the primary has it.
func TestWaitReplicas(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t) // skips under -short
	opts, err := redisstore.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	newStore := func(wait int) *redisstore.Store {
		st := redisstore.New(redisstore.NewClient(opts), redisstore.Options{Prefix: "wait:", WaitReplicas: wait, WaitTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { st.Close() })
		return st
	}
	one, two := newStore(1), newStore(2)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	newUser := func(name string) core.User {
		return core.User{ID: core.NewID(), Username: name, Email: name + "@example.com", IsActive: true, CreatedAt: now, UpdatedAt: now}
	}
	alice := newUser("alice")
	if err := one.CreateUser(ctx, &alice); err != nil {
		t.Fatalf("CreateUser waiting for the one replica: %v", err)
	}
	app := core.App{ID: core.NewID(), Name: "app", UserID: alice.ID, IsActive: true, CreatedAt: now, UpdatedAt: now}
	sess := core.Session{ID: core.NewID(), Hash: core.HashSHA256(core.NewSecret("gths_", 32)), Kind: core.KindSession,
		UserID: alice.ID, ConsumerID: alice.ID, ConsumerKind: core.ConsumerUser, Provider: "email", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	bob := newUser("bob")
	cred := core.Credential{Type: core.KeyAuth, ID: "key-" + core.NewID(), ConsumerID: alice.ID, ConsumerKind: core.ConsumerUser, UserID: alice.ID,
		IsActive: true, Secret: "sha256:" + strings.Repeat("ab", 32), CreatedAt: now, UpdatedAt: now}

	// Waiting for two replicas where there is one: every write is refused,
	// and is on the primary all the same.
	writes := []struct {
		name  string
		write func() error
		there func() error // reads the write back through the store that waits for one
	}{
		{"CreateUser", func() error { return two.CreateUser(ctx, &bob) }, func() error { _, err := one.GetUser(ctx, bob.ID); return err }},
		{"UpdateUser", func() error {
			_, err := two.UpdateUser(ctx, alice.ID, func(u *core.User) error { u.Props = map[string]any{"firstname": "A"}; return nil })
			return err
		}, func() error {
			u, err := one.GetUser(ctx, alice.ID)
			if err == nil && u.Props["firstname"] != "A" {
				t.Errorf("UpdateUser: the primary has %v", u.Props)
			}
			return err
		}},
		{"CreateApp", func() error { return two.CreateApp(ctx, &app) }, func() error { _, err := one.GetApp(ctx, app.ID); return err }},
		{"CreateCredential", func() error { return two.CreateCredential(ctx, &cred) }, func() error { _, err := one.GetCredential(ctx, cred.Type, cred.ID); return err }},
		{"CreateScopes", func() error { return two.CreateScopes(ctx, []core.Scope{{Name: "read", Reg: "r1", CreatedAt: now}}) }, nil},
		{"CreateSession", func() error { return two.CreateSession(ctx, sess, 0) }, nil},
		{"DeleteSession", func() error { return two.DeleteSession(ctx, alice.ID, sess.Hash) }, nil},
		{"PluginKV.Set", func() error { return two.PluginKV("p").Set(ctx, "k", []byte("v"), 0) }, func() error {
			_, ok, err := one.PluginKV("p").Get(ctx, "k")
			if err == nil && !ok {
				t.Error("PluginKV.Set: the primary has no value")
			}
			return err
		}},
		{"DeleteUser", func() error { return two.DeleteUser(ctx, bob.ID) }, func() error {
			if _, err := one.GetUser(ctx, bob.ID); core.KindOf(err) != core.NotFound {
				t.Errorf("DeleteUser: GetUser after it = %v, want NotFound", err)
			}
			return nil
		}},
	}
	for _, w := range writes {
		if err := w.write(); core.KindOf(err) != core.Unavailable {
			t.Errorf("%s waiting for 2 replicas of 1 = %v, want Unavailable", w.name, err)
		} else if !strings.Contains(err.Error(), "1 of the 2 replicas") {
			t.Errorf("%s: %v does not say how many replicas acknowledged", w.name, err)
		}
		if w.there != nil {
			if err := w.there(); err != nil {
				t.Errorf("%s: not on the primary: %v", w.name, err)
			}
		}
	}

	// The replica stalls: a write waiting for it is refused. Once it is back,
	// writes succeed again.
	s.Nodes[1].Stall(2 * time.Second)
	carol := newUser("carol")
	if err := one.CreateUser(ctx, &carol); core.KindOf(err) != core.Unavailable {
		t.Errorf("CreateUser with the replica stalled = %v, want Unavailable", err)
	}
	for i, deadline := 0, time.Now().Add(10*time.Second); ; i++ {
		u := newUser(fmt.Sprintf("dave%d", i))
		err := one.CreateUser(ctx, &u)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CreateUser 10 s after the replica stalled for 2 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
