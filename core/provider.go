package core

import (
	"context"
	"time"
)

// The plugin kinds of the configuration. A plugin binary may serve both. The
// plugin SDK has the same names; pluginhost maps one to the other.
const (
	KindIdentityProvider = "identity_provider"
	KindIntegration      = "integration"
)

// Capabilities an identity provider may declare in Describe; the core checks
// them before it calls the methods they name. pluginhost maps the SDK's
// capabilities to these.
const (
	CapMailVerification = "mail_verification" // SendVerification, ConfirmVerification
	CapPasswordReset    = "password_reset"    // SendPasswordReset, ConfirmPasswordReset
	CapPasswordCheck    = "password_check"    // CheckPassword: passwords verified elsewhere (LDAP)
	CapRedirect         = "redirect"          // AuthURL, Exchange: OAuth / OIDC redirect logins
	// CapCustomConfig is an integration's: it takes a configuration of the
	// user's (an API key, a server address) instead of an OAuth
	// authorization; the host stores it sealed as the account's credentials.
	CapCustomConfig = "custom_configuration"
)

// PluginInfo is what a plugin says of itself.
type PluginInfo struct {
	Name         string   // the plugin's own name ("email")
	Kind         string   // KindIdentityProvider or KindIntegration
	Version      string   // the plugin's version, free form ("1.2.0")
	DisplayName  string   // for people ("Email and password")
	Capabilities []string // identity providers: Cap* values
}

// MailRequest asks a provider to send a mail about a user's address: a
// verification or a password reset. The plugin makes a single-use token, keeps
// only its hash, and sends Link with the token appended (Link ends with "token=").
type MailRequest struct {
	UserID      string
	Email       string
	DisplayName string // how to greet the user; may be empty
	Link        string // the page the mail links to, up to and including "token="
}

// MailSubject is what a confirmed mail token was about.
type MailSubject struct {
	UserID string
	Email  string
}

// Identity is a user's identity at a provider, normalised.
type Identity struct {
	Provider      string // "email", "google", "github" or a plugin's name
	Subject       string // the user's id at the provider (the email itself for "email")
	Email         string
	EmailVerified bool
	Username      string // the provider's login, if it has one
	DisplayName   string
	GivenName     string
	FamilyName    string
	AvatarURL     string
	RawClaims     map[string]any // the provider's own claims, as JSON values
	LinkedAt      time.Time      // when Gatehouse linked it to the user (set by the core)
}

// AuthURLRequest asks a redirect provider where to send the browser.
type AuthURLRequest struct {
	State         string   // single-use, kept by the host
	CodeChallenge string   // PKCE S256 challenge; the verifier stays with the host
	RedirectURI   string   // the host's callback URL
	Scopes        []string // empty: the plugin's configured scopes
	Nonce         string   // OpenID Connect: the ID token must carry it back
	LoginHint     string   // who is expected to sign in (an email, a login); may be empty
}

// ExchangeRequest asks a redirect provider to redeem an authorization code.
type ExchangeRequest struct {
	Code         string
	CodeVerifier string
	RedirectURI  string
	Nonce        string // the AuthURL request's: an ID token must carry it
}

// IdentityProvider is an identity provider as the core uses it; pluginhost
// implements it over its plugin processes (plugins themselves implement the
// SDK's interface, which has Configure besides). A method outside
// the provider's capabilities answers NotFound. Errors keep their kind across the
// process boundary: Invalid, NotFound (an unknown, used or expired token),
// Unauthorized, RateLimited, Unavailable (the plugin is down, or its mail server).
type IdentityProvider interface {
	Describe(ctx context.Context) (PluginInfo, error)
	// SendVerification mails a link that confirms req.Email belongs to req.UserID.
	SendVerification(ctx context.Context, req MailRequest) error
	// ConfirmVerification redeems a verification token, once.
	ConfirmVerification(ctx context.Context, token string) (MailSubject, error)
	// SendPasswordReset mails a link to set a new password.
	SendPasswordReset(ctx context.Context, req MailRequest) error
	// ConfirmPasswordReset redeems a reset token, once.
	ConfirmPasswordReset(ctx context.Context, token string) (MailSubject, error)
	// CheckPassword checks a password at the provider (LDAP and the like) and
	// returns the identity. Unauthorized when it does not match.
	CheckPassword(ctx context.Context, identifier, password string) (Identity, error)
	// AuthURL returns the provider's authorization URL.
	AuthURL(ctx context.Context, req AuthURLRequest) (string, error)
	// Exchange redeems an authorization code for the user's identity.
	Exchange(ctx context.Context, req ExchangeRequest) (Identity, error)
}

// IntegrationAccount is a third-party account linked through an integration.
type IntegrationAccount struct {
	Connector      string // the integration's name ("google", "github")
	UserIdentifier string // the account's id at that service
	DisplayName    string
	Scopes         []string // granted
}

// IntegrationTokens are an integration account's tokens; the core stores them
// encrypted.
type IntegrationTokens struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	ExpiresAt    time.Time // zero: unknown
}

// Integration is a third-party integration as the core uses it; pluginhost
// implements it over its plugin processes. Errors are IdentityProvider's.
type Integration interface {
	Describe(ctx context.Context) (PluginInfo, error)
	AuthURL(ctx context.Context, req AuthURLRequest) (string, error)
	Exchange(ctx context.Context, req ExchangeRequest) (IntegrationAccount, IntegrationTokens, error)
	Refresh(ctx context.Context, refreshToken string) (IntegrationTokens, error)
	Revoke(ctx context.Context, tokens IntegrationTokens) error
}

// KV is a plugin's key-value namespace in the core's store (Store.PluginKV),
// served to the plugin as a host service: plugins keep short-lived state there
// without a Redis client of their own. Its method set is the SDK's KV word for
// word, so that pluginhost hands the store's KV to plugins as it is: keep the
// two identical. Keys and values are opaque bytes; ttl 0 means no expiry (and
// removes an earlier one). Methods return Invalid for an empty key or a
// negative ttl, Unavailable when the store cannot answer. No security decision
// may rest on a ttl alone: a value that must expire carries its own expiry too.
type KV interface {
	// Get returns the value and whether the key exists.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key and reports whether it existed (so a single-use token
	// is redeemed by exactly one caller).
	Delete(ctx context.Context, key string) (bool, error)
	// CompareAndSet stores value only if the key currently holds old (nil old:
	// only if the key is absent) and reports whether it did.
	CompareAndSet(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error)
}

// PluginState is where a plugin is in its life, as GET /plugins shows it.
type PluginState string

// The states of a plugin. Calls to it succeed only in PluginRunning.
const (
	PluginStarting   PluginState = "starting"   // its first start is under way
	PluginRunning    PluginState = "running"    // configured and serving
	PluginRestarting PluginState = "restarting" // it stopped unexpectedly; a new process is on its way
	PluginFailed     PluginState = "failed"     // it cannot start, or crashed too often: the host gave up
	PluginStopped    PluginState = "stopped"    // not started yet, or the host is closed
)

// PluginStatus is what the admin API shows of a configured plugin.
type PluginStatus struct {
	Name string
	// Kinds are the kinds (KindIdentityProvider, KindIntegration) the
	// running process serves, or the last one; before the first start, the
	// configured kind if the entry names one.
	Kinds    []string
	Builtin  string // the built-in plugin run, or
	Path     string // the external plugin's path, as configured
	Version  string // as the plugin last described itself; "" before its first start
	State    PluginState
	Healthy  bool // running and answering health checks
	PID      int  // the current process; 0 when none
	Restarts int  // since the host started
	// LastError says why the plugin last stopped or failed to start; it
	// holds no secret (the plugin's own errors cross with their client-safe
	// message only).
	LastError string
	StartedAt time.Time // of the current process; zero when none
}
