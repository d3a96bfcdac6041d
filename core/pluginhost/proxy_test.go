package pluginhost

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/plugins/sdk"
)

// fill sets every field of the struct *p to a value made of its name, so that
// a field dropped by a translation shows.
func fill(t *testing.T, p any) {
	t.Helper()
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch f.Interface().(type) {
		case string:
			f.SetString("the " + name)
		case bool:
			f.SetBool(true)
		case []string:
			f.Set(reflect.ValueOf([]string{"the " + name}))
		case map[string]any:
			f.Set(reflect.ValueOf(map[string]any{"the": name}))
		case time.Time:
			f.Set(reflect.ValueOf(time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)))
		default:
			t.Fatalf("fill: a field %s of type %s", name, f.Type())
		}
	}
}

// carried checks that every field of from reached the field of the same name
// in to, and that to has no field from lacks but those in hostOnly.
func carried(t *testing.T, what string, from, to any, hostOnly ...string) {
	t.Helper()
	fv, tv := reflect.ValueOf(from), reflect.ValueOf(to)
	for i := range fv.NumField() {
		name := fv.Type().Field(i).Name
		got := tv.FieldByName(name)
		if !got.IsValid() {
			t.Errorf("%s: %s has no field %s", what, tv.Type(), name)
			continue
		}
		if !reflect.DeepEqual(fv.Field(i).Interface(), got.Interface()) {
			t.Errorf("%s: %s = %v, want %v", what, name, got.Interface(), fv.Field(i).Interface())
		}
	}
	for i := range tv.NumField() {
		name := tv.Type().Field(i).Name
		if _, ok := fv.Type().FieldByName(name); !ok && !slices.Contains(hostOnly, name) {
			t.Errorf("%s: %s.%s has no counterpart in %s", what, tv.Type(), name, fv.Type())
		}
	}
}

// TestTranslations: every field of the plugin contract crosses between the
// SDK's types and the core's, both ways, so a field added on one side and
// forgotten in pluginhost fails here.
func TestTranslations(t *testing.T) {
	var mr core.MailRequest
	fill(t, &mr)
	carried(t, "MailRequest", mr, sdkMailRequest(mr))
	var ms sdk.MailSubject
	fill(t, &ms)
	carried(t, "MailSubject", ms, mailSubject(ms))
	var id sdk.Identity
	fill(t, &id)
	got := identity(id)
	carried(t, "Identity", id, got, "LinkedAt")
	if !got.LinkedAt.IsZero() {
		t.Errorf("Identity: LinkedAt = %v, want zero: the core sets it", got.LinkedAt)
	}
	var ar core.AuthURLRequest
	fill(t, &ar)
	carried(t, "AuthURLRequest", ar, sdkAuthURLRequest(ar))
	var er core.ExchangeRequest
	fill(t, &er)
	carried(t, "ExchangeRequest", er, sdkExchangeRequest(er))
	var ia sdk.IntegrationAccount
	fill(t, &ia)
	carried(t, "IntegrationAccount", ia, integrationAccount(ia))
	var it sdk.IntegrationTokens
	fill(t, &it)
	carried(t, "IntegrationTokens", it, integrationTokens(it))
	var ct core.IntegrationTokens
	fill(t, &ct)
	carried(t, "IntegrationTokens", ct, sdkIntegrationTokens(ct))
}

// TestPluginInfoTranslation: the SDK's kind and capability names become the
// core's; a capability the host does not know is left out.
func TestPluginInfoTranslation(t *testing.T) {
	got := pluginInfo(sdk.PluginInfo{Name: "p", Kind: sdk.KindIdentityProvider, Version: "1", DisplayName: "P",
		Capabilities: []string{sdk.CapMailVerification, sdk.CapPasswordReset, "teleport", sdk.CapPasswordCheck, sdk.CapRedirect}})
	want := core.PluginInfo{Name: "p", Kind: core.KindIdentityProvider, Version: "1", DisplayName: "P",
		Capabilities: []string{core.CapMailVerification, core.CapPasswordReset, core.CapPasswordCheck, core.CapRedirect}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pluginInfo (-want +got):\n%s", diff)
	}
	if got := pluginInfo(sdk.PluginInfo{Kind: sdk.KindIntegration}); got.Kind != core.KindIntegration {
		t.Errorf("an integration's kind = %q", got.Kind)
	}
	for _, k := range []string{core.KindIdentityProvider, core.KindIntegration} {
		if _, ok := sdkKinds[k]; !ok {
			t.Errorf("the core's kind %q has no SDK kind to dispense", k)
		}
	}
}
