package redisstore_test

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// testLinkedLayout checks the keys doc.go documents for linked accounts and
// redirect-URI sets, that DeleteUser leaves no key in the user's slot, and
// that readers skip, and Doctor reports and repairs, redirect-URI entries that
// are out of step with their apps.
func testLinkedLayout(t *testing.T, opts *redis.UniversalOptions, admin redis.UniversalClient) {
	ctx := t.Context()
	prefix := newPrefix()
	s := redisstore.New(redisstore.NewClient(opts), loaded(redisstore.Options{Prefix: prefix}))
	defer s.Close()
	now := time.Now().UTC()
	u := core.User{ID: core.NewID(), Username: "linked", IsActive: true, CreatedAt: now, UpdatedAt: now}
	must(t, s.CreateUser(ctx, &u))
	const uri, moved = "https://linked.example/cb", "https://linked.example/moved"
	a := core.App{ID: core.NewID(), Name: "L", UserID: u.ID, RedirectURI: uri, IsActive: true, CreatedAt: now, UpdatedAt: now}
	must(t, s.CreateApp(ctx, &a))
	acct := core.LinkedAccount{Connector: "github", UserIdentifier: "octo:cat", Tokens: "aesgcm:k1:blob"}
	_, err := s.PutLinkedAccount(ctx, u.ID, acct)
	must(t, err)

	tag := "u:{" + u.ID + "}"
	setOf := func(uri string) string {
		sum := sha256.Sum256([]byte(uri))
		return "appredirect:" + hex.EncodeToString(sum[:])
	}
	keys := rawKeys(t, admin, prefix)
	for _, k := range []string{tag + ":linked", setOf(uri)} {
		if !slices.Contains(keys, k) {
			t.Errorf("key %q missing from %q", k, keys)
		}
	}
	if got := admin.SMembers(ctx, prefix+setOf(uri)).Val(); !slices.Equal(got, []string{u.ID + "/" + a.ID}) {
		t.Errorf("%s holds %q, want the app's ref", setOf(uri), got)
	}
	fields := admin.HKeys(ctx, prefix+tag+":linked").Val()
	slices.Sort(fields)
	if !slices.Equal(fields, []string{":selected:github", "github:octo:cat"}) {
		t.Errorf("linked hash fields %q, want [:selected:github github:octo:cat]", fields)
	}
	if sel := admin.HGet(ctx, prefix+tag+":linked", ":selected:github").Val(); sel != "octo:cat" {
		t.Errorf("the selection field holds %q, want the account's identifier", sel)
	}

	// Out of step: the app is missing from its set, and listed in another
	// URI's set (as an update that crashed between its write and its entries,
	// or an app stored before the sets existed, would leave them).
	must(t, admin.Del(ctx, prefix+setOf(uri)).Err())
	must(t, admin.SAdd(ctx, prefix+setOf(moved), u.ID+"/"+a.ID, "not-a-ref").Err())
	got, err := s.AppsByRedirectURI(ctx, moved)
	must(t, err)
	if len(got) != 0 {
		t.Errorf("AppsByRedirectURI(%s) = %+v, want none: the app's URI is another", moved, got)
	}
	r, err := s.Doctor(ctx, true)
	must(t, err)
	h := strings.TrimPrefix(setOf(moved), "appredirect:")
	want := []string{
		"appredirect:" + h + " " + u.ID + "/" + a.ID,
		"appredirect:" + h + " not-a-ref",
		"appredirect:" + strings.TrimPrefix(setOf(uri), "appredirect:") + " missing " + u.ID + "/" + a.ID + ` ("` + uri + `")`,
	}
	slices.Sort(want)
	if d := cmp.Diff(want, r.DanglingIndex); d != "" {
		t.Errorf("Doctor DanglingIndex (-want +got):\n%s", d)
	}
	got, err = s.AppsByRedirectURI(ctx, uri)
	must(t, err)
	if len(got) != 1 || got[0].ID != a.ID {
		t.Errorf("after repair AppsByRedirectURI(%s) = %+v, want the app", uri, got)
	}
	if n := admin.Exists(ctx, prefix+setOf(moved)).Val(); n != 0 {
		t.Errorf("the stale set %s survived the repair", setOf(moved))
	}

	must(t, s.DeleteUser(ctx, u.ID))
	for _, k := range rawKeys(t, admin, prefix) {
		if strings.Contains(k, "{"+u.ID+"}") || strings.HasPrefix(k, "appredirect:") {
			t.Errorf("key %q left after DeleteUser", k)
		}
	}
}
