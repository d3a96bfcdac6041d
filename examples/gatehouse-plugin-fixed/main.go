// Command gatehouse-plugin-fixed is an identity provider that checks passwords
// against a fixed table in its configuration.
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"

	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

func main() { sdk.Serve(sdk.Plugins{IdentityProvider: &Fixed{}}) }

// Fixed checks passwords against Config.Raw's {"users": {"ada": "Ada Lovelace"}},
// with each user's password in the secret "passwords.NAME".
type Fixed struct {
	sdk.Unsupported
	users   map[string]string // username → display name
	secrets map[string]string
	log     sdk.HostLogger
}

// Configure reads the table; it is called before anything else.
func (f *Fixed) Configure(ctx context.Context, cfg sdk.Config, host sdk.Host) error {
	var c struct {
		Users map[string]string `json:"users"`
	}
	if err := json.Unmarshal(cfg.Raw, &c); err != nil {
		return errs.Errorf(errs.Invalid, "fixed.Configure", "config: %v", err)
	}
	f.users, f.secrets, f.log = c.Users, cfg.Secrets, host.Log
	f.log.Log(ctx, "info", "configured", map[string]string{"plugin": cfg.Name})
	return nil
}

// Describe says what the plugin does.
func (f *Fixed) Describe(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "fixed", Kind: sdk.KindIdentityProvider, Version: "1.0.0",
		DisplayName: "Fixed table", Capabilities: []string{sdk.CapPasswordCheck}}, nil
}

// CheckPassword answers Unauthorized unless the password matches.
func (f *Fixed) CheckPassword(ctx context.Context, username, password string) (sdk.Identity, error) {
	want, ok := f.secrets["passwords."+username]
	if !ok || subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 {
		return sdk.Identity{}, errs.Errorf(errs.Unauthorized, "fixed.CheckPassword", "wrong username or password")
	}
	return sdk.Identity{Provider: "fixed", Subject: username, Username: username, DisplayName: f.users[username]}, nil
}
