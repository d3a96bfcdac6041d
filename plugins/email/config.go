package email

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// TLS modes of the SMTP connection (Config.SMTP.TLS).
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS; refuse to send if the server does not offer it
	TLSImplicit = "implicit" // TLS from the first byte (SMTPS, usually port 465)
	TLSNone     = "none"     // clear text; AUTH only to a loopback host
)

// SecretSMTPPassword is the key of the SMTP password in sdk.Config.Secrets; the
// host resolves it from smtp.passwordEnv.
const SecretSMTPPassword = "smtp.password"

// Defaults of the settings a configuration may leave out.
const (
	DefaultProductName     = "Gatehouse"
	DefaultVerificationTTL = 24 * time.Hour
	DefaultResetTTL        = time.Hour
	DefaultSMTPTimeout     = 10 * time.Second
)

// Config is the email provider's configuration block, as JSON:
//
//	{ "from": "Gatehouse <no-reply@localhost>",
//	  "productName": "Gatehouse",
//	  "smtp": { "host": "", "port": 587, "username": "", "passwordEnv": "SMTP_PASSWORD",
//	            "tls": "starttls", "timeout": "10s" },
//	  "outbox": "",
//	  "verificationTTL": "24h", "resetTTL": "1h" }
//
// Mail goes through SMTP when smtp.host is set, else into the outbox folder.
type Config struct {
	From            string       `json:"from"`        // required, one RFC 5322 mailbox
	ProductName     string       `json:"productName"` // in subjects and bodies
	SMTP            SMTPConfig   `json:"smtp"`
	Outbox          string       `json:"outbox"` // folder for .eml files when smtp.host is empty
	VerificationTTL sdk.Duration `json:"verificationTTL"`
	ResetTTL        sdk.Duration `json:"resetTTL"`
}

// SMTPConfig says how to reach the mail server.
type SMTPConfig struct {
	Host        string       `json:"host"`
	Port        int          `json:"port"`        // 0: 587 (starttls), 465 (implicit) or 25 (none)
	Username    string       `json:"username"`    // AUTH PLAIN when set
	PasswordEnv string       `json:"passwordEnv"` // resolved by the host into Secrets["smtp.password"]
	TLS         string       `json:"tls"`         // starttls (default), implicit or none
	Timeout     sdk.Duration `json:"timeout"`     // whole SMTP conversation; default 10s
}

// DefaultConfig returns the configuration that an empty block means, outbox
// aside: the host always fills a default outbox.
func DefaultConfig() Config {
	return Config{
		ProductName:     DefaultProductName,
		SMTP:            SMTPConfig{TLS: TLSStartTLS, Timeout: sdk.Duration(DefaultSMTPTimeout)},
		VerificationTTL: sdk.Duration(DefaultVerificationTTL),
		ResetTTL:        sdk.Duration(DefaultResetTTL),
	}
}

// knownKeys lists the JSON keys of Config and SMTPConfig, so that unknown ones are
// all named at once (a json.Decoder stops at the first).
var knownKeys = map[string][]string{
	"":     {"from", "productName", "smtp", "outbox", "verificationTTL", "resetTTL"},
	"smtp": {"host", "port", "username", "passwordEnv", "tls", "timeout"},
}

// ParseConfig decodes raw over DefaultConfig, fills the port from the TLS mode,
// and validates the result. Invalid lists every problem, unknown keys included.
func ParseConfig(raw json.RawMessage) (Config, error) {
	const op = "email.ParseConfig"
	cfg := DefaultConfig()
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return cfg, cfg.Validate()
	}
	if unknown := unknownKeys(raw); len(unknown) > 0 {
		return Config{}, errs.Errorf(errs.Invalid, op, "email config: unknown keys: %s", strings.Join(unknown, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, errs.Errorf(errs.Invalid, op, "email config: %s", jsonProblem(err))
	}
	if dec.More() {
		return Config{}, errs.Errorf(errs.Invalid, op, "email config: more than one JSON value")
	}
	if cfg.SMTP.Port == 0 {
		switch cfg.SMTP.TLS {
		case TLSStartTLS:
			cfg.SMTP.Port = 587
		case TLSImplicit:
			cfg.SMTP.Port = 465
		case TLSNone:
			cfg.SMTP.Port = 25
		}
	}
	return cfg, cfg.Validate()
}

// unknownKeys returns the keys of raw (and of its "smtp" object) that Config
// does not know, as dotted paths. Malformed JSON is left to the decoder.
func unknownKeys(raw json.RawMessage) []string {
	var unknown []string
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return nil
	}
	for k, v := range top {
		if !slices.Contains(knownKeys[""], k) {
			unknown = append(unknown, k)
			continue
		}
		if k != "smtp" {
			continue
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(v, &inner) != nil {
			continue
		}
		for ik := range inner {
			if !slices.Contains(knownKeys["smtp"], ik) {
				unknown = append(unknown, "smtp."+ik)
			}
		}
	}
	slices.Sort(unknown)
	return unknown
}

// jsonProblem turns a decoding error into a sentence naming the key at fault.
func jsonProblem(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
		return fmt.Sprintf("%s: want a %s, not a JSON %s", te.Field, te.Type, te.Value)
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
	from, fromErr := mail.ParseAddress(c.From)
	check(c.From == "", "from", "is required: the sender mailbox, such as \"Gatehouse <no-reply@example.com>\"")
	check(c.From != "" && fromErr != nil, "from", "is not one RFC 5322 mailbox, such as \"Gatehouse <no-reply@example.com>\"")
	check(fromErr == nil && !strings.Contains(from.Address, "@"), "from", "has no domain")
	check(c.ProductName == "", "productName", "must not be empty")
	check(len(c.ProductName) > 100, "productName", "is longer than 100 bytes")
	check(strings.ContainsFunc(c.ProductName, isControl), "productName", "must not contain control characters")
	check(c.VerificationTTL <= 0, "verificationTTL", "must be positive")
	check(c.ResetTTL <= 0, "resetTTL", "must be positive")
	if c.SMTP.Host == "" {
		check(c.Outbox == "", "outbox", "is required when smtp.host is empty: mail needs an SMTP server or an outbox folder")
	} else {
		s := c.SMTP
		check(strings.ContainsAny(s.Host, ":/ ") && net.ParseIP(s.Host) == nil, "smtp.host", "must be a host name or IP address, without a port")
		check(s.Port < 1 || s.Port > 65535, "smtp.port", "must be between 1 and 65535")
		check(!slices.Contains([]string{TLSStartTLS, TLSImplicit, TLSNone}, s.TLS), "smtp.tls", "must be starttls, implicit or none")
		check(s.Timeout <= 0, "smtp.timeout", "must be positive")
		check(s.Username != "" && s.TLS == TLSNone && !isLoopback(s.Host), "smtp.username",
			"would send the password in clear: use smtp.tls starttls or implicit, or a loopback smtp.host")
	}
	if len(problems) == 0 {
		return nil
	}
	return invalidConfig("email.Config.Validate", problems)
}

// invalidConfig returns an Invalid error whose message names every problem, so
// that the one line the host logs is enough to fix the configuration.
func invalidConfig(op string, problems []errs.FieldError) error {
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Field + " " + p.Detail
	}
	return &errs.Error{Kind: errs.Invalid, Op: op, Msg: "email config: " + strings.Join(msgs, "; "), Fields: problems}
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
