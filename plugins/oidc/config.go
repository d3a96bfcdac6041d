package oidc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// SecretClientSecret is the key of the client secret in sdk.Config.Secrets;
// the host resolves it from the block's clientSecretEnv.
const SecretClientSecret = "clientSecret"

// DefaultScopes are the scopes asked for when the configuration names none.
var DefaultScopes = []string{"openid", "email", "profile"}

// Config is a plugin's configuration block, decoded strictly; the package
// documentation describes each key.
type Config struct {
	ClientID                  string            `json:"clientId"`
	ClientSecretEnv           string            `json:"clientSecretEnv"` // resolved by the host into Secrets["clientSecret"]
	Issuer                    string            `json:"issuer"`
	Scopes                    []string          `json:"scopes"`
	IntegrationScopes         []string          `json:"integrationScopes"` // empty: Scopes
	UsernameClaim             string            `json:"usernameClaim"`
	DisplayName               string            `json:"displayName"`
	AuthParams                map[string]string `json:"authParams"`
	InsecureSkipEmailVerified bool              `json:"insecureSkipEmailVerified"`
}

var knownKeys = []string{"clientId", "clientSecretEnv", "issuer", "scopes", "integrationScopes",
	"usernameClaim", "displayName", "authParams", "insecureSkipEmailVerified"}

// reservedParams are the authorization request's parameters that the plugin
// or the host sets; authParams may not override them.
var reservedParams = []string{"response_type", "client_id", "client_secret", "redirect_uri", "scope", "state",
	"code_challenge", "code_challenge_method", "code_verifier", "nonce", "login_hint"}

// parseConfig decodes raw over d's defaults and validates it with the client
// secret. Invalid names every field at fault, unknown keys included.
func parseConfig(d Defaults, raw json.RawMessage, secret string) (Config, error) {
	const op = "oidc.Configure"
	cfg := Config{Issuer: d.Issuer, Scopes: slices.Clone(DefaultScopes), UsernameClaim: d.UsernameClaim,
		DisplayName: d.DisplayName}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && string(trimmed) != "null" {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &top); err != nil {
			return Config{}, errs.Errorf(errs.Invalid, op, "%s config: must be a JSON object", d.Name)
		}
		var problems []errs.FieldError
		for k := range top {
			switch {
			case k == "clientSecret":
				problems = append(problems, errs.FieldError{Field: k,
					Detail: "must not be written in the configuration: name the environment variable that holds it with clientSecretEnv"})
			case !slices.Contains(knownKeys, k):
				problems = append(problems, errs.FieldError{Field: k, Detail: "is not a known key"})
			}
		}
		if len(problems) > 0 {
			return Config{}, invalid(d.Name, problems)
		}
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
				return Config{}, invalid(d.Name, []errs.FieldError{{Field: te.Field,
					Detail: fmt.Sprintf("must be a %s, not a JSON %s", jsonType(te.Type.Kind().String()), te.Value)}})
			}
			return Config{}, errs.Errorf(errs.Invalid, op, "%s config: cannot be read", d.Name)
		}
	}
	// Validated before the default, so a bad scopes is reported once.
	if err := cfg.validate(d.Name, secret); err != nil {
		return Config{}, err
	}
	if cfg.IntegrationScopes == nil {
		cfg.IntegrationScopes = slices.Clone(cfg.Scopes)
	}
	return cfg, nil
}

func jsonType(kind string) string {
	switch kind {
	case "slice":
		return "array"
	case "map", "struct":
		return "object"
	case "bool":
		return "boolean"
	}
	return kind
}

// validate reports every problem at once.
func (c Config) validate(name, secret string) error {
	var problems []errs.FieldError
	check := func(bad bool, field, msg string) {
		if bad {
			problems = append(problems, errs.FieldError{Field: field, Detail: msg})
		}
	}
	check(c.ClientID == "", "clientId", "is required: the client ID the provider gave when you registered Gatehouse")
	check(strings.ContainsFunc(c.ClientID, isControl), "clientId", "must not contain control characters")
	check(secret == "", "clientSecretEnv", "gives no client secret: set clientSecretEnv to an environment variable of the host that holds it")
	check(c.Issuer == "", "issuer", "is required: the provider's issuer URL, such as https://keycloak.example.com/realms/main")
	if c.Issuer != "" {
		check(!validIssuer(c.Issuer), "issuer",
			"must be an https URL without query or fragment (http only for a loopback host)")
	}
	checkScopes := func(field string, scopes []string) {
		check(len(scopes) == 0, field, "must name at least one scope")
		check(len(scopes) > 0 && !slices.Contains(scopes, "openid"), field, "must include openid")
		for i, s := range scopes {
			check(!validScope(s), fmt.Sprintf("%s.%d", field, i), "is not a scope: printable characters without spaces or quotes")
		}
	}
	checkScopes("scopes", c.Scopes)
	if c.IntegrationScopes != nil {
		checkScopes("integrationScopes", c.IntegrationScopes)
	}
	check(strings.ContainsFunc(c.UsernameClaim, isControl), "usernameClaim", "must not contain control characters")
	check(c.DisplayName == "", "displayName", "must not be empty")
	check(len(c.DisplayName) > 100 || strings.ContainsFunc(c.DisplayName, isControl), "displayName",
		"must be at most 100 bytes without control characters")
	keys := make([]string, 0, len(c.AuthParams))
	for k := range c.AuthParams {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		check(slices.Contains(reservedParams, k), "authParams."+k, "is set by Gatehouse and cannot be overridden")
		check(k == "" || strings.ContainsFunc(k+c.AuthParams[k], isControl), "authParams."+k, "must be a non-empty name and a value without control characters")
	}
	if len(problems) == 0 {
		return nil
	}
	return invalid(name, problems)
}

// invalid returns an Invalid error whose message names every problem, so the
// one line the host logs is enough to fix the configuration.
func invalid(name string, problems []errs.FieldError) error {
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Field + " " + p.Detail
	}
	return &errs.Error{Kind: errs.Invalid, Op: "oidc.Configure", Msg: name + " config: " + strings.Join(msgs, "; "), Fields: problems}
}

// validIssuer accepts an absolute https URL without query or fragment, or
// http for a loopback host (development and tests): over plain http anyone on
// the path could hand out keys that sign any identity.
func validIssuer(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		ip := net.ParseIP(h)
		return strings.EqualFold(h, "localhost") || ip != nil && ip.IsLoopback()
	}
	return false
}

// validScope follows RFC 6749's scope-token: printable ASCII but space, '"' and '\'.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
