package github

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// SecretClientSecret is the key of the OAuth app's client secret in
// sdk.Config.Secrets; the host resolves it from clientSecretEnv.
const SecretClientSecret = "clientSecret"

// Defaults of the settings a configuration may leave out.
const (
	DefaultAuthURL  = "https://github.com/login/oauth/authorize"
	DefaultTokenURL = "https://github.com/login/oauth/access_token"
	DefaultAPIURL   = "https://api.github.com"
	// DefaultTimeout bounds each call to the plugin, all its requests to
	// GitHub together: below the host's default call timeout of 5 s, so that a
	// slow GitHub is reported by the plugin as Unavailable, not cut off.
	DefaultTimeout = 4 * time.Second
	// MaxTimeout keeps a typo ("40m") from holding a sign-in open.
	MaxTimeout = time.Minute
)

// DefaultScopes are what a sign-in asks for: the profile and the addresses
// (user:email lets /user/emails tell which address is verified).
var DefaultScopes = []string{"read:user", "user:email"}

// Config is the GitHub plugin's configuration block, as JSON (see the package
// documentation for each key).
type Config struct {
	ClientID          string       `json:"clientId"`
	AuthURL           string       `json:"authURL"`
	TokenURL          string       `json:"tokenURL"`
	APIURL            string       `json:"apiURL"`
	Scopes            []string     `json:"scopes"`
	IntegrationScopes []string     `json:"integrationScopes"` // nil: Scopes
	AllowSignup       *bool        `json:"allowSignup"`       // nil: true
	Prompt            string       `json:"prompt"`            // "" or "select_account"
	Timeout           sdk.Duration `json:"timeout"`
}

// DefaultConfig returns what an empty block means, clientId aside.
func DefaultConfig() Config {
	return Config{
		AuthURL: DefaultAuthURL, TokenURL: DefaultTokenURL, APIURL: DefaultAPIURL,
		Scopes: slices.Clone(DefaultScopes), Timeout: sdk.Duration(DefaultTimeout),
	}
}

// knownKeys are the keys of the block. clientSecretEnv is not among them:
// the host resolves it and takes it out of the block before the plugin sees it.
var knownKeys = []string{"clientId", "authURL", "tokenURL", "apiURL", "scopes",
	"integrationScopes", "allowSignup", "prompt", "timeout"}

// ParseConfig decodes raw over DefaultConfig and validates the result. Invalid
// names every problem: unknown keys, bad types, bad values.
func ParseConfig(raw json.RawMessage) (Config, error) {
	const op = "github.ParseConfig"
	cfg := DefaultConfig()
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return cfg, cfg.Validate()
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return Config{}, errs.Errorf(errs.Invalid, op, "github config: must be a JSON object")
	}
	var problems []errs.FieldError
	for k := range top {
		switch {
		case k == SecretClientSecret:
			problems = append(problems, errs.FieldError{Field: k,
				Detail: "must not be written in the configuration: name an environment variable with clientSecretEnv"})
		case !slices.Contains(knownKeys, k):
			problems = append(problems, errs.FieldError{Field: k, Detail: "is not a setting of the github plugin"})
		}
	}
	if len(problems) > 0 {
		slices.SortFunc(problems, func(a, b errs.FieldError) int { return strings.Compare(a.Field, b.Field) })
		return Config{}, invalidConfig(op, problems)
	}
	// Key by key, so that a bad value is named by its key; a null keeps the default.
	for k, v := range top {
		if string(bytes.TrimSpace(v)) == "null" {
			continue
		}
		if err := json.Unmarshal(v, field(&cfg, k)); err != nil {
			problems = append(problems, errs.FieldError{Field: k, Detail: typeProblem(err)})
		}
	}
	if len(problems) > 0 {
		slices.SortFunc(problems, func(a, b errs.FieldError) int { return strings.Compare(a.Field, b.Field) })
		return Config{}, invalidConfig(op, problems)
	}
	return cfg, cfg.Validate()
}

// field returns a pointer to c's field under a known key.
func field(c *Config, key string) any {
	switch key {
	case "clientId":
		return &c.ClientID
	case "authURL":
		return &c.AuthURL
	case "tokenURL":
		return &c.TokenURL
	case "apiURL":
		return &c.APIURL
	case "scopes":
		return &c.Scopes
	case "integrationScopes":
		return &c.IntegrationScopes
	case "allowSignup":
		return &c.AllowSignup
	case "prompt":
		return &c.Prompt
	default: // "timeout"; ParseConfig passes known keys only
		return &c.Timeout
	}
}

func typeProblem(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("want a %s, not a JSON %s", te.Type, te.Value)
	}
	return err.Error()
}

// Validate reports every problem of c at once, as an Invalid error with one
// field error each.
func (c Config) Validate() error {
	var problems []errs.FieldError
	check := func(bad bool, field, msg string) {
		if bad {
			problems = append(problems, errs.FieldError{Field: field, Detail: msg})
		}
	}
	check(c.ClientID == "", "clientId", "is required: the OAuth app's client ID")
	check(strings.ContainsFunc(c.ClientID, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' }),
		"clientId", "must not contain spaces, slashes or control characters")
	for _, u := range []struct{ field, value string }{{"authURL", c.AuthURL}, {"tokenURL", c.TokenURL}, {"apiURL", c.APIURL}} {
		check(!isHTTPURL(u.value), u.field, "must be an absolute http(s) URL")
	}
	check(len(c.Scopes) == 0, "scopes", "must not be empty: a sign-in needs at least read:user")
	checkScopes := func(field string, scopes []string) {
		for i, s := range scopes {
			check(s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == ',' || r == 0x7f }),
				fmt.Sprintf("%s.%d", field, i), "must be one scope name, without spaces or commas")
		}
	}
	checkScopes("scopes", c.Scopes)
	checkScopes("integrationScopes", c.IntegrationScopes)
	check(c.Prompt != "" && c.Prompt != "select_account", "prompt", `must be "" or "select_account"`)
	check(c.Timeout <= 0 || time.Duration(c.Timeout) > MaxTimeout, "timeout", "must be positive and at most 1m")
	if len(problems) == 0 {
		return nil
	}
	return invalidConfig("github.Config.Validate", problems)
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.Fragment == ""
}

// invalidConfig returns an Invalid error whose message names every problem, so
// that the one line the host logs is enough to fix the configuration.
func invalidConfig(op string, problems []errs.FieldError) error {
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Field + " " + p.Detail
	}
	return &errs.Error{Kind: errs.Invalid, Op: op, Msg: "github config: " + strings.Join(msgs, "; "), Fields: problems}
}

// integrationScopes returns the scopes an integration asks for.
func (c Config) integrationScopes() []string {
	if c.IntegrationScopes != nil {
		return c.IntegrationScopes
	}
	return c.Scopes
}

// allowSignup returns the allow_signup parameter's value.
func (c Config) allowSignup() string {
	if c.AllowSignup != nil && !*c.AllowSignup {
		return "false"
	}
	return "true"
}
