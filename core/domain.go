// Package core is Gatehouse's domain: users, applications, credentials, scopes and
// admin keys, the rules that validate them, the services that change them, and the
// Store interface that persists them. It knows nothing of HTTP, gRPC or Redis.
package core

import (
	"time"
)

// User is a person (or a service account) known to the gateway.
type User struct {
	ID            string // UUID
	Number        int64  // positive, assigned at creation, never reused; the users' paging cursor
	Username      string // as given; unique after RFC 8265 UsernameCaseMapped (UsernameKey)
	Email         string // normalised by NormalizeEmail; "" when none; unique case-insensitively
	EmailVerified bool
	ExternalID    string // the user's id in the customer's platform; unique when set
	RedirectURI   string
	IsActive      bool
	SessionsLimit *int           // nil: no per-user limit (the global cap applies)
	Props         map[string]any // model properties other than the core fields (firstname, lastname, custom)
	// Identities are the user's identities at providers; the first is the
	// sign-up identity. Admin-created users have none.
	Identities []Identity
	// ClientID is the client (tenant) the user was created through, and
	// ClientIdentifier the client's identifier for it (unique within the
	// client, case-sensitive); both empty for other users.
	ClientID         string
	ClientIdentifier string
	// SecretPreview shows the end of the user's secret ("sk-user-...1a2B3c4D"),
	// when the surface that made it keeps one; never the secret.
	SecretPreview string
	// Groups are the ids of the user's groups, sorted; an id whose group is
	// gone counts for nothing (readers check the registry) until the group's
	// deletion or Doctor removes it.
	Groups []string
	// Tags are the user's own permission tags, sorted; its effective tags add
	// its groups' (EffectiveTags).
	Tags []string
	// ExpiresAt, when set, is when an email sign-up that was never verified is
	// deleted; verification clears it. Zero: never.
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
	// Stored is the exact stored form this user was decoded from, as a store's
	// plain reads (GetUser, UserByName, UserByNumber, the unfiltered ListUsers)
	// return it, "" otherwise. It is a memo key for what is derived from the
	// user alone (its version, its views): a value that is changed must not
	// keep it, and none of its readers change one. Never part of the user's
	// JSON, version or equality in tests.
	Stored string `json:"-"`
}

// LinkedAccount is a user's account at a third-party service, linked through
// an integration plugin, with its tokens sealed by the Keyring (the store
// never sees them in clear).
type LinkedAccount struct {
	ID             string   // UUID, kept when the account is linked again
	Connector      string   // the integration's name ("google", "github")
	UserIdentifier string   // the account at that service (an email, a login)
	DisplayName    string   // for people
	Scopes         []string // granted
	// Tokens is the account's IntegrationTokens, JSON sealed by the Keyring
	// (an "aesgcm:<keyid>:..." blob naming the key that sealed it).
	Tokens      string
	ExpiresAt   time.Time // of the access token; zero: unknown
	ConnectedAt time.Time
	UpdatedAt   time.Time // the last link or refresh
	// Selected marks the account a user's requests to the connector use by
	// default: one per connector (filled by the store on read).
	Selected bool
}

// Client is a tenant of the GL Connectors surface: its API keys create users
// that belong to it, and see only those.
type Client struct {
	ID        string // UUID
	Seq       int64  // creation sequence; the clients' paging cursor
	Name      string // unique, case-insensitively
	CreatedAt time.Time
}

// ClientWithKeys is a client with its keys, as the native admin API shows it:
// a client's version covers both, so a key made or revoked is a new version.
type ClientWithKeys struct {
	Client
	Keys []ClientKey
}

// ClientKey is one API key of a client ("sk-client-..."), kept as its
// SHA-256; the key itself is shown once.
type ClientKey struct {
	ID        string // short, random: names the key for revocation
	ClientID  string
	Hash      string // "sha256:<hex>"
	Preview   string // "sk-client-..." and the key's last 4 characters
	CreatedAt time.Time
}

// App is an application owned by a user.
type App struct {
	ID          string // UUID
	Seq         int64  // creation sequence; the apps' paging cursor
	Name        string // unique per owner
	UserID      string // owner
	RedirectURI string
	IsActive    bool           // its own flag
	OwnerActive bool           // the owner's flag when read (derived, never stored with the app)
	Props       map[string]any // model properties other than name and redirectUri
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Active reports the app's effective state: its own flag and its owner's.
func (a App) Active() bool { return a.IsActive && a.OwnerActive }

// CredentialType names a kind of credential, as Express Gateway spells it.
type CredentialType string

// The credential types.
const (
	KeyAuth   CredentialType = "key-auth"
	BasicAuth CredentialType = "basic-auth"
	OAuth2    CredentialType = "oauth2"
	JWT       CredentialType = "jwt"
)

// CredentialTypes lists every type, in the order lists show them.
var CredentialTypes = []CredentialType{KeyAuth, BasicAuth, OAuth2, JWT}

// Valid reports whether t is a known credential type.
func (t CredentialType) Valid() bool {
	switch t {
	case KeyAuth, BasicAuth, OAuth2, JWT:
		return true
	}
	return false
}

// Keyed reports whether credentials of type t are identified by a keyId, many per
// consumer (key-auth, jwt), rather than by the consumer's id, one active per consumer.
func (t CredentialType) Keyed() bool { return t == KeyAuth || t == JWT }

// ConsumerKind says whether a credential belongs to a user or to an app.
type ConsumerKind string

// The consumer kinds.
const (
	ConsumerUser ConsumerKind = "user"
	ConsumerApp  ConsumerKind = "app"
)

// ScopeGrant is one scope on a credential: the scope's name and the registration
// it was granted under. A grant is effective only while the registry holds that very
// registration, so deleting a scope and registering it again does not revive old grants.
type ScopeGrant struct {
	Name string
	Reg  string
}

// Scope is a registered scope name.
type Scope struct {
	Name      string
	Reg       string // registration id, new at every registration
	CreatedAt time.Time
}

// Credential is a secret a consumer presents to the gateway.
type Credential struct {
	Type         CredentialType
	ID           string // keyId for key-auth and jwt; the consumer's id for basic-auth and oauth2
	Seq          int64  // creation sequence; the credentials' paging cursor
	ConsumerID   string // user id or app id
	ConsumerKind ConsumerKind
	UserID       string // the user who owns the consumer (the consumer itself, or the app's owner)
	IsActive     bool   // its own flag
	OwnerActive  bool   // derived when read: the user's flag, and the app's for an app's credential
	Scopes       []ScopeGrant
	Secret       string         // stored form only: "sha256:<hex>", an argon2id PHC string, an "aesgcm:" blob, or a bcrypt hash an Express Gateway import brought (replaced at its first match)
	Algorithm    string         // jwt only: "HS256"
	ExpiresAt    time.Time      // zero: never
	Props        map[string]any // custom properties of the credential model
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Active reports the credential's effective state: its own flag and its owners'.
func (c Credential) Active() bool { return c.IsActive && c.OwnerActive }

// Expired reports whether the credential is past its expiresAt at now.
func (c Credential) Expired(now time.Time) bool {
	return !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt)
}

// AdminScope is what an admin key may do.
type AdminScope string

// The admin key scopes: everything, GET only, or one dialect's routes only.
const (
	ScopeAdmin     AdminScope = "admin"
	ScopeRead      AdminScope = "read"
	ScopePublicala AdminScope = "publicala"
	ScopeGaio      AdminScope = "gaio"
	ScopeQloud     AdminScope = "qloud"
)

// Valid reports whether s is a known admin scope.
func (s AdminScope) Valid() bool {
	switch s {
	case ScopeAdmin, ScopeRead, ScopePublicala, ScopeGaio, ScopeQloud:
		return true
	}
	return false
}

// AdminKey is a key for the admin API. Only its hash is stored.
type AdminKey struct {
	ID         string
	Name       string // unique
	Scope      AdminScope
	Prefix     string // the first characters of the key, to recognise it in lists
	Hash       string // "sha256:<hex>" of the whole key
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never; written coarsely
}

// ListOptions selects one page of a collection.
type ListOptions struct {
	Start  int64  // cursor: 0 is the beginning, else a NextKey returned earlier
	Count  int    // page size, 1..MaxPageSize
	UserID string // apps and credentials: only those owned by this user, when set
	// Offset skips that many items from Start, for surfaces that number
	// their pages (Gaio); users and groups, unfiltered only.
	Offset int64
	// Users narrows a users page; ignored for other collections.
	Users UserFilter
}

// UserFilter narrows a users page. Zero fields do not filter; set fields
// combine (AND). Each is served by an index, so a page costs O(page), not
// O(users), and Page.Total counts the filtered set.
type UserFilter struct {
	Email      string // exact, compared as EmailKey normalises it
	Username   string // prefix of the username, compared as UsernameKey normalises it
	ExternalID string // exact
	Active     *bool  // the user's own active flag
	Group      string // member of the group with this id (the Service resolves a name or number)
	Tag        string // holds this permission tag (its effective tags: own or a group's)
}

// IsZero reports whether f filters nothing.
func (f UserFilter) IsZero() bool { return f == UserFilter{} }

// Paging limits.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Page is one page of a collection, in creation order.
type Page[T any] struct {
	Items   []T
	NextKey int64 // the cursor of the next page; 0 at the end
	Total   int64 // the collection's size (or the filtered one's, when the filter is indexed)
}
