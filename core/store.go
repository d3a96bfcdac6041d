package core

import (
	"context"
	"time"
)

// NameKind names a unique index of users.
type NameKind string

// The unique user names. Values are looked up in their normalised form: UsernameKey
// for usernames, EmailKey for emails, the string itself for external ids.
const (
	NameUsername   NameKind = "username"
	NameEmail      NameKind = "email"
	NameExternalID NameKind = "externalId"
	// NameClientIdentifier is a client's identifier for one of its users,
	// "<clientID>/<identifier>" (ClientIdentifierName): unique within the
	// client, case-sensitive, as given.
	NameClientIdentifier NameKind = "clientIdentifier"
)

// ClientIdentifierName is the NameClientIdentifier value of a client's user.
func ClientIdentifierName(clientID, identifier string) string { return clientID + "/" + identifier }

// Store persists Gatehouse's data. redisstore implements it on go-redis'
// UniversalClient and passes storetest.Run on miniredis, a real redis-server and a
// real Redis Cluster. Methods return *Error values: NotFound, Conflict (with the taken
// name in the message), Invalid for a reference to something missing where the caller
// named it (an app's owner), Unavailable when Redis cannot answer. A failed write
// leaves nothing behind that a reader can see.
//
// Names are unique within the store: usernames (by UsernameKey), emails (by
// EmailKey), external ids, keyIds per keyed credential type, admin key names, app
// names per owner, scope names.
type Store interface {
	// Update methods silently undo changes fn makes to immutable fields.
	//
	// CreateUser stores u, assigning u.Number (a u.Number set by the caller, as an
	// import sets it, is kept: Conflict if another user has it; the counter is
	// raised to at least it, so numbers are still never reused). u.ID, the names
	// and the timestamps are set by the caller. Conflict names the taken username, email,
	// externalId or client identifier (a user with a ClientID claims
	// NameClientIdentifier), or an identity (provider and subject) another user holds;
	// Invalid if an identity has no provider or subject, or its provider contains ':'.
	CreateUser(ctx context.Context, u *User) error
	// GetUser returns the user with that id, or NotFound.
	GetUser(ctx context.Context, id string) (User, error)
	// UserByName returns the user holding the unique name of that kind (value
	// normalised as NameKind says), or NotFound.
	UserByName(ctx context.Context, kind NameKind, value string) (User, error)
	// UserByIdentity returns the user holding an identity at a provider, or
	// NotFound. Identities of the "email" provider are unique through the user's
	// email instead, and are not found here.
	UserByIdentity(ctx context.Context, provider, subject string) (User, error)
	// ExpiredUsers returns the ids of users whose ExpiresAt is at or before t,
	// at most limit of them, soonest first.
	ExpiredUsers(ctx context.Context, t time.Time, limit int) ([]string, error)
	// UserByNumber returns the user with that number, or NotFound.
	UserByNumber(ctx context.Context, n int64) (User, error)
	// UpdateUser reads the user, applies fn and writes the result atomically; fn may
	// run more than once, so it only edits its argument. ID, Number, Username and
	// CreatedAt cannot change. A changed email or externalId is claimed first
	// (Conflict if taken) and the old one released. A group added to Groups
	// that does not exist (or is deleted meanwhile) is NotFound, and the user
	// is left without it. Returns the stored user.
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error)
	// DeleteUser deletes the user with its apps and credentials (and anything else
	// it owns) and frees its names. NotFound if there is no such user. Each
	// check runs on the stored user inside the delete's transaction: its error
	// stops the delete and is returned as it is (a version check, If-Match).
	DeleteUser(ctx context.Context, id string, check ...func(User) error) error
	// ListUsers returns one page of users in Number order; with opt.Users set,
	// the users matching every filter (a username prefix alone pages in
	// username order, its cursor still a Number), each filter served by an
	// index. Total counts the filtered set. Invalid for a cursor whose user is
	// gone under a username filter.
	ListUsers(ctx context.Context, opt ListOptions) (Page[User], error)

	// CreateGroup stores g, assigning g.Number (kept when set, like a user's
	// Number); the caller sets the rest.
	// Conflict if another group has the name (GroupNameKey).
	CreateGroup(ctx context.Context, g *Group) error
	// GetGroup returns the group with that id, or NotFound.
	GetGroup(ctx context.Context, id string) (Group, error)
	// GroupByName returns the group of that name (case-insensitively), or NotFound.
	GroupByName(ctx context.Context, name string) (Group, error)
	// GroupByNumber returns the group with that number, or NotFound.
	GroupByNumber(ctx context.Context, n int64) (Group, error)
	// Groups returns every group by id.
	Groups(ctx context.Context) (map[string]Group, error)
	// UpdateGroup applies fn atomically like UpdateUser; ID, Number and
	// CreatedAt cannot change. A rename is Conflict when another group has the
	// name. The group's members hold its new tags at once.
	UpdateGroup(ctx context.Context, id string, fn func(*Group) error) (Group, error)
	// DeleteGroup deletes the group and removes it from its users: readers
	// stop seeing it on any user at once, even one granted it concurrently.
	// NotFound if there is none.
	// check as for DeleteUser.
	DeleteGroup(ctx context.Context, id string, check ...func(Group) error) error
	// ListGroups returns one page of groups in Number order.
	ListGroups(ctx context.Context, opt ListOptions) (Page[Group], error)

	// CreateApp stores a, assigning a.Seq (kept when set, like a user's Number); a.ID, a.UserID, a.Name and timestamps are
	// set by the caller. Invalid if the owner does not exist; Conflict if the owner
	// already has an app of that name.
	CreateApp(ctx context.Context, a *App) error
	// GetApp returns the app with that id (OwnerActive filled), or NotFound.
	GetApp(ctx context.Context, id string) (App, error)
	// AppsByName returns every app of that exact name, across owners (at most one
	// per owner), in creation order; none is not an error.
	AppsByName(ctx context.Context, name string) ([]App, error)
	// UpdateApp applies fn atomically like UpdateUser; ID, Seq, UserID and CreatedAt
	// cannot change. A rename is Conflict when the owner has another app of that name.
	UpdateApp(ctx context.Context, id string, fn func(*App) error) (App, error)
	// DeleteApp deletes the app, its credentials and its OAuth tokens. NotFound if
	// there is none. check as for DeleteUser (OwnerActive is not filled).
	DeleteApp(ctx context.Context, id string, check ...func(App) error) error
	// ListApps returns one page of apps in Seq order (one owner's when
	// opt.UserID is set).
	ListApps(ctx context.Context, opt ListOptions) (Page[App], error)
	// AppsByRedirectURI returns every app whose RedirectURI is exactly uri
	// (byte for byte), across owners, in Seq order; none is not an error. It
	// reads an index, never scans: redirect providers check a sign-in's
	// return address against it.
	AppsByRedirectURI(ctx context.Context, uri string) ([]App, error)

	// CreateCredential stores c, assigning c.Seq (kept when set, like a user's
	// Number). The caller sets every other
	// field, UserID included. Invalid if the consumer does not exist. Keyed types:
	// Conflict if the keyId is taken for that type. basic-auth and oauth2: Conflict
	// if the consumer has one whose own flag is active; an inactive one is replaced.
	// For basic-auth and oauth2 an empty c.ID is set to c.ConsumerID.
	CreateCredential(ctx context.Context, c *Credential) error
	// GetCredential returns the credential (OwnerActive filled), or NotFound. For
	// basic-auth and oauth2, id is the consumer's id.
	GetCredential(ctx context.Context, typ CredentialType, id string) (Credential, error)
	// UpdateCredential applies fn atomically; Type, ID, Seq, the consumer and
	// CreatedAt cannot change. Returns the stored credential.
	UpdateCredential(ctx context.Context, typ CredentialType, id string, fn func(*Credential) error) (Credential, error)
	// DeleteCredential deletes the credential and frees its keyId. NotFound if
	// none. check as for DeleteUser (OwnerActive is not filled, scopes are as
	// stored).
	DeleteCredential(ctx context.Context, typ CredentialType, id string, check ...func(Credential) error) error
	// ConsumerCredentials returns every credential of one consumer (a user's own,
	// not its apps'), in Seq order. An unknown consumer has none.
	ConsumerCredentials(ctx context.Context, consumerID string) ([]Credential, error)
	// ListCredentials returns one page of all credentials in Seq order (one user's
	// and its apps' when opt.UserID is set).
	ListCredentials(ctx context.Context, opt ListOptions) (Page[Credential], error)

	// CreateScopes registers scopes, all or none: Conflict naming those already
	// registered.
	CreateScopes(ctx context.Context, scopes []Scope) error
	// Scopes returns the registry, sorted by name.
	Scopes(ctx context.Context) ([]Scope, error)
	// DeleteScope unregisters a scope; NotFound if it is not registered. Credentials
	// keep their grants, which stop being effective (callers filter on read).
	// check as for DeleteUser.
	DeleteScope(ctx context.Context, name string, check ...func(Scope) error) error

	// CreateAdminKey stores k. Conflict if the name is taken.
	CreateAdminKey(ctx context.Context, k AdminKey) error
	// CreateFirstAdminKey stores k only if the store holds no admin key at all,
	// atomically, so two instances starting on one empty store make one key.
	// Reports whether k was stored.
	CreateFirstAdminKey(ctx context.Context, k AdminKey) (bool, error)
	// AdminKeyByHash returns the key with that hash, or NotFound.
	AdminKeyByHash(ctx context.Context, hash string) (AdminKey, error)
	// AdminKeys lists every admin key, oldest first.
	AdminKeys(ctx context.Context) ([]AdminKey, error)
	// DeleteAdminKey revokes a key by id. NotFound if there is none. check as
	// for DeleteUser (LastUsedAt is not filled).
	DeleteAdminKey(ctx context.Context, id string, check ...func(AdminKey) error) error
	// TouchAdminKey records a use of the key at t.
	TouchAdminKey(ctx context.Context, id string, t time.Time) error

	// SetPassword stores a user's password hash (an argon2id PHC string) and ends
	// every login session of the user, in one write. NotFound if no such user.
	// With touch, the stored user is read and each touch runs on it inside
	// the write's transaction: an error stops the write and is returned as it
	// is (a version check, If-Match), and the user is written back with the
	// UpdatedAt touch set, in the same step as the password (other changes
	// touch makes are ignored), so that the change shows in its version.
	SetPassword(ctx context.Context, userID, phc string, touch ...func(*User) error) error
	// SetUserSecret stores the hash of a user's secret, replacing the old one;
	// sessions stay. NotFound if no such user.
	SetUserSecret(ctx context.Context, userID, hash string) error

	// CreateSession stores a session or token in its user's slot. For KindSession,
	// the user's oldest sessions beyond limit (limit > 0) are deleted in the same
	// write. NotFound if the user does not exist; Invalid if s.Hash is not
	// "sha256:<64 hex>", ExpiresAt is zero or Kind is unknown; Conflict if a
	// record with that hash exists.
	CreateSession(ctx context.Context, s Session, limit int) error
	// DeleteSession deletes one session or token by its hash. NotFound if none.
	DeleteSession(ctx context.Context, userID, hash string) error
	// DeleteSessions deletes every session and token of a user (force logout).
	// NotFound if no such user.
	DeleteSessions(ctx context.Context, userID string) error
	// Sessions lists a user's live login sessions (KindSession), newest first. An
	// unknown user has none.
	Sessions(ctx context.Context, userID string) ([]Session, error)
	// TouchSession records a use of a session at t (lastSeenAt). A session that
	// is gone is not an error.
	TouchSession(ctx context.Context, userID, hash string, t time.Time) error

	// ReadAuth reads what a verification needs in ONE round trip: the user's
	// record and the parts q names, all in the user's slot, and the scope and
	// group registries unless q.SkipRegistries. NotFound if the user does not exist; a missing credential or
	// session is reported as nil, not as an error. For an OAuth access token, the
	// oauth2 credential it was issued under comes as Credential. Records are
	// returned as stored: the caller compares a credential's or session's
	// ExpiresAt with its clock. Throttles read the Limiter built on the store's
	// own client and prefix.
	ReadAuth(ctx context.Context, q AuthQuery) (AuthRecord, error)
	// LocateCredential returns the user whose slot holds a keyed credential
	// (key-auth, jwt), from its keyId claim. NotFound if none; Invalid for a type
	// without keyIds.
	LocateCredential(ctx context.Context, typ CredentialType, keyID string) (userID string, err error)
	// LocateApp returns the owner of an app, from its locator. NotFound if none.
	LocateApp(ctx context.Context, appID string) (userID string, err error)
	// LocateUser returns the id of the user holding a unique name (normalised as
	// NameKind says), from its claim only; callers check the name against the
	// record they read next. NotFound if none.
	LocateUser(ctx context.Context, kind NameKind, value string) (userID string, err error)

	// PutLinkedAccount stores a user's integration account, replacing the one
	// with the same Connector and UserIdentifier (whose ID and ConnectedAt are
	// kept; a new account gets a.ID, or a new UUID when empty). The first
	// account of a connector is its selected one. NotFound if the user does
	// not exist; Invalid if Connector is empty or holds ':', or
	// UserIdentifier is empty. Deleting the user deletes its accounts.
	PutLinkedAccount(ctx context.Context, userID string, a LinkedAccount) (LinkedAccount, error)
	// LinkedAccounts lists a user's integration accounts, oldest first, with
	// Selected filled. An unknown user has none.
	LinkedAccounts(ctx context.Context, userID string) ([]LinkedAccount, error)
	// LinkedAccount returns one integration account of a user (Selected
	// filled), or NotFound.
	LinkedAccount(ctx context.Context, userID, connector, userIdentifier string) (LinkedAccount, error)
	// DeleteLinkedAccount removes one integration account of a user; when it
	// was its connector's selected one, the newest remaining account of that
	// connector (by ConnectedAt) becomes selected. NotFound if there is none.
	DeleteLinkedAccount(ctx context.Context, userID, connector, userIdentifier string) error
	// SelectLinkedAccount makes one account its connector's selected one (the
	// others of that connector are not). NotFound if there is none.
	SelectLinkedAccount(ctx context.Context, userID, connector, userIdentifier string) error

	// CreateClient stores c, assigning c.Seq (kept when set, like a user's
	// Number); c.ID, c.Name and c.CreatedAt are
	// set by the caller. Conflict if another client has that name (names are
	// unique case-insensitively).
	CreateClient(ctx context.Context, c *Client) error
	// GetClient returns the client with that id, or NotFound.
	GetClient(ctx context.Context, id string) (Client, error)
	// ListClients returns one page of clients in Seq order.
	ListClients(ctx context.Context, opt ListOptions) (Page[Client], error)
	// DeleteClient deletes a client and its keys (its users stay). NotFound if
	// there is none.
	// check as for DeleteUser, on the client with its keys.
	DeleteClient(ctx context.Context, id string, check ...func(ClientWithKeys) error) error
	// CreateClientKey stores a key of a client. NotFound if the client does
	// not exist; Conflict if a key with that hash or id exists.
	CreateClientKey(ctx context.Context, k ClientKey) error
	// ClientKeys lists a client's keys, oldest first (hashes included: callers
	// never show them).
	ClientKeys(ctx context.Context, clientID string) ([]ClientKey, error)
	// ClientByKeyHash returns the client holding the key of that hash, and
	// the key. NotFound if none (or its client is gone).
	ClientByKeyHash(ctx context.Context, hash string) (Client, ClientKey, error)
	// DeleteClientKey revokes one key of a client. NotFound if none. check as
	// for DeleteUser, on the client with its keys (the revoked one included).
	DeleteClientKey(ctx context.Context, clientID, keyID string, check ...func(ClientWithKeys) error) error

	// PluginKV returns a plugin's key-value namespace (the host services);
	// namespaces never see each other's keys. A namespace must be non-empty and
	// free of ':'; with any other every call answers Invalid.
	PluginKV(namespace string) KV

	// Doctor finds leftovers of interrupted writes and, with repair, removes them:
	// stale name claims, index entries without a record, credential scope grants no
	// longer registered. It may scan; it is never on a request path.
	Doctor(ctx context.Context, repair bool) (DoctorReport, error)
	// Now returns the store's clock (Redis TIME unless a clock was injected).
	Now(ctx context.Context) (time.Time, error)
	// Ping reports whether the store can answer.
	Ping(ctx context.Context) error
	// Close releases the store's connections; the store owns its client.
	Close() error
}

// DoctorReport lists what Doctor found, as human-readable lines per class.
type DoctorReport struct {
	StaleClaims   []string `json:"staleClaims"`   // "username:bob (owner 7c0…, 3m old)"
	DanglingIndex []string `json:"danglingIndex"` // index entries whose record is gone, records missing from their index
	StaleGrants   []string `json:"staleGrants"`   // "key-auth/abc: scope read"
	Repaired      bool     `json:"repaired"`
}

// Clock tells the time. Stores take one so tests can move time forward.
type Clock interface {
	Now() time.Time
}
