package pluginhost

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitSecrets(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PW": "pw", "A": "a", "B": "", "BIG": "x"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		name, in, wantRaw string
		wantSecrets       map[string]string
		wantErr           []string
	}{
		{name: "empty", in: ``, wantRaw: `{}`},
		{name: "null", in: `null`, wantRaw: `{}`},
		{name: "no secrets", in: `{"a":1,"b":{"c":[1,2]}}`, wantRaw: `{"a":1,"b":{"c":[1,2]}}`},
		{name: "numbers keep their digits", in: `{"n":12345678901234567890,"f":1.50}`, wantRaw: `{"f":1.50,"n":12345678901234567890}`},
		{name: "nested", in: `{"smtp":{"host":"h","passwordEnv":"PW"},"apiKeyEnv":"A"}`,
			wantRaw: `{"smtp":{"host":"h"}}`, wantSecrets: map[string]string{"smtp.password": "pw", "apiKey": "a"}},
		{name: "arrays", in: `{"servers":[{"tokenEnv":"A"},{"tokenEnv":"PW"}]}`,
			wantRaw: `{"servers":[{},{}]}`, wantSecrets: map[string]string{"servers.0.token": "a", "servers.1.token": "pw"}},
		{name: "an empty value is a value", in: `{"xEnv":"B"}`, wantRaw: `{}`, wantSecrets: map[string]string{"x": ""}},
		{name: "a key called Env is a key", in: `{"Env":"PW"}`, wantRaw: `{"Env":"PW"}`},
		{name: "not an object", in: `[1]`, wantErr: []string{"config must be an object"}},
		{name: "malformed", in: `{"a":`, wantErr: []string{"config: unexpected EOF"}},
		{name: "every problem", in: `{"aEnv":"UNSET","b":{"cEnv":3},"dEnv":""}`, wantErr: []string{
			"config aEnv names UNSET, which is not set", "config b.cEnv must name an environment variable",
			"config dEnv must name an environment variable"}},
		{name: "twice", in: `{"a":{"bEnv":"A"},"a.bEnv":"PW"}`, wantErr: []string{`secret "a.b" is set twice`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, secrets, err := splitSecrets(json.RawMessage(tc.in), lookup)
			if tc.wantErr != nil {
				for _, w := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error %v, want %q", err, w)
					}
				}
				if err != nil && strings.Contains(err.Error(), "pw") {
					t.Errorf("an error shows a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(raw) != tc.wantRaw {
				t.Errorf("raw = %s, want %s", raw, tc.wantRaw)
			}
			if diff := cmp.Diff(tc.wantSecrets, secrets); diff != "" {
				t.Errorf("secrets (-want +got)\n%s", diff)
			}
		})
	}
}
