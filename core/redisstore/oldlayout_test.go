package redisstore_test

import (
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// testOldLayout writes a user with a key of its own and an app with a key in
// the layout written before December 2026 (records with every field, the
// secret as "sha256:<hex>", a consumer list P u:{uid}:cc:<uid> for the user's
// own credentials), straight into Redis, and reads, updates and deletes them
// through the store: nothing needs migrating first.
func testOldLayout(t *testing.T, opts *redis.UniversalOptions, admin redis.UniversalClient) {
	ctx := t.Context()
	prefix := newPrefix()
	s := redisstore.New(redisstore.NewClient(opts), loaded(redisstore.Options{Prefix: prefix}))
	defer s.Close()
	uid := core.NewID()
	at := time.Date(2025, 3, 4, 5, 6, 7, 123000000, time.UTC)
	stamp := `"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:07.123Z"`
	slot := prefix + "u:{" + uid + "}"
	set := func(key, val string) { t.Helper(); must(t, admin.Set(ctx, key, val, 0).Err()) }
	zadd := func(key, member string, score float64) {
		t.Helper()
		must(t, admin.ZAdd(ctx, key, redis.Z{Score: score, Member: member}).Err())
	}
	set(slot, `{"id":"`+uid+`","number":3,"username":"olden","isActive":true,"props":{"firstname":"O"},`+stamp+`}`)
	set(prefix+"claim:username:olden", uid+"|1741064767123000")
	zadd(prefix+"idx:users", uid, 3)
	set(prefix+"seq:users", "3")
	set(prefix+"seq:creds", "6")

	a := core.App{ID: core.NewID(), Name: "olden-app", UserID: uid, IsActive: true, CreatedAt: at, UpdatedAt: at}
	must(t, s.CreateApp(ctx, &a))

	own := core.Credential{Type: core.KeyAuth, ID: "old-own-key", Seq: 5, ConsumerID: uid, ConsumerKind: core.ConsumerUser,
		UserID: uid, IsActive: true, Secret: core.HashSHA256("own secret"), CreatedAt: at, UpdatedAt: at}
	app := core.Credential{Type: core.KeyAuth, ID: "old-app-key", Seq: 6, ConsumerID: a.ID, ConsumerKind: core.ConsumerApp,
		UserID: uid, IsActive: true, Secret: core.HashSHA256("app secret"), CreatedAt: at, UpdatedAt: at}
	for _, c := range []core.Credential{own, app} {
		rec := `{"type":"key-auth","id":"` + c.ID + `","seq":` + map[string]string{own.ID: "5", app.ID: "6"}[c.ID] +
			`,"consumerId":"` + c.ConsumerID + `","consumerKind":"` + string(c.ConsumerKind) + `","userId":"` + uid +
			`","isActive":true,`
		rec += `"secret":"` + c.Secret + `",` + stamp + `}`
		member := "key-auth:" + c.ID
		set(slot+":cred:key-auth:"+c.ID, rec)
		zadd(slot+":creds", member, float64(c.Seq))
		zadd(slot+":cc:"+c.ConsumerID, member, float64(c.Seq))
		zadd(prefix+"idx:creds", uid+"/key-auth/"+c.ID, float64(c.Seq))
		set(prefix+"claim:key-auth:"+c.ID, uid+"|1741064767123000")
	}
	// The store's first use (CreateApp) moved P idx:users into buckets; a
	// store started now, as after a restart, moves P idx:creds, written since.
	s2 := redisstore.New(redisstore.NewClient(opts), redisstore.Options{Prefix: prefix})
	defer s2.Close()
	s = s2
	users, err := s.ListUsers(ctx, core.ListOptions{Count: 10})
	must(t, err)
	if len(users.Items) != 1 || users.Items[0].ID != uid || users.Total != 1 || users.NextKey != 0 {
		t.Errorf("ListUsers over an old P idx:users: %+v", users)
	}
	all, err := s.ListCredentials(ctx, core.ListOptions{Count: 1})
	must(t, err)
	if len(all.Items) != 1 || all.Items[0].ID != "old-own-key" || all.Total != 2 || all.NextKey != 6 {
		t.Errorf("ListCredentials over an old P idx:creds, first page: %d items, Total %d, NextKey %d", len(all.Items), all.Total, all.NextKey)
	}
	if all, err = s.ListCredentials(ctx, core.ListOptions{Start: all.NextKey, Count: 1}); err != nil ||
		len(all.Items) != 1 || all.Items[0].ID != "old-app-key" || all.Total != 2 || all.NextKey != 0 {
		t.Errorf("ListCredentials over an old P idx:creds, second page: %+v, %v", all, err)
	}
	if keys := rawKeys(t, admin, prefix); slices.Contains(keys, "idx:users") || slices.Contains(keys, "idx:creds") {
		t.Errorf("old list indexes left after the upgrade: %q", keys)
	}

	want := core.User{ID: uid, Number: 3, Username: "olden", IsActive: true, Props: map[string]any{"firstname": "O"}, CreatedAt: at, UpdatedAt: at}
	got, err := s.GetUser(ctx, uid)
	must(t, err)
	if d := cmp.Diff(want, got, ignoreStored); d != "" {
		t.Errorf("GetUser of an old record (-want +got):\n%s", d)
	}
	own.OwnerActive, app.OwnerActive = true, true
	for _, c := range []core.Credential{own, app} {
		got, err := s.GetCredential(ctx, core.KeyAuth, c.ID)
		must(t, err)
		if d := cmp.Diff(c, got); d != "" {
			t.Errorf("GetCredential of an old record (-want +got):\n%s", d)
		}
		rec, err := s.ReadAuth(ctx, core.AuthQuery{UserID: uid, Credential: &core.CredentialRef{Type: core.KeyAuth, ID: c.ID}, Lean: true})
		must(t, err)
		if rec.Credential == nil || rec.Credential.ConsumerID != c.ConsumerID || rec.Credential.ConsumerKind != c.ConsumerKind ||
			rec.Credential.Secret != c.Secret || rec.User.ID != uid {
			t.Errorf("ReadAuth of an old %s credential: %+v, user %q", c.ConsumerKind, rec.Credential, rec.User.ID)
		}
	}
	for consumer, want := range map[string][]core.Credential{uid: {own}, a.ID: {app}} {
		got, err := s.ConsumerCredentials(ctx, consumer)
		must(t, err)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("ConsumerCredentials(%s) over the old layout (-want +got):\n%s", consumer, d)
		}
	}
	page, err := s.ListCredentials(ctx, core.ListOptions{UserID: uid, Count: 10})
	must(t, err)
	if d := cmp.Diff([]core.Credential{own, app}, page.Items); d != "" {
		t.Errorf("ListCredentials of the user over the old layout (-want +got):\n%s", d)
	}

	// Doctor reports the user's own consumer list, which nothing reads any
	// more, and repair deletes it (its app's stays); the lists read the same.
	ownList := "u:{" + uid + "}:cc:" + uid
	for _, repair := range []bool{false, true} {
		rep, err := s.Doctor(ctx, repair)
		must(t, err)
		if !slices.ContainsFunc(rep.DanglingIndex, func(e string) bool { return strings.HasPrefix(e, ownList+" ") }) {
			t.Errorf("Doctor(repair %v) over the old layout: DanglingIndex %q, want %s", repair, rep.DanglingIndex, ownList)
		}
	}
	if keys := rawKeys(t, admin, prefix); slices.Contains(keys, ownList) || !slices.Contains(keys, "u:{"+uid+"}:cc:"+a.ID) {
		t.Errorf("keys after doctor --repair: %q", keys)
	}
	for consumer, want := range map[string][]core.Credential{uid: {own}, a.ID: {app}} {
		got, err := s.ConsumerCredentials(ctx, consumer)
		must(t, err)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("ConsumerCredentials(%s) after doctor --repair (-want +got):\n%s", consumer, d)
		}
	}

	// A key added now, beside the old ones, is listed with them.
	now := at.Add(time.Hour)
	added := core.Credential{Type: core.KeyAuth, ID: "new-own-key", ConsumerID: uid, ConsumerKind: core.ConsumerUser,
		UserID: uid, IsActive: true, Secret: core.HashSHA256("new"), CreatedAt: now, UpdatedAt: now}
	must(t, s.CreateCredential(ctx, &added))
	mine, err := s.ConsumerCredentials(ctx, uid)
	must(t, err)
	if len(mine) != 2 || mine[0].ID != own.ID || mine[1].ID != added.ID {
		t.Errorf("ConsumerCredentials after adding a key to an old user: %v", mine)
	}
	// An update rewrites the record in today's form, and it reads the same.
	upd, err := s.UpdateCredential(ctx, core.KeyAuth, own.ID, func(c *core.Credential) error { c.IsActive = false; return nil })
	must(t, err)
	if upd.IsActive || upd.ConsumerID != uid || upd.Secret != own.Secret {
		t.Errorf("UpdateCredential of an old record: %+v", upd)
	}
	data, err := admin.Get(ctx, slot+":cred:key-auth:"+own.ID).Result()
	must(t, err)
	if strings.Contains(data, `"userId"`) || strings.Contains(data, "sha256:") {
		t.Errorf("an updated credential is stored in its old form: %s", data)
	}
	must(t, s.DeleteCredential(ctx, core.KeyAuth, app.ID))
	must(t, s.DeleteUser(ctx, uid))
	if keys := rawKeys(t, admin, prefix); len(slices.DeleteFunc(keys, func(k string) bool { return strings.HasPrefix(k, "seq:") || k == "layout:claims" })) != 0 {
		t.Errorf("keys left after deleting an old user: %q", keys)
	}
}

// testCompactLayout writes a user with a key of its own and an app with a
// key, then rewrites their records by hand in the compact form written from
// December 2026 until the short form (long field names, no id, type or user
// id, the secret as s256), and reads, verifies and updates them through the
// store: they read as written, and an update writes the short form.
func testCompactLayout(t *testing.T, opts *redis.UniversalOptions, admin redis.UniversalClient) {
	ctx := t.Context()
	prefix := newPrefix()
	s := redisstore.New(redisstore.NewClient(opts), loaded(redisstore.Options{Prefix: prefix}))
	defer s.Close()
	at := time.Date(2025, 3, 4, 5, 6, 7, 123000000, time.UTC)
	u := core.User{ID: core.NewID(), Username: "compact", IsActive: true, Props: map[string]any{"firstname": "C"}, CreatedAt: at, UpdatedAt: at}
	must(t, s.CreateUser(ctx, &u))
	a := core.App{ID: core.NewID(), Name: "compact-app", UserID: u.ID, IsActive: true, CreatedAt: at, UpdatedAt: at}
	must(t, s.CreateApp(ctx, &a))
	own := core.Credential{Type: core.KeyAuth, ID: "compact-own-key", ConsumerID: u.ID, ConsumerKind: core.ConsumerUser,
		UserID: u.ID, IsActive: true, Secret: core.HashSHA256("own secret"), CreatedAt: at, UpdatedAt: at}
	app := core.Credential{Type: core.KeyAuth, ID: "compact-app-key", ConsumerID: a.ID, ConsumerKind: core.ConsumerApp,
		UserID: u.ID, IsActive: false, Secret: core.HashSHA256("app secret"), CreatedAt: at, UpdatedAt: at.Add(time.Second)}
	must(t, s.CreateCredential(ctx, &own))
	must(t, s.CreateCredential(ctx, &app))
	slot := prefix + "u:{" + u.ID + "}"
	stamp := `"createdAt":"2025-03-04T05:06:07.123Z"`
	s256 := func(secret string) string {
		sum := sha256.Sum256([]byte(secret))
		return base64.RawStdEncoding.EncodeToString(sum[:])
	}
	for key, val := range map[string]string{
		slot: `{"number":` + strconv.FormatInt(u.Number, 10) + `,"username":"compact","isActive":true,"props":{"firstname":"C"},` + stamp + `}`,
		slot + ":cred:key-auth:" + own.ID: `{"id":"` + own.ID + `","seq":` + strconv.FormatInt(own.Seq, 10) +
			`,"isActive":true,"s256":"` + s256("own secret") + `",` + stamp + `}`,
		slot + ":cred:key-auth:" + app.ID: `{"id":"` + app.ID + `","seq":` + strconv.FormatInt(app.Seq, 10) +
			`,"consumerId":"` + a.ID + `","consumerKind":"app","isActive":false,"s256":"` + s256("app secret") + `",` + stamp +
			`,"updatedAt":"2025-03-04T05:06:08.123Z"}`,
	} {
		must(t, admin.Set(ctx, key, val, 0).Err())
	}

	got, err := s.GetUser(ctx, u.ID)
	must(t, err)
	if d := cmp.Diff(u, got, ignoreStored); d != "" {
		t.Errorf("GetUser of a compact record (-want +got):\n%s", d)
	}
	own.OwnerActive, app.OwnerActive = true, true
	for _, c := range []core.Credential{own, app} {
		got, err := s.GetCredential(ctx, core.KeyAuth, c.ID)
		must(t, err)
		if d := cmp.Diff(c, got); d != "" {
			t.Errorf("GetCredential of a compact record (-want +got):\n%s", d)
		}
		rec, err := s.ReadAuth(ctx, core.AuthQuery{UserID: u.ID, Credential: &core.CredentialRef{Type: core.KeyAuth, ID: c.ID}, Lean: true})
		must(t, err)
		if rec.Credential == nil || rec.Credential.ConsumerID != c.ConsumerID || rec.Credential.IsActive != c.IsActive ||
			rec.Credential.Secret != c.Secret || rec.User.Username != u.Username || !rec.User.IsActive ||
			c.ConsumerKind == core.ConsumerApp && (rec.App == nil || rec.App.ID != a.ID) {
			t.Errorf("ReadAuth of a compact %s credential: %+v, user %+v, app %+v", c.ConsumerKind, rec.Credential, rec.User, rec.App)
		}
	}
	page, err := s.ListCredentials(ctx, core.ListOptions{UserID: u.ID, Count: 10})
	must(t, err)
	if d := cmp.Diff([]core.Credential{own, app}, page.Items); d != "" {
		t.Errorf("ListCredentials over compact records (-want +got):\n%s", d)
	}

	// An update writes the short form, which reads the same.
	updU, err := s.UpdateUser(ctx, u.ID, func(u *core.User) error { u.IsActive = false; return nil })
	must(t, err)
	updC, err := s.UpdateCredential(ctx, core.KeyAuth, app.ID, func(c *core.Credential) error { c.IsActive = true; return nil })
	must(t, err)
	data, err := admin.Get(ctx, slot).Result()
	must(t, err)
	cdata, err := admin.Get(ctx, slot+":cred:key-auth:"+app.ID).Result()
	must(t, err)
	if !strings.Contains(data, `"a":false`) || strings.Contains(data, `"username"`) || strings.Contains(cdata, `"seq"`) ||
		strings.Contains(cdata, `"id"`) || strings.Contains(cdata, `"s256"`) || !strings.Contains(cdata, `"consumerKind":"app"`) {
		t.Errorf("updated records are not stored in the short form: %s, %s", data, cdata)
	}
	got, err = s.GetUser(ctx, u.ID)
	must(t, err)
	if d := cmp.Diff(updU, got, ignoreStored); d != "" || got.IsActive {
		t.Errorf("GetUser of a user updated from a compact record (-want +got):\n%s", d)
	}
	gotC, err := s.GetCredential(ctx, core.KeyAuth, app.ID)
	must(t, err)
	if updC.OwnerActive = false; gotC.OwnerActive || !gotC.IsActive || gotC.Secret != app.Secret || gotC.ConsumerID != a.ID {
		t.Errorf("GetCredential of an app's key updated from a compact record: %+v (its user is inactive)", gotC)
	}
	if d := cmp.Diff(updC, gotC); d != "" {
		t.Errorf("GetCredential of an updated app's key (-want +got):\n%s", d)
	}
	must(t, s.DeleteUser(ctx, u.ID))
}
