package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// testNoEcho: the errors of lookups by a presented credential id, admin key id
// or token hash never repeat it. Such a value comes from a request path or an
// Authorization header, where a mistyped one carries a secret
// ("GET /credentials/key-auth/KEYID:SECRET"), and errors are logged and
// returned to clients.
func testNoEcho(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("echo")
	app := e.createApp(u.ID, "echo-app")
	e.createCred(core.KeyAuth, "echo-key", u.ID, u.ID)
	e.createCred(core.JWT, "echo-jwt", app.ID, u.ID)

	const secret = "s3cr3t-0123456789abcdef0123456789"
	keyed := []string{"echo-key:" + secret, "nokey:" + secret, secret}
	type lookup struct {
		what string
		err  error
	}
	var lookups []lookup
	add := func(what string, err error) { lookups = append(lookups, lookup{what, err}) }
	noop := func(*core.Credential) error { return nil }
	for _, typ := range []core.CredentialType{core.KeyAuth, core.JWT, core.BasicAuth, core.OAuth2} {
		for _, id := range keyed {
			_, err := s.GetCredential(ctx, typ, id)
			add("GetCredential "+string(typ), err)
			_, err = s.UpdateCredential(ctx, typ, id, noop)
			add("UpdateCredential "+string(typ), err)
			add("DeleteCredential "+string(typ), s.DeleteCredential(ctx, typ, id))
			if typ.Keyed() {
				_, err = s.LocateCredential(ctx, typ, id)
				add("LocateCredential "+string(typ), err)
			}
		}
	}
	for _, id := range keyed {
		_, err := s.LocateApp(ctx, id)
		add("LocateApp", err)
		add("DeleteAdminKey", s.DeleteAdminKey(ctx, id))
		add("TouchAdminKey", s.TouchAdminKey(ctx, id, time.Now()))
	}
	hash := core.HashSHA256(secret)
	add("DeleteSession", s.DeleteSession(ctx, u.ID, hash))
	_, err := s.AdminKeyByHash(ctx, hash)
	add("AdminKeyByHash", err)

	for _, l := range lookups {
		wantKind(t, l.err, core.NotFound, l.what+" of an unknown id")
		msg := l.err.Error()
		for _, leak := range []string{secret, strings.TrimPrefix(hash, "sha256:")} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s: error %q repeats the id presented", l.what, msg)
			}
		}
	}
}
