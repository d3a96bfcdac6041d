package core

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/configs"
)

func loadDefaultModels(t *testing.T) *Models {
	t.Helper()
	m, err := LoadModels(configs.Models)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// decode decodes a JSON object as the admin API does, numbers as json.Number.
func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDefaultUserModel(t *testing.T) {
	users := loadDefaultModels(t).Users
	tests := []struct {
		name string
		in   string
		want []FieldError
	}{
		{"full EG user", `{"username":"bob","firstname":"Bob","lastname":"Smith","email":"bob@example.com","redirectUri":"https://example.com/cb"}`, nil},
		{"minimal", `{"username":"bob","firstname":"Bob","lastname":"Smith"}`, nil},
		{"missing lastname", `{"username":"bob","firstname":"Bob"}`, []FieldError{{Field: "lastname", Detail: "is required"}}},
		{"missing all", `{}`, []FieldError{{Field: "firstname", Detail: "is required"}, {Field: "lastname", Detail: "is required"}, {Field: "username", Detail: "is required"}}},
		{"bad email", `{"username":"bob","firstname":"Bob","lastname":"Smith","email":"not an email"}`, []FieldError{{Field: "email", Detail: "must be a valid email"}}},
		{"bad uri", `{"username":"bob","firstname":"Bob","lastname":"Smith","redirectUri":"not a uri"}`, []FieldError{{Field: "redirectUri", Detail: "must be a valid uri"}}},
		{"unknown", `{"username":"bob","firstname":"Bob","lastname":"Smith","nickname":"bobby","age":3}`, []FieldError{{Field: "age", Detail: "unknown property"}, {Field: "nickname", Detail: "unknown property"}}},
		{"wrong type", `{"username":"bob","firstname":42,"lastname":"Smith"}`, []FieldError{{Field: "firstname", Detail: "must be of type string"}}},
	}
	for _, tt := range tests {
		got := users.Validate(decode(t, tt.in))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: Validate (-want +got):\n%s", tt.name, diff)
		}
		for _, fe := range got {
			for _, v := range []string{"not an email", "not a uri", "bobby"} {
				if strings.Contains(fe.Detail, v) {
					t.Errorf("%s: detail %q echoes the value", tt.name, fe.Detail)
				}
			}
		}
	}
	if diff := cmp.Diff([]string{"username", "firstname", "lastname"}, users.Required()); diff != "" {
		t.Errorf("Required (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"firstname", "lastname"}, users.SignupProperties()); diff != "" {
		t.Errorf("SignupProperties (-want +got):\n%s", diff)
	}
	if !users.Has("redirectUri") || users.Has("nickname") {
		t.Error("Has is wrong")
	}
}

func TestDefaultAppAndCredentialModels(t *testing.T) {
	m := loadDefaultModels(t)
	if got := m.Apps.Validate(map[string]any{"name": "My App", "redirectUri": "https://x.example/cb"}); got != nil {
		t.Errorf("app: %v", got)
	}
	want := []FieldError{{Field: "colour", Detail: "unknown property"}, {Field: "name", Detail: "is required"}}
	if diff := cmp.Diff(want, m.Apps.Validate(map[string]any{"colour": "red"})); diff != "" {
		t.Errorf("app (-want +got):\n%s", diff)
	}
	for _, typ := range CredentialTypes {
		cm := m.Credentials[typ]
		if cm == nil {
			t.Fatalf("no model for %s", typ)
		}
		if got := cm.Validate(map[string]any{}); got != nil {
			t.Errorf("%s: empty: %v", typ, got)
		}
		if got := cm.Validate(map[string]any{"foo": "bar"}); len(got) != 1 || got[0].Field != "foo" {
			t.Errorf("%s: custom property accepted: %v", typ, got)
		}
	}
}

const customUsers = `{
  "type": "object",
  "properties": {
    "firstname": {"type": "string", "minLength": 2, "x-signup": true},
    "plan": {"enum": ["free", "pro"], "default": "free"},
    "limits": {"type": "object", "default": {"rps": 10, "burst": [1, 2]}},
    "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "score": {"type": "number", "multipleOf": 0.5},
    "born": {"type": "string", "format": "date-time"},
    "address": {
      "type": "object",
      "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}, "city": {"type": "string"}},
      "required": ["city"],
      "additionalProperties": false
    },
    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
  },
  "required": ["firstname"],
  "additionalProperties": false
}`

func customModels(users string) fstest.MapFS {
	return fstest.MapFS{
		"users.json":        {Data: []byte(users)},
		"applications.json": {Data: []byte(`{"type":"object","additionalProperties":false}`)},
		"credentials.json":  {Data: []byte(`{"properties":{"key-auth":{"type":"object","properties":{"env":{"type":"string","default":"prod"}}}}}`)},
	}
}

func TestCustomModel(t *testing.T) {
	m, err := LoadModels(customModels(customUsers))
	if err != nil {
		t.Fatal(err)
	}
	users := m.Users
	tests := []struct {
		name string
		in   string
		want []FieldError
	}{
		{"ok", `{"firstname":"Al","username":"al","email":"a@b.c","age":30,"score":1.5,"born":"2000-01-02T03:04:05Z","address":{"zip":"12345","city":"X"},"tags":["a","b"]}`, nil},
		{"nested", `{"firstname":"Al","address":{"zip":"1234","country":"FR"}}`, []FieldError{
			{Field: "address.city", Detail: "is required"}, {Field: "address.country", Detail: "unknown property"}, {Field: "address.zip", Detail: "must match the pattern ^[0-9]{5}$"}}},
		{"numbers", `{"firstname":"Al","age":-1,"score":0.3}`, []FieldError{{Field: "age", Detail: "must be at least 0"}, {Field: "score", Detail: "must be a multiple of 0.5"}}},
		{"integer", `{"firstname":"Al","age":1.5}`, []FieldError{{Field: "age", Detail: "must be of type integer"}}},
		{"enum", `{"firstname":"Al","plan":"gold"}`, []FieldError{{Field: "plan", Detail: "must be one of the allowed values"}}},
		{"date-time", `{"firstname":"Al","born":"yesterday"}`, []FieldError{{Field: "born", Detail: "must be a valid date-time"}}},
		{"array", `{"firstname":"Al","tags":["a",1,"a"]}`, []FieldError{{Field: "tags", Detail: "must not contain duplicate items"}, {Field: "tags.1", Detail: "must be of type string"}}},
		{"short", `{"firstname":"A"}`, []FieldError{{Field: "firstname", Detail: "must be at least 2 characters"}}},
	}
	for _, tt := range tests {
		got := users.Validate(decode(t, tt.in))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: Validate (-want +got):\n%s", tt.name, diff)
		}
	}
	// float64 numbers (json.Unmarshal without UseNumber) work as well.
	var f map[string]any
	if err := json.Unmarshal([]byte(`{"firstname":"Al","age":200,"score":2}`), &f); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]FieldError{{Field: "age", Detail: "must be at most 150"}}, users.Validate(f)); diff != "" {
		t.Errorf("float64 (-want +got):\n%s", diff)
	}
	// Core fields were added to a model that does not declare them.
	if !users.Has("username") || !users.Has("email") || !users.Has("redirectUri") || !m.Apps.Has("name") {
		t.Error("core fields not added")
	}
	if diff := cmp.Diff([]string{"firstname"}, users.Required()); diff != "" {
		t.Errorf("Required (-want +got):\n%s", diff)
	}
	// Types left out of credentials.json take no custom properties.
	if got := m.Credentials[JWT].Validate(map[string]any{"x": 1}); len(got) != 1 {
		t.Errorf("jwt: %v", got)
	}
}

func TestApplyDefaults(t *testing.T) {
	m, err := LoadModels(customModels(customUsers))
	if err != nil {
		t.Fatal(err)
	}
	a := map[string]any{"firstname": "Al", "plan": nil}
	m.Users.ApplyDefaults(a)
	want := map[string]any{
		"firstname": "Al",
		"plan":      nil, // present: left alone
		"limits":    map[string]any{"rps": json.Number("10"), "burst": []any{json.Number("1"), json.Number("2")}},
	}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("ApplyDefaults (-want +got):\n%s", diff)
	}
	// The default is a deep copy: editing one instance leaves the next alone.
	a["limits"].(map[string]any)["burst"].([]any)[0] = "changed"
	b := map[string]any{}
	m.Users.ApplyDefaults(b)
	if b["limits"].(map[string]any)["burst"].([]any)[0] != json.Number("1") {
		t.Error("default shared between instances")
	}
	if b["plan"] != "free" {
		t.Errorf("plan = %v, want free", b["plan"])
	}
	c := map[string]any{}
	m.Credentials[KeyAuth].ApplyDefaults(c)
	if c["env"] != "prod" {
		t.Errorf("credential default: %v", c)
	}
}

func TestLoadModelsErrors(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"missing file", fstest.MapFS{"users.json": {Data: []byte(`{}`)}}, "applications.json"},
		{"bad JSON", func() fstest.MapFS { f := customModels(`{"type": "object",`); return f }(), "users.json"},
		{"not an object", customModels(`[]`), "users.json"},
		{"bad schema", customModels(`{"type": "objekt"}`), "users.json"},
		{"bad format of keyword", customModels(`{"properties": {"a": {"minLength": "two"}}}`), "users.json"},
		{"external ref", customModels(`{"$ref": "https://example.com/schema.json"}`), "users.json"},
		{"unknown credential type", fstest.MapFS{
			"users.json":        {Data: []byte(`{}`)},
			"applications.json": {Data: []byte(`{}`)},
			"credentials.json":  {Data: []byte(`{"properties":{"oauth":{}}}`)},
		}, `credentials.json: unknown credential type "oauth"`},
		{"bad credential schema", fstest.MapFS{
			"users.json":        {Data: []byte(`{}`)},
			"applications.json": {Data: []byte(`{}`)},
			"credentials.json":  {Data: []byte(`{"properties":{"jwt":{"type":3}}}`)},
		}, "credentials.json"},
	}
	for _, tt := range tests {
		_, err := LoadModels(tt.fsys)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: LoadModels = %v, want an error naming %q", tt.name, err, tt.want)
		}
	}
}

func TestModelRefBetweenFiles(t *testing.T) {
	f := customModels(`{"type":"object","properties":{"address":{"$ref":"defs/address.json"}}}`)
	f["defs/address.json"] = &fstest.MapFile{Data: []byte(`{"type":"object","properties":{"zip":{"type":"string"}}}`)}
	m, err := LoadModels(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []FieldError{{Field: "address.zip", Detail: "must be of type string"}}
	if diff := cmp.Diff(want, m.Users.Validate(decode(t, `{"address":{"zip":5}}`))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
