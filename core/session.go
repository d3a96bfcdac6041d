package core

import (
	"time"
)

// SessionKind separates login sessions from OAuth access tokens: both are bearer
// tokens of which only the SHA-256 is stored, in the owning user's slot.
type SessionKind string

// The session kinds.
const (
	KindSession SessionKind = "session" // a user's login (gths_ tokens)
	KindOAuth   SessionKind = "oauth2"  // an access token of an oauth2 credential (gtho_ tokens)
)

// Session is a login session or an OAuth access token.
type Session struct {
	ID           string // short random id, for lists and logs; never the token
	Hash         string // "sha256:<hex>" of the token
	Kind         SessionKind
	UserID       string       // the user whose slot holds it (the app's owner for an app's token)
	ConsumerID   string       // oauth2: the credential's consumer (a user or app id); sessions: the user
	ConsumerKind ConsumerKind // oauth2: user or app
	Provider     string       // sessions: "email", "secret" or a provider's name; oauth2: "client_credentials"
	Scopes       []ScopeGrant // oauth2: the scopes granted at issue time
	CreatedAt    time.Time
	ExpiresAt    time.Time // absolute; refused after it whatever Redis' TTL says
	LastSeenAt   time.Time // written coarsely, off the request path
	ClientAddr   string
	UserAgent    string
}

// AuthQuery says what one verification reads, in one round trip, in one user's
// hash slot: the user's state, and optionally a credential, a session, the
// password or the user secret, and the app that owns the credential or token.
type AuthQuery struct {
	UserID      string         // whose slot; required
	Credential  *CredentialRef // a credential of this user or of one of its apps
	SessionHash string         // a session or token record of this user
	Password    bool           // the user's password hash
	Secret      bool           // the user secret's hash
	AppID       string         // an app of this user (its state), when known before the read
	// ConsumerApp is an app of this user the credential probably belongs to
	// (remembered from an earlier read): read with it, it saves a second
	// round trip when it is the credential's consumer, and changes nothing
	// else.
	ConsumerApp string
	// OAuthToken says that SessionHash names an OAuth access token: its
	// oauth2 credential and app are then read in the same round trip.
	OAuthToken bool
	// Throttles are failure counters to check in the same round trip:
	// AuthRecord.RetryAfter says whether one of their keys is over its rate
	// (see Limiter).
	Throttles []Throttle
	// SkipRegistries leaves the scope and group registries out of the read:
	// AuthRecord.Scopes and Groups are nil (the caller has them).
	SkipRegistries bool
	// Lean decodes only what a verification reads of the user (its id,
	// username, state, groups and tags) and of the credential (all but its
	// sequence number, properties and times); the rest is left zero.
	Lean bool
}

// Throttle names a Limiter key and its rate.
type Throttle struct {
	Key  string
	Rate Rate
}

// CredentialRef names a credential.
type CredentialRef struct {
	Type CredentialType
	ID   string
}

// AuthRecord is what ReadAuth found. Missing parts are nil or empty; the user
// is always there (else ReadAuth answers NotFound).
type AuthRecord struct {
	User         User
	App          *App        // the app of AuthQuery.AppID, or of the credential's or token's consumer
	Credential   *Credential // OwnerActive filled
	Session      *Session
	PasswordHash string            // an argon2id PHC string, "" when the user has no password
	SecretHash   string            // "sha256:<hex>", "" when the user has no secret
	Scopes       map[string]string // the scope registry: name → registration
	Groups       map[string]Group  // the group registry by id (the user's groups' names and tags)
	RetryAfter   time.Duration     // > 0 when a key of AuthQuery.Throttles is over its rate: the longest wait
}
