package sdk

import (
	"context"
	"errors"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// TestNotServed: a process serving only an identity provider answers a call
// of the Integration service with an error NotServed recognises, still of
// kind NotFound; an unsupported method of a served service is not NotServed.
func TestNotServed(t *testing.T) {
	client, _ := plugin.TestPluginGRPCConn(t, false, plugin.PluginSet{KindIdentityProvider: &IdentityProviderPlugin{Impl: bare{}}})
	t.Cleanup(func() { _ = client.Close() })
	// The host's side knows both services, as pluginhost's does.
	client.Plugins = plugin.PluginSet{KindIdentityProvider: &IdentityProviderPlugin{}, KindIntegration: &IntegrationPlugin{}}
	raw, err := client.Dispense(KindIntegration)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.(*IntegrationClient).Configure(t.Context(), Config{Name: "p"}, NewTestHost().Host())
	if !NotServed(err) || errs.KindOf(err) != errs.NotFound {
		t.Errorf("Configure of a service not served: %v (kind %v), want NotServed and NotFound", err, errs.KindOf(err))
	}

	raw, err = client.Dispense(KindIdentityProvider)
	if err != nil {
		t.Fatal(err)
	}
	idp := raw.(*IdentityProviderClient)
	if err := idp.Configure(t.Context(), Config{Name: "p"}, NewTestHost().Host()); err != nil || NotServed(err) {
		t.Errorf("Configure of the served service: %v", err)
	}
	// A method outside the capabilities answers NotFound across the wire too.
	if _, err := idp.CheckPassword(t.Context(), "a", "b"); errs.KindOf(err) != errs.NotFound || NotServed(err) {
		t.Errorf("an unsupported method: %v, NotServed %v; want NotFound, not NotServed", err, NotServed(err))
	}
	for _, err := range []error{nil, errors.New("unimplemented"), errs.Errorf(errs.NotFound, "op", "no such token")} {
		if NotServed(err) {
			t.Errorf("NotServed(%v) = true", err)
		}
	}
}

// bare is an identity provider that supports no method.
type bare struct{ Unsupported }

func (bare) Configure(context.Context, Config, Host) error { return nil }

func (bare) Describe(context.Context) (PluginInfo, error) {
	return PluginInfo{Name: "m", Kind: KindIdentityProvider}, nil
}
