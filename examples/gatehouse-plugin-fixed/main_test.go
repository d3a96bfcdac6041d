package main

import (
	"encoding/json"
	"testing"

	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

func TestCheckPassword(t *testing.T) {
	idp, host := sdk.TestProvider(t, &Fixed{}, sdk.Config{
		Name:    "fixed",
		Raw:     json.RawMessage(`{"users": {"ada": "Ada Lovelace"}}`),
		Secrets: map[string]string{"passwords.ada": "correct horse"},
	})
	id, err := idp.CheckPassword(t.Context(), "ada", "correct horse")
	if err != nil || id.DisplayName != "Ada Lovelace" {
		t.Errorf("CheckPassword = %+v, %v", id, err)
	}
	if _, err := idp.CheckPassword(t.Context(), "ada", "wrong"); errs.KindOf(err) != errs.Unauthorized {
		t.Errorf("a wrong password: %v, want Unauthorized", err)
	}
	if _, err := idp.AuthURL(t.Context(), sdk.AuthURLRequest{}); errs.KindOf(err) != errs.NotFound {
		t.Errorf("AuthURL: %v, want NotFound", err) // from sdk.Unsupported
	}
	if lines := host.Lines(); len(lines) != 1 || lines[0].Message != "configured" {
		t.Errorf("log = %+v", lines)
	}
}
