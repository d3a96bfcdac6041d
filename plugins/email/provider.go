// Package email is the email identity provider: the mail side of email sign-up
// and password reset. Passwords belong to the Gatehouse server; this provider owns
// the verification and reset tokens, the messages and their delivery, through
// an SMTP server or, in development, an outbox folder of .eml files.
//
// Tokens are 256 random bits, base64url without padding (43 characters). Only
// their SHA-256 is kept, in the host's key-value namespace of the plugin:
//
//	verify:<sha256 hex>       → {"userId": …, "email": …}   TTL verificationTTL
//	reset:<sha256 hex>        → {"userId": …, "email": …}   TTL resetTTL
//	verify-user:<userId>      → <sha256 hex> of the user's newest verification token
//	reset-user:<userId>       → <sha256 hex> of the user's newest reset token
//
// A new mail deletes the user's previous token, so only the newest link works.
// Confirming deletes the token; only the caller whose delete removed it wins.
package email

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// Version is the email provider's version, reported by Describe.
const Version = "1.0.0"

// Provider is the email identity provider. Its methods are safe for concurrent
// use; Configure may be called again to replace the configuration.
type Provider struct {
	sdk.Unsupported // CheckPassword, AuthURL, Exchange: NotFound

	state   atomic.Pointer[state]
	rootCAs *x509.CertPool // tests: trust a test server's certificate
}

var _ sdk.IdentityProvider = (*Provider)(nil)

// state is what Configure sets up, replaced as a whole.
type state struct {
	cfg    Config
	from   mail.Address
	kv     sdk.KV
	log    sdk.HostLogger
	sender sender
}

// New returns an unconfigured provider; every mail method answers Unavailable
// until Configure succeeds.
func New() *Provider { return &Provider{} }

// Describe says what the provider is and can do.
func (p *Provider) Describe(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{
		Name:         "email",
		Kind:         sdk.KindIdentityProvider,
		Version:      Version,
		DisplayName:  "Email and password",
		Capabilities: []string{sdk.CapMailVerification, sdk.CapPasswordReset},
	}, nil
}

// Configure reads the configuration block (see Config) and the SMTP password
// (cfg.Secrets["smtp.password"]), prepares delivery, and logs one line saying
// where mail goes. Invalid for a bad configuration, naming every problem;
// Unavailable when the outbox folder cannot be created.
func (p *Provider) Configure(ctx context.Context, cfg sdk.Config, host sdk.Host) error {
	const op = "email.Configure"
	if host.KV == nil || host.Log == nil {
		return errs.Errorf(errs.Internal, op, "email: the host gave no key-value store or logger")
	}
	c, err := ParseConfig(cfg.Raw)
	if err != nil {
		return err
	}
	password := cfg.Secrets[SecretSMTPPassword]
	var problems []errs.FieldError
	if c.SMTP.Host != "" && c.SMTP.Username != "" && password == "" {
		problems = append(problems, errs.FieldError{Field: "smtp.passwordEnv",
			Detail: "gives an empty password: set smtp.passwordEnv and that environment variable of the host"})
	}
	if c.SMTP.Host != "" && c.SMTP.Username == "" && password != "" {
		problems = append(problems, errs.FieldError{Field: "smtp.username", Detail: "is required when a password is given"})
	}
	if len(problems) > 0 {
		return invalidConfig(op, problems)
	}
	from, _ := mail.ParseAddress(c.From) // Validate checked it

	var snd sender
	if c.SMTP.Host != "" {
		snd = &smtpSender{host: c.SMTP.Host, port: c.SMTP.Port, mode: c.SMTP.TLS, username: c.SMTP.Username,
			password: password, timeout: time.Duration(c.SMTP.Timeout), rootCAs: p.rootCAs}
	} else {
		o, err := newOutbox(c.Outbox)
		if err != nil {
			return &errs.Error{Kind: errs.Unavailable, Op: op, Msg: "email: cannot create the outbox folder", Err: err}
		}
		snd = o
	}
	p.state.Store(&state{cfg: c, from: *from, kv: host.KV, log: host.Log, sender: snd})
	host.Log.Log(ctx, "info", "email: mail goes to "+describe(snd), snd.where())
	return nil
}

func describe(s sender) string {
	if _, ok := s.(*outbox); ok {
		return "the outbox folder (no smtp.host configured)"
	}
	return "the SMTP server"
}

// SendVerification mails req.Link plus a new token that confirms req.Email
// belongs to req.UserID, and invalidates the user's previous verification link.
// Invalid for a bad request, Unavailable when the mail cannot be delivered.
func (p *Provider) SendVerification(ctx context.Context, req sdk.MailRequest) error {
	return p.send(ctx, "email.SendVerification", PurposeVerification, req)
}

// SendPasswordReset mails req.Link plus a new token to set a new password,
// and invalidates the user's previous reset link. Invalid for a bad request,
// Unavailable when the mail cannot be delivered.
func (p *Provider) SendPasswordReset(ctx context.Context, req sdk.MailRequest) error {
	return p.send(ctx, "email.SendPasswordReset", PurposePasswordReset, req)
}

// ConfirmVerification redeems a verification token, once. NotFound for an
// unknown, used or expired token.
func (p *Provider) ConfirmVerification(ctx context.Context, token string) (sdk.MailSubject, error) {
	return p.confirm(ctx, "email.ConfirmVerification", PurposeVerification, token)
}

// ConfirmPasswordReset redeems a reset token, once. NotFound for an unknown,
// used or expired token.
func (p *Provider) ConfirmPasswordReset(ctx context.Context, token string) (sdk.MailSubject, error) {
	return p.confirm(ctx, "email.ConfirmPasswordReset", PurposePasswordReset, token)
}

// tokenRecord is what the key-value store keeps under a token's hash.
type tokenRecord struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
}

// keys returns the key prefixes of a purpose: token hash, user's newest hash.
func keys(purpose Purpose) (token, user string) {
	if purpose == PurposePasswordReset {
		return "reset:", "reset-user:"
	}
	return "verify:", "verify-user:"
}

func (p *Provider) send(ctx context.Context, op string, purpose Purpose, req sdk.MailRequest) error {
	st := p.state.Load()
	if st == nil {
		return errs.Errorf(errs.Unavailable, op, "email provider is not configured")
	}
	to, err := checkRequest(req)
	if err != nil {
		return &errs.Error{Kind: errs.Invalid, Op: op, Msg: err.Error()}
	}
	ttl := time.Duration(st.cfg.VerificationTTL)
	if purpose == PurposePasswordReset {
		ttl = time.Duration(st.cfg.ResetTTL)
	}

	token, hash := newToken()
	tokenPrefix, userPrefix := keys(purpose)
	record, _ := json.Marshal(tokenRecord{UserID: req.UserID, Email: to.Address}) // cannot fail
	if err := st.kv.Set(ctx, tokenPrefix+hash, record, ttl); err != nil {
		return &errs.Error{Op: op, Err: err} // keeps the store's kind
	}

	link := req.Link + token
	msg, err := Compose(Mail{Purpose: purpose, From: st.from, To: to, ProductName: st.cfg.ProductName,
		Link: link, TTL: ttl, Date: time.Now()})
	if err == nil {
		err = st.sender.send(ctx, st.from.Address, to.Address, msg, token, link)
	}
	if err != nil {
		// The new token is useless without its mail; the previous link stays valid.
		_, _ = st.kv.Delete(context.WithoutCancel(ctx), tokenPrefix+hash)
		safe := "mail server unavailable"
		if _, ok := st.sender.(*outbox); ok {
			safe = "mail outbox unavailable"
		}
		return &errs.Error{Kind: errs.Unavailable, Op: op, Msg: safe, Err: err}
	}

	// Only the newest link works: make this token the user's newest and delete
	// the one it replaces. Compare-and-set, so that two mails sent at once still
	// leave a single valid token.
	userKey := userPrefix + req.UserID
	for range 10 {
		old, found, err := st.kv.Get(ctx, userKey)
		if err != nil {
			return p.replaceFailed(ctx, st, op, err)
		}
		if !found {
			old = nil
		}
		swapped, err := st.kv.CompareAndSet(ctx, userKey, old, []byte(hash), ttl)
		if err != nil {
			return p.replaceFailed(ctx, st, op, err)
		}
		if !swapped {
			continue
		}
		if found && string(old) != hash {
			if _, err := st.kv.Delete(ctx, tokenPrefix+string(old)); err != nil {
				return p.replaceFailed(ctx, st, op, err)
			}
		}
		return nil
	}
	return p.replaceFailed(ctx, st, op, fmt.Errorf("%s changed 10 times in a row", userPrefix+"<userId>"))
}

// replaceFailed reports that the mail went out but the previous link may still
// work until it expires. The user has a working mail, so this is not the
// caller's failure: log it and answer success.
func (p *Provider) replaceFailed(ctx context.Context, st *state, op string, err error) error {
	st.log.Log(ctx, "warn", "email: mail sent, but the previous link could not be invalidated; it works until it expires",
		map[string]string{"op": op, "kind": errs.KindOf(err).String()}) // the error itself might name a key
	return nil
}

func (p *Provider) confirm(ctx context.Context, op string, purpose Purpose, token string) (sdk.MailSubject, error) {
	st := p.state.Load()
	if st == nil {
		return sdk.MailSubject{}, errs.Errorf(errs.Unavailable, op, "email provider is not configured")
	}
	invalid := errs.Errorf(errs.NotFound, op, "link is invalid or has expired")
	if !wellFormed(token) {
		return sdk.MailSubject{}, invalid
	}
	tokenPrefix, _ := keys(purpose)
	key := tokenPrefix + hashToken(token)
	value, found, err := st.kv.Get(ctx, key)
	if err != nil {
		return sdk.MailSubject{}, &errs.Error{Op: op, Err: err}
	}
	if !found {
		return sdk.MailSubject{}, invalid
	}
	deleted, err := st.kv.Delete(ctx, key)
	if err != nil {
		return sdk.MailSubject{}, &errs.Error{Op: op, Err: err}
	}
	if !deleted { // another caller redeemed it between our Get and Delete
		return sdk.MailSubject{}, invalid
	}
	var rec tokenRecord
	if err := json.Unmarshal(value, &rec); err != nil || rec.UserID == "" {
		return sdk.MailSubject{}, &errs.Error{Kind: errs.Internal, Op: op, Err: fmt.Errorf("stored token record: %v", err)}
	}
	return sdk.MailSubject{UserID: rec.UserID, Email: rec.Email}, nil
}

// checkRequest validates req and returns the recipient.
func checkRequest(req sdk.MailRequest) (mail.Address, error) {
	switch {
	case req.UserID == "":
		return mail.Address{}, fmt.Errorf("userId is required")
	case len(req.UserID) > 256:
		return mail.Address{}, fmt.Errorf("userId is longer than 256 bytes")
	case !strings.HasSuffix(req.Link, "token=") ||
		!(strings.HasPrefix(req.Link, "https://") || strings.HasPrefix(req.Link, "http://")):
		return mail.Address{}, fmt.Errorf("link must be an http(s) URL ending with \"token=\"")
	case strings.ContainsFunc(req.Link, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return mail.Address{}, fmt.Errorf("link must not contain spaces or control characters")
	}
	a, err := mail.ParseAddress(req.Email)
	if err != nil || a.Address != req.Email || a.Name != "" {
		return mail.Address{}, fmt.Errorf("email is not a valid address")
	}
	return mail.Address{Name: req.DisplayName, Address: a.Address}, nil
}

// tokenLen is the length of a token: 32 bytes in unpadded base64url.
var tokenLen = base64.RawURLEncoding.EncodedLen(32)

// newToken returns a new token and the hex SHA-256 under which it is stored.
func newToken() (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// wellFormed reports whether token could be one of ours, so that junk never
// reaches the store.
func wellFormed(token string) bool {
	if len(token) != tokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}
