package core_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/core"
)

func fields(t *testing.T, js string) core.Fields {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(js))
	d.UseNumber()
	var f core.Fields
	if err := d.Decode(&f); err != nil {
		t.Fatal(err)
	}
	return f
}

// fieldErrors returns "field: detail" of an Invalid error, or the kind.
func fieldErrors(err error) []string {
	var out []string
	for _, f := range core.FieldsOf(err) {
		out = append(out, f.Field+": "+f.Detail)
	}
	if out == nil && err != nil {
		out = []string{core.KindOf(err).String()}
	}
	return out
}

// TestUserPolicies: one create path, each surface's policy deciding which fields
// it may write, whether the model's required list binds and where the username
// comes from.
func TestUserPolicies(t *testing.T) {
	svc := newSvcEnv(t, svcOptions{}).svc
	ctx := t.Context()
	signupLike := core.UserPolicy{Writable: []string{"email", "firstname"}, Require: []string{"email"}, Username: core.UsernameEmail}
	long := strings.Repeat("x", core.DefaultMaxString+1)
	tests := []struct {
		name   string
		pol    core.UserPolicy
		body   string
		errors []string // nil: created
	}{
		{"native", core.NativeUsers, `{"username":"ada","firstname":"A","lastname":"L"}`, nil},
		{"native binds the model's required", core.NativeUsers, `{"username":"bea"}`, []string{"firstname: is required", "lastname: is required"}},
		{"native requires a username", core.NativeUsers, `{"firstname":"A","lastname":"L"}`, []string{"username: is required"}},
		{"native read-only", core.NativeUsers, `{"username":"cy","firstname":"A","lastname":"L","id":"x","number":3}`, []string{"id: is read-only", "number: is read-only"}},
		{"native unknown property (model)", core.NativeUsers, `{"username":"di","firstname":"A","lastname":"L","nick":"d"}`, []string{"nick: unknown property"}},
		{"native string bound", core.NativeUsers, `{"username":"ed","firstname":"` + long + `","lastname":"L"}`, []string{"firstname: must be at most 1024 characters"}},
		{"restricted: model's required does not bind", signupLike, `{"email":"fay@example.com"}`, nil},
		{"restricted: fields outside the list", signupLike, `{"email":"gus@example.com","lastname":"L","isActive":false,"username":"gus"}`,
			[]string{"isActive: unknown property", "lastname: unknown property", "username: unknown property"}},
		{"restricted: its own required", signupLike, `{"firstname":"H"}`, []string{"email: is required"}},
		{"restricted: tighter bound", core.UserPolicy{Writable: []string{"email", "firstname"}, Username: core.UsernameEmail, MaxString: 10},
			`{"email":"ivy@example.com","firstname":"` + strings.Repeat("é", 11) + `"}`, []string{"firstname: must be at most 10 characters"}},
	}
	for _, tc := range tests {
		u, err := svc.CreateUser(ctx, fields(t, tc.body), tc.pol)
		if got := fieldErrors(err); !slices.Equal(got, tc.errors) {
			t.Errorf("%s: errors %q, want %q", tc.name, got, tc.errors)
			continue
		}
		if tc.errors == nil && tc.pol.Username == core.UsernameEmail && u.Username != u.Email {
			t.Errorf("%s: username %q, want the email %q", tc.name, u.Username, u.Email)
		}
	}
	// Nothing of the refused ones was stored.
	for _, name := range []string{"bea", "cy", "di", "ed", "gus@example.com"} {
		if _, err := svc.ResolveUser(ctx, name); core.KindOf(err) != core.NotFound {
			t.Errorf("%s: stored after a refused create (%v)", name, err)
		}
	}
}

// TestUpdateUserPolicy: an update merges, ignores username under the native
// policy, refuses a changed isActive naming the field (not a route), and
// cannot clear a property the model requires, while a sign-up's user, which
// never had one, can still be updated.
func TestUpdateUserPolicy(t *testing.T) {
	svc := newSvcEnv(t, svcOptions{}).svc
	ctx := t.Context()
	if _, err := svc.CreateUser(ctx, fields(t, `{"username":"ada","firstname":"A","lastname":"L"}`), core.NativeUsers); err != nil {
		t.Fatal(err)
	}
	u, err := svc.UpdateUser(ctx, "ada", fields(t, `{"username":"eve","firstname":"Ada"}`), core.NativeUsers)
	if err != nil || u.Username != "ada" || u.Props["firstname"] != "Ada" || u.Props["lastname"] != "L" {
		t.Fatalf("update: %+v %v", u, err)
	}
	_, err = svc.UpdateUser(ctx, "ada", fields(t, `{"isActive":false,"lastname":null}`), core.NativeUsers)
	got := fieldErrors(err)
	if !slices.Equal(got, []string{"isActive: cannot be changed by an update: set the user's status instead", "lastname: is required"}) {
		t.Errorf("refused update: %q", got)
	}
	for _, e := range got {
		if strings.Contains(e, "/") {
			t.Errorf("message names a route: %q", e)
		}
	}
	// A sign-up has no lastname; a native update of another field still works.
	su, err := svc.Signup(ctx, core.SignupRequest{Provider: core.ProviderEmail, Fields: fields(t, `{"email":"zoe@example.com","password":"correct horse"}`), ClientAddr: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateUser(ctx, su.ID, fields(t, `{"firstname":"Zoe"}`), core.NativeUsers); err != nil {
		t.Errorf("update of a sign-up: %v", err)
	}
}

// TestSignupThroughWritePath: sign-up takes email, password and the model's
// x-signup properties only, none required but email and password, with the
// tighter string bound; the username is the email.
func TestSignupThroughWritePath(t *testing.T) {
	svc := newSvcEnv(t, svcOptions{}).svc
	ctx := t.Context()
	signup := func(body string) (core.User, error) {
		return svc.Signup(ctx, core.SignupRequest{Provider: core.ProviderEmail, Fields: fields(t, body), ClientAddr: "192.0.2.1"})
	}
	u, err := signup(`{"email":"ann@example.com","password":"correct horse","firstname":"Ann"}`)
	if err != nil || u.Username != "ann@example.com" || u.Props["firstname"] != "Ann" || u.EmailVerified || u.ExpiresAt.IsZero() {
		t.Fatalf("sign-up: %+v %v", u, err)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"password":"correct horse"}`, "email: is required"},
		{`{"email":"bo@example.com"}`, "password: is required"},
		{`{"email":"bo@example.com","password":"short"}`, "password: must be 8 to 256 characters"},
		{`{"email":"bo@example.com","password":"correct horse","isActive":false}`, "isActive: unknown property"},
		{`{"email":"bo@example.com","password":"correct horse","emailVerified":true}`, "emailVerified: unknown property"},
		{`{"email":"bo@example.com","password":"correct horse","firstname":"` + strings.Repeat("x", core.SignupMaxString+1) + `"}`, "firstname: must be at most 256 characters"},
	} {
		_, err := signup(tc.body)
		if got := fieldErrors(err); !slices.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q among them", tc.body, got, tc.want)
		}
	}
	if _, err := svc.ResolveUser(ctx, "bo@example.com"); core.KindOf(err) != core.NotFound {
		t.Errorf("a refused sign-up was stored: %v", err)
	}
}

// TestSignupIdentity: the first identity is the sign-up one; a user made
// without one signed up by email, with its email (or its username) as
// subject; the display name falls back from the names to the identity's to
// the username.
func TestSignupIdentity(t *testing.T) {
	gh := core.User{Username: "octo", Identities: []core.Identity{
		{Provider: "github", Subject: "583231", DisplayName: "The Octocat"}, {Provider: "google", Subject: "g-1"},
	}}
	if id := gh.SignupIdentity(); id.Provider != "github" || id.Subject != "583231" || gh.DisplayName() != "The Octocat" {
		t.Errorf("github user: %+v, %q", id, gh.DisplayName())
	}
	admin := core.User{Username: "ada", Email: "ada@example.com", EmailVerified: true, Props: map[string]any{"firstname": "Ada", "lastname": "Lovelace"}}
	if id := admin.SignupIdentity(); id.Provider != core.ProviderEmail || id.Subject != "ada@example.com" || !id.EmailVerified || admin.DisplayName() != "Ada Lovelace" {
		t.Errorf("admin-created user: %+v, %q", id, admin.DisplayName())
	}
	bare := core.User{Username: "svc"}
	if id := bare.SignupIdentity(); id.Subject != "svc" || bare.DisplayName() != "svc" {
		t.Errorf("user without email: %+v, %q", id, bare.DisplayName())
	}
}

// TestCreateWithPasswordAndAttributes: a policy's password field is checked
// with the other fields and stored with the user (a login works); a
// dialect's attributes skip the model, and other surfaces may send them back
// unchanged but not change them.
func TestCreateWithPasswordAndAttributes(t *testing.T) {
	e := newSvcEnv(t, svcOptions{})
	ctx := t.Context()
	pol := core.UserPolicy{Writable: []string{"email", "dia:flag"}, Require: []string{"email"}, Username: core.UsernameEmail, Password: true}
	_, err := e.svc.CreateUser(ctx, fields(t, `{"email":"bad","password":"short","dia:flag":true}`), pol)
	if got := fieldNames(core.FieldsOf(err)); !slices.Equal(got, []string{"email", "password"}) {
		t.Fatalf("bad create: %v (%v)", got, err)
	}
	if _, err := e.svc.CreateUser(ctx, fields(t, `{"email":"no-pw@example.com"}`), pol); !slices.Equal(fieldNames(core.FieldsOf(err)), []string{"password"}) {
		t.Errorf("a required password left out: %v", err)
	}
	u, err := e.svc.CreateUser(ctx, fields(t, `{"email":"dia@example.com","password":"correct horse","dia:flag":true}`), pol)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := u.Props["password"]; ok || u.Props["dia:flag"] != true {
		t.Errorf("props: %v", u.Props)
	}
	if _, err := e.svc.Login(ctx, core.LoginRequest{Provider: core.ProviderEmail, Identifier: "dia@example.com", Secret: "correct horse"}); err != nil {
		t.Errorf("login with the password given at create: %v", err)
	}
	if _, err := e.svc.UpdateUser(ctx, u.ID, fields(t, `{"dia:flag":true,"firstname":"Di"}`), core.NativeUsers); err != nil {
		t.Errorf("native update sending the attribute back unchanged: %v", err)
	}
	_, err = e.svc.UpdateUser(ctx, u.ID, fields(t, `{"dia:flag":false}`), core.NativeUsers)
	if !slices.Equal(fieldNames(core.FieldsOf(err)), []string{"dia:flag"}) {
		t.Errorf("native update changing the attribute: %v", err)
	}
	if _, err := e.svc.CreateUser(ctx, fields(t, `{"username":"x","firstname":"X","lastname":"Y","dia:flag":true}`), core.NativeUsers); !slices.Equal(fieldNames(core.FieldsOf(err)), []string{"dia:flag"}) {
		t.Errorf("native create with an attribute: %v", err)
	}
}

func fieldNames(fs []core.FieldError) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Field)
	}
	slices.Sort(out)
	return out
}
