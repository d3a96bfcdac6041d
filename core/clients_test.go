package core_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/core"
)

func TestClientsOwnTheirUsers(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	ctx := t.Context()
	acme, k1, err := e.svc.CreateClient(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k1.Key, core.PrefixClientKey) || k1.Hash == "" || strings.Contains(k1.Hash, k1.Key) {
		t.Fatalf("first key %+v", k1)
	}
	if _, _, err := e.svc.CreateClient(ctx, "acme"); core.KindOf(err) != core.Conflict {
		t.Errorf("a name taken in another case: %v", err)
	}
	if _, _, err := e.svc.CreateClient(ctx, " padded"); core.KindOf(err) != core.Invalid {
		t.Errorf("a padded name: %v", err)
	}
	other, k2, err := e.svc.CreateClient(ctx, "Other")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := e.svc.AuthenticateClient(ctx, k1.Key); err != nil || c.ID != acme.ID {
		t.Fatalf("AuthenticateClient: %+v %v", c, err)
	}
	for _, bad := range []string{"", "sk-client-nope", k1.Key + "x", "gtha_" + k1.Key} {
		if _, err := e.svc.AuthenticateClient(ctx, bad); core.KindOf(err) != core.Unauthorized {
			t.Errorf("key %q: %v", bad, err)
		}
	}

	alice, err := e.svc.RegisterClientUser(ctx, acme, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(alice.Secret, core.PrefixClientUser) || alice.SecretPreview != "sk-user-..."+alice.Secret[len(alice.Secret)-8:] ||
		alice.ClientID != acme.ID || alice.ClientIdentifier != "alice" {
		t.Fatalf("alice %+v", alice)
	}
	if _, err := e.svc.RegisterClientUser(ctx, acme, "alice"); core.KindOf(err) != core.Conflict {
		t.Errorf("a taken identifier: %v", err)
	}
	// Case-sensitive, and per client: these are other users.
	Alice, err := e.svc.RegisterClientUser(ctx, acme, "Alice")
	if err != nil {
		t.Fatal(err)
	}
	otherAlice, err := e.svc.RegisterClientUser(ctx, other, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if Alice.ID == alice.ID || otherAlice.ID == alice.ID || Alice.Username == alice.Username || otherAlice.Username == alice.Username {
		t.Errorf("usernames alice %q, Alice %q, other alice %q must differ", alice.Username, Alice.Username, otherAlice.Username)
	}

	// Logins: per client; one 401 for an unknown identifier and a wrong secret.
	ns, err := e.svc.ClientLogin(ctx, acme, core.LoginRequest{Identifier: "alice", Secret: alice.Secret})
	if err != nil {
		t.Fatal(err)
	}
	ns2, err := e.svc.ClientLogin(ctx, acme, core.LoginRequest{Identifier: "alice", Secret: alice.Secret})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c             core.Client
		ident, secret string
	}{{acme, "alice", otherAlice.Secret}, {acme, "nobody", alice.Secret}, {other, "alice", alice.Secret}} {
		if _, err := e.svc.ClientLogin(ctx, tc.c, core.LoginRequest{Identifier: tc.ident, Secret: tc.secret}); core.KindOf(err) != core.Unauthorized {
			t.Errorf("login %s/%s: %v", tc.c.Name, tc.ident, err)
		}
	}
	// Both tokens live; a client sees its own users only.
	for _, tok := range []string{ns.Token, ns2.Token} {
		if u, err := e.svc.ClientSessionUser(ctx, acme, tok); err != nil || u.ID != alice.ID {
			t.Errorf("ClientSessionUser: %v", err)
		}
	}
	if _, err := e.svc.ClientSessionUser(ctx, other, ns.Token); core.KindOf(err) != core.Unauthorized {
		t.Errorf("another client's user: %v", err)
	}
	// Deleting the client stops its keys at once; its users stay.
	if err := e.svc.DeleteClient(ctx, acme.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AuthenticateClient(ctx, k1.Key); core.KindOf(err) != core.Unauthorized {
		t.Errorf("a deleted client's key: %v", err)
	}
	if _, err := e.svc.ResolveUser(ctx, alice.ID); err != nil {
		t.Errorf("a deleted client's user: %v", err)
	}
	if _, err := e.svc.AuthenticateClient(ctx, k2.Key); err != nil {
		t.Errorf("the other client's key: %v", err)
	}
}

func TestClientIdentifierRace(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	c, _, err := e.svc.CreateClient(t.Context(), "racers")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 8 {
		wg.Go(func() {
			if _, err := e.svc.RegisterClientUser(t.Context(), c, "same"); err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if core.KindOf(err) != core.Conflict {
				t.Errorf("a losing register: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d registers of one identifier won, want 1", won)
	}
}

func TestCustomConfigurationIntegration(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	ctx := t.Context()
	u := e.user("configurer")
	cfg := map[string]any{"username": "svc-bot", "apiKey": "k-123"}
	if _, err := e.svc.ConfigureIntegration(ctx, u.ID, "acme", cfg); core.KindOf(err) != core.Malformed {
		t.Fatalf("a connector without custom_configuration: %v", err)
	}
	e.idp.caps = append(e.idp.caps, core.CapCustomConfig)
	a, err := e.svc.ConfigureIntegration(ctx, u.ID, "acme", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.UserIdentifier != "svc-bot" || strings.Contains(a.Tokens, "k-123") || !a.Selected && len(a.ID) == 0 {
		t.Errorf("account %+v", a)
	}
	tok, err := e.svc.LinkedToken(ctx, u.ID, "acme", "svc-bot")
	if err != nil || !strings.Contains(tok.Token, `"apiKey":"k-123"`) || tok.Type != core.CustomConfigTokenType {
		t.Errorf("the configuration back: %+v %v", tok, err)
	}
	if _, err := e.svc.ConfigureIntegration(ctx, u.ID, "acme", nil); core.KindOf(err) != core.Malformed {
		t.Errorf("an empty configuration: %v", err)
	}
}

func TestLinkedSelection(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	ctx := t.Context()
	u := e.user("selector")
	for _, sub := range []string{"s-1", "s-2"} {
		if _, err := e.link(u, core.Identity{Subject: sub, Email: sub + "@gmail.test"}); err != nil {
			t.Fatal(err)
		}
	}
	sel := func() string {
		as, err := e.svc.LinkedAccounts(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range as {
			if a.Selected {
				out = append(out, a.UserIdentifier)
			}
		}
		return strings.Join(out, ",")
	}
	if s := sel(); s != "s-1@gmail.test" {
		t.Errorf("selected %q, want the first", s)
	}
	if err := e.svc.SelectLinked(ctx, u.ID, "acme", "s-2@gmail.test"); err != nil {
		t.Fatal(err)
	}
	if s := sel(); s != "s-2@gmail.test" {
		t.Errorf("selected %q after select", s)
	}
	if err := e.svc.Unlink(ctx, u.ID, "acme", "s-2@gmail.test"); err != nil {
		t.Fatal(err)
	}
	if s := sel(); s != "s-1@gmail.test" {
		t.Errorf("selected %q after removing the selected", s)
	}
	if err := e.svc.SelectLinked(ctx, u.ID, "acme", "gone@gmail.test"); core.KindOf(err) != core.NotFound {
		t.Errorf("selecting a missing account: %v", err)
	}
}
