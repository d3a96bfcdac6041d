package backup_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/configs"
	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/backup"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// testKeys is the keyring both sides share: sealed jwt secrets and
// integration tokens travel sealed, so the target needs the source's keys.
var testKeys = "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))

// fastArgon keeps the tests' password hashing cheap.
var fastArgon = core.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// newService returns a service over an empty store on its own miniredis.
func newService(t *testing.T) (*core.Service, core.Store) {
	t.Helper()
	mr := miniredis.RunT(t)
	client := redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{mr.Addr()}})
	return serviceOn(t, redisstore.New(client, redisstore.Options{Prefix: "b:"}))
}

// serviceOn returns a service over store (closed with the test).
func serviceOn(t *testing.T, store core.Store) (*core.Service, core.Store) {
	t.Helper()
	t.Cleanup(func() { store.Close() })
	models, err := core.LoadModels(configs.Models)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := core.ParseKeyring(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	h := core.NewHasher(fastArgon, 4)
	return core.NewService(store, core.Options{Models: models, Hasher: h, VerifyHasher: h, Keyring: ring}), store
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// seed fills svc with users 1..n, every third with an app and credentials of
// every type, scopes, a password, a secret, a session and an integration
// account, plus an admin key and a client with a user. It returns the key-auth
// "keyId:secret" of the first user that has one.
func seed(t *testing.T, svc *core.Service, store core.Store, n int) string {
	t.Helper()
	ctx := t.Context()
	must[[]core.Scope](t)(svc.CreateScopes(ctx, []string{"read", "write"}))
	must[core.AdminKey](t)(func() (core.AdminKey, error) {
		k, _, err := svc.CreateAdminKey(ctx, "ops", core.ScopeAdmin)
		return k, err
	}())
	cl, _ := func() (core.Client, core.NewClientKey) {
		c, k, err := svc.CreateClient(ctx, "Tenant One")
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}()
	if _, err := svc.RegisterClientUser(ctx, cl, "tenant-user-1"); err != nil {
		t.Fatal(err)
	}
	dev := must[core.Group](t)(svc.CreateGroup(ctx, "Development team", []string{"deploy", "read-logs"}))
	must[core.Group](t)(svc.CreateGroup(ctx, "Support", []string{"tickets"}))
	var firstKey string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("user-%d", i)
		u := must[core.User](t)(svc.CreateUser(ctx, core.Fields{
			"username": name, "email": name + "@example.com", "firstname": "F", "lastname": name,
		}, core.NativeUsers))
		if i%2 == 1 {
			must[core.User](t)(svc.GrantGroups(ctx, u.ID, []string{dev.ID}))
			must[core.User](t)(svc.GrantUserTags(ctx, u.ID, []string{"beta", "t-" + strconv.Itoa(i)}))
		}
		if i%3 != 1 {
			continue
		}
		a := must[core.App](t)(svc.CreateApp(ctx, core.Fields{"userId": u.ID, "name": "App " + name}))
		k := must[core.NewCredential](t)(svc.CreateCredential(ctx, core.CredentialRequest{
			Type: "key-auth", ConsumerID: u.ID, Credential: core.Fields{"scopes": []any{"read"}},
		}))
		if firstKey == "" {
			firstKey = k.ID + ":" + k.KeySecret
		}
		for _, typ := range []string{"basic-auth", "oauth2", "jwt"} {
			must[core.NewCredential](t)(svc.CreateCredential(ctx, core.CredentialRequest{Type: typ, ConsumerID: u.ID}))
		}
		must[core.NewCredential](t)(svc.CreateCredential(ctx, core.CredentialRequest{
			Type: "key-auth", ConsumerID: a.ID, Credential: core.Fields{"scopes": []any{"read", "write"}},
		}))
		if _, err := svc.SetPassword(ctx, u.ID, "correct horse "+name); err != nil {
			t.Fatal(err)
		}
		must[string](t)(svc.NewUserSecret(ctx, u.ID))
		must[core.NewSession](t)(svc.Login(ctx, core.LoginRequest{Provider: "email", Identifier: name, Secret: "correct horse " + name}))
		must[core.LinkedAccount](t)(store.PutLinkedAccount(ctx, u.ID, core.LinkedAccount{
			Connector: "github", UserIdentifier: name, DisplayName: "GH " + name, Scopes: []string{"repo"},
			Tokens: "aesgcm:k1:sealed-by-the-caller", ConnectedAt: time.Now().UTC(),
		}))
	}
	return firstKey
}

func export(t *testing.T, svc *core.Service, sessions bool) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := backup.Export(t.Context(), svc, &b, backup.Options{Sessions: sessions}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func importAll(t *testing.T, svc *core.Service, data []byte) backup.Report {
	t.Helper()
	rep, err := backup.Import(t.Context(), svc, bytes.NewReader(data), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestRoundTrip: everything exported from one store and imported into an
// empty one exports identically; the imported keys, passwords and sessions
// work; a second import changes nothing; new users number above the imported.
func TestRoundTrip(t *testing.T) {
	src, srcStore := newService(t)
	key := seed(t, src, srcStore, 30)
	first := export(t, src, true)

	dst, _ := newService(t)
	start := time.Now()
	rep := importAll(t, dst, first)
	if len(rep.Bad) > 0 {
		t.Fatalf("import refused lines: %v", rep.Bad)
	}
	t.Logf("imported %d lines in %v: created %v", bytes.Count(first, []byte("\n")), time.Since(start).Round(time.Millisecond), rep.Created)
	if rep.Created[backup.KindUser] != 31 || rep.Created[backup.KindScope] != 2 || rep.Created[backup.KindAdminKey] != 1 ||
		rep.Created[backup.KindClient] != 1 || rep.Created[backup.KindGroup] != 2 {
		t.Errorf("created %v, want 31 users, 2 scopes, 1 admin key, 1 client, 2 groups", rep.Created)
	}
	second := export(t, dst, true)
	if !bytes.Equal(first, second) {
		t.Fatalf("the export of the imported store differs:\n%s", lineDiff(first, second))
	}

	again := importAll(t, dst, first)
	if len(again.Bad) > 0 || len(again.Created) > 0 || again.Unchanged[backup.KindUser] != 31 {
		t.Errorf("second import: created %v, unchanged %v, bad %v; want everything unchanged", again.Created, again.Unchanged, again.Bad)
	}

	ctx := t.Context()
	keyID, secret, _ := strings.Cut(key, ":")
	p, err := dst.Verify(ctx, core.Presented{Scheme: "apikey", ID: keyID, Secret: secret, RequiredScopes: []string{"read"}})
	if err != nil {
		t.Fatalf("an imported key-auth key does not verify: %v", err)
	}
	if _, err := dst.Login(ctx, core.LoginRequest{Provider: "email", Identifier: p.Username, Secret: "correct horse " + p.Username}); err != nil {
		t.Errorf("an imported password does not log in: %v", err)
	}
	if p.UserID == "" || !slices.Contains(p.Tags, "deploy") || !slices.Contains(p.Groups, "Development team") {
		t.Errorf("the imported key's principal: groups %v, tags %v; want its group's and own tags", p.Groups, p.Tags)
	}
	devs, err := dst.ListUsers(ctx, core.ListOptions{Count: 100, Users: core.UserFilter{Tag: "deploy"}})
	if err != nil || devs.Total != 15 {
		t.Errorf("users with the group's tag deploy after the import: %d (%v), want 15", devs.Total, err)
	}
	g := must[core.Group](t)(dst.CreateGroup(ctx, "After", nil))
	if g.Number != 3 {
		t.Errorf("a group created after the import got number %d, want 3", g.Number)
	}
	u := must[core.User](t)(dst.CreateUser(ctx, core.Fields{"username": "after", "firstname": "A", "lastname": "B"}, core.NativeUsers))
	if u.Number != 32 {
		t.Errorf("a user created after the import got number %d, want 32", u.Number)
	}
}

// TestBadLines: each bad line is reported with its number and writes
// nothing; the good lines around it are imported.
func TestBadLines(t *testing.T) {
	src, srcStore := newService(t)
	seed(t, src, srcStore, 4)
	lines := strings.Split(strings.TrimSuffix(string(export(t, src, false)), "\n"), "\n")
	// The last user (user-4) gets an invalid email; user-1 (with apps and
	// credentials) gets a credential whose secret is in clear.
	var bad []int
	for i, l := range lines {
		switch {
		case strings.Contains(l, `"username":"user-4"`):
			lines[i] = strings.Replace(l, `"email":"user-4@example.com"`, `"email":"not an email"`, 1)
			bad = append(bad, i+1)
		case strings.Contains(l, `"username":"user-1"`):
			lines[i] = strings.Replace(l, `"type":"key-auth"`, `"type":"key-auth","secret":"in clear"`, 1)
			lines[i] = strings.Replace(lines[i], `"secret":"sha256:`, `"x":"`, 1)
			bad = append(bad, i+1)
		}
	}
	lines = append(lines, `{"kind":"user","v":2}`, `not json`, `{"kind":"user","v":1,"id":"x","surprise":1}`)
	bad = append(bad, len(lines)-2, len(lines)-1, len(lines))

	dst, _ := newService(t)
	rep := importAll(t, dst, []byte(strings.Join(lines, "\n")+"\n"))
	var got []int
	for _, e := range rep.Bad {
		got = append(got, int(e.Line))
		t.Logf("refused: %v", e)
	}
	if fmt.Sprint(got) != fmt.Sprint(bad) {
		t.Fatalf("refused lines %v, want %v", got, bad)
	}
	if msg := rep.Bad[1].Error(); !strings.Contains(msg, "user.email") || !strings.Contains(msg, "line "+strconv.Itoa(bad[1])) {
		t.Errorf("the bad email's report %q names neither the field nor the line", msg)
	}
	for _, name := range []string{"user-1", "user-4"} {
		if _, err := dst.ResolveUser(t.Context(), name); core.KindOf(err) != core.NotFound {
			t.Errorf("%s, refused, was written: %v", name, err)
		}
	}
	if _, err := dst.ResolveUser(t.Context(), "user-2"); err != nil {
		t.Errorf("user-2, a good line, was not imported: %v", err)
	}
	if rep.Created[backup.KindUser] != 3 { // user-2, user-3 and the client's user
		t.Errorf("created %v, want 3 users", rep.Created)
	}
}

// TestConflict: a user line whose names another user holds in the target is
// refused whole: nothing of it remains.
func TestConflict(t *testing.T) {
	src, srcStore := newService(t)
	seed(t, src, srcStore, 1)
	data := export(t, src, false)
	dst, _ := newService(t)
	must[core.User](t)(dst.CreateUser(t.Context(), core.Fields{"username": "other", "email": "user-1@example.com", "firstname": "O", "lastname": "T"}, core.NativeUsers))
	rep := importAll(t, dst, data)
	// The target's own user has number 1, the source's first (the client's
	// user): that line is refused too.
	if len(rep.Bad) != 2 || !strings.Contains(rep.Bad[0].Error(), "number 1 is taken") ||
		!strings.Contains(rep.Bad[1].Error(), `email "user-1@example.com" is taken`) {
		t.Fatalf("refused %v, want the line of number 1 and user-1's line for its taken email", rep.Bad)
	}
	if _, err := dst.ResolveUser(t.Context(), "user-1"); core.KindOf(err) != core.NotFound {
		t.Errorf("user-1 was written: %v", err)
	}
	report, err := dst.Doctor(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(report.StaleClaims) + len(report.DanglingIndex) + len(report.StaleGrants); n > 0 {
		t.Errorf("a refused line left %d leftovers: %+v", n, report)
	}
}

// lineDiff shows the first differing line of two exports.
func lineDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y)
		}
	}
	return "(same lines)"
}
