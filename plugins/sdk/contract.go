package sdk

import (
	"context"
	"time"
)

// The plugin contract: what a plugin implements, the values it exchanges
// with the host and the host services it may call. It uses standard types
// only; the host translates these into its own at the process boundary.

// The plugin kinds. A plugin binary may serve both; the host's configuration
// says which one each plugin is used as.
const (
	KindIdentityProvider = "identity_provider"
	KindIntegration      = "integration"
)

// The capabilities an identity provider may declare in Describe. The host
// calls only the methods of the capabilities a provider declares.
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

// PluginInfo is what a plugin says of itself in Describe. A plugin describes
// itself the same way for the whole life of its process: the host asks once
// per start.
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

// Identity is a user's identity at a provider, normalised, as the provider
// returns it. The host links it to a user and records when.
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

// IntegrationAccount is a third-party account linked through an integration.
type IntegrationAccount struct {
	Connector      string // the integration's name ("google", "github")
	UserIdentifier string // the account's id at that service
	DisplayName    string
	Scopes         []string // granted
}

// IntegrationTokens are an integration account's tokens; the host stores
// them encrypted.
type IntegrationTokens struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	ExpiresAt    time.Time // zero: unknown
}

// IdentityProvider is an identity-provider plugin. A method outside the
// provider's capabilities answers NotFound (embed Unsupported for that).
// Errors keep their errs.Kind and client-safe message across the process
// boundary: Invalid, NotFound (an unknown, used or expired token),
// Unauthorized, RateLimited, Unavailable (the mail server is down, say).
type IdentityProvider interface {
	// Configure is called once after every start of the plugin, before any
	// other call. An error keeps the host from using the plugin; Invalid or
	// Malformed tells it the configuration is wrong, so it stops retrying.
	Configure(ctx context.Context, cfg Config, host Host) error
	// Describe says what the plugin is and can do.
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

// Integration is an integration plugin: a third-party account linked to a
// user, whose tokens the host stores, refreshes and revokes. Errors cross as
// IdentityProvider's do.
type Integration interface {
	// Configure is called once after every start of the plugin, before any
	// other call. An error keeps the host from using the plugin.
	Configure(ctx context.Context, cfg Config, host Host) error
	// Describe says what the plugin is.
	Describe(ctx context.Context) (PluginInfo, error)
	// AuthURL returns the service's authorization URL.
	AuthURL(ctx context.Context, req AuthURLRequest) (string, error)
	// Exchange redeems an authorization code for the account and its tokens.
	Exchange(ctx context.Context, req ExchangeRequest) (IntegrationAccount, IntegrationTokens, error)
	// Refresh returns fresh tokens for a refresh token.
	Refresh(ctx context.Context, refreshToken string) (IntegrationTokens, error)
	// Revoke revokes tokens at the service.
	Revoke(ctx context.Context, tokens IntegrationTokens) error
}

// KV is a plugin's key-value namespace in the host's store, a host service:
// plugins keep short-lived state there without a database of their own. Keys
// and values are opaque bytes; ttl 0 means no expiry (and removes an earlier
// one). Methods return Invalid for an empty key or a negative ttl,
// Unavailable when the store cannot answer. No security decision may rest on
// a ttl alone: a value that must expire carries its own expiry too.
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

// HostLogger is the host's log, a host service: a plugin's lines land in the
// host's log stream, tagged with the plugin's name.
type HostLogger interface {
	// Log writes one line at level ("trace", "debug", "info", "warn", "error")
	// with string fields. It must never be given a secret.
	Log(ctx context.Context, level, msg string, fields map[string]string)
}
