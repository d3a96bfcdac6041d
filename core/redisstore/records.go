package redisstore

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// The stored forms. Their JSON is the storage format: fields are only ever
// added. Since 2026-12 a field that the record's key or another field gives is
// left out when written (see expand): records written before, with every field,
// read the same.
//
// The user and credential records are written in a short form since then
// (one per user, the part of a user's memory that is its own): the fields every
// record has get one-letter names (n, u, p, c, m: the number or seq, the
// username, the props, the creation and update times), times are Unix
// milliseconds (a JSON number, when the time is a whole millisecond other than
// the epoch; any other time keeps its long field and RFC 3339), isActive is
// written only when false (as "a":false), a credential's SHA-256 secret is "h"
// and its id is left out where its key gives it. Rarer fields keep their long
// names. Every earlier form reads as before: a long field that is present is
// never overridden, and isActive defaults to true only because every earlier
// form wrote it (defaults, expand).

// userRecord is the stored form of a core.User, under P u:{<its id>}. The id is
// left out (the key gives it), and so is an updatedAt equal to createdAt; the
// short form's fields (N, U, A, P, C, M) are only ever set between MarshalJSON
// and expand, which move them to and from the long ones.
type userRecord struct {
	ID            string         `json:"id,omitempty"`
	Number        int64          `json:"number,omitempty"`
	Username      string         `json:"username,omitempty"`
	Email         string         `json:"email,omitempty"`
	EmailVerified bool           `json:"emailVerified,omitempty"`
	ExternalID    string         `json:"externalId,omitempty"`
	RedirectURI   string         `json:"redirectUri,omitempty"`
	IsActive      bool           `json:"isActive,omitempty"`
	SessionsLimit *int           `json:"sessionsLimit,omitempty"`
	Props         map[string]any `json:"props,omitempty"`
	// Identities and ExpiresAt came later: records without them read as none
	// and never.
	Identities []identityRecord `json:"identities,omitempty"`
	ExpiresAt  time.Time        `json:"expiresAt,omitzero"`
	// The client fields came later still: records without them read as empty.
	ClientID         string `json:"clientId,omitempty"`
	ClientIdentifier string `json:"clientIdentifier,omitempty"`
	SecretPreview    string `json:"secretPreview,omitempty"`
	// Groups (ids) and Tags came later: records without them read as none.
	Groups    []string  `json:"groups,omitempty"`
	Tags      []string  `json:"tags,omitempty"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`

	// The short form (December 2026): Number, Username, IsActive when false,
	// Props, and CreatedAt and UpdatedAt in Unix milliseconds.
	N int64          `json:"n,omitempty"`
	U string         `json:"u,omitempty"`
	A *bool          `json:"a,omitempty"`
	P map[string]any `json:"p,omitempty"`
	C int64          `json:"c,omitempty"`
	M int64          `json:"m,omitempty"`

	raw string // the record's JSON as read, when it is given to callers unchanged (getUser, ListUsers)
}

// identityRecord is the stored form of a core.Identity, in its user's record.
type identityRecord struct {
	Provider      string         `json:"provider"`
	Subject       string         `json:"subject"`
	Email         string         `json:"email,omitempty"`
	EmailVerified bool           `json:"emailVerified,omitempty"`
	Username      string         `json:"username,omitempty"`
	DisplayName   string         `json:"displayName,omitempty"`
	GivenName     string         `json:"givenName,omitempty"`
	FamilyName    string         `json:"familyName,omitempty"`
	AvatarURL     string         `json:"avatarUrl,omitempty"`
	RawClaims     map[string]any `json:"rawClaims,omitempty"`
	LinkedAt      time.Time      `json:"linkedAt,omitzero"`
}

func toIdentityRecords(ids []core.Identity) []identityRecord {
	if len(ids) == 0 {
		return nil
	}
	out := make([]identityRecord, len(ids))
	for i, id := range ids {
		out[i] = identityRecord{
			Provider: id.Provider, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
			Username: id.Username, DisplayName: id.DisplayName, GivenName: id.GivenName,
			FamilyName: id.FamilyName, AvatarURL: id.AvatarURL, RawClaims: id.RawClaims,
			LinkedAt: utcOrZero(id.LinkedAt),
		}
	}
	return out
}

func identities(rs []identityRecord) []core.Identity {
	if len(rs) == 0 {
		return nil
	}
	out := make([]core.Identity, len(rs))
	for i, r := range rs {
		out[i] = core.Identity{
			Provider: r.Provider, Subject: r.Subject, Email: r.Email, EmailVerified: r.EmailVerified,
			Username: r.Username, DisplayName: r.DisplayName, GivenName: r.GivenName,
			FamilyName: r.FamilyName, AvatarURL: r.AvatarURL, RawClaims: r.RawClaims,
			LinkedAt: r.LinkedAt,
		}
	}
	return out
}

// utcOrZero returns t in UTC, keeping the zero time zero.
func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func toUserRecord(u core.User) userRecord {
	var limit *int
	if u.SessionsLimit != nil {
		n := *u.SessionsLimit
		limit = &n
	}
	return userRecord{
		ID: u.ID, Number: u.Number, Username: u.Username, Email: u.Email,
		EmailVerified: u.EmailVerified, ExternalID: u.ExternalID, RedirectURI: u.RedirectURI,
		IsActive: u.IsActive, SessionsLimit: limit, Props: u.Props,
		Identities: toIdentityRecords(u.Identities), ExpiresAt: utcOrZero(u.ExpiresAt),
		ClientID: u.ClientID, ClientIdentifier: u.ClientIdentifier, SecretPreview: u.SecretPreview,
		Groups: nilIfEmpty(u.Groups), Tags: nilIfEmpty(u.Tags),
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
}

// MarshalJSON writes the stored form: the short one, without the id, nor an
// updatedAt equal to createdAt.
func (r userRecord) MarshalJSON() ([]byte, error) {
	type stored userRecord // without this method
	r.ID = ""
	r.N, r.Number = r.Number, 0
	r.U, r.Username = r.Username, ""
	r.shared().shorten()
	return json.Marshal(stored(r))
}

// defaults sets what a record that leaves a field out means by it, before
// the record is decoded: isActive true (every form before the short one
// wrote it).
func (r *userRecord) defaults() { r.IsActive = true }

// expand fills what the stored form leaves out (MarshalJSON), and moves the
// short form's fields to the long ones.
func (r *userRecord) expand(key string) error {
	r.ID = cmp.Or(r.ID, keyUID(key))
	r.Number, r.N = cmp.Or(r.Number, r.N), 0
	r.Username, r.U = cmp.Or(r.Username, r.U), ""
	r.shared().expand()
	return nil
}

// shared is r's part of the short form that every record has.
func (r *userRecord) shared() shortShared {
	return shortShared{&r.IsActive, &r.A, &r.Props, &r.P, &r.CreatedAt, &r.UpdatedAt, &r.C, &r.M}
}

// shortShared is the part of the short form that every record has, beside
// the long fields it stands for: isActive only when false (a), props (p),
// and createdAt and updatedAt in Unix milliseconds (c, and m only when it is
// not c). shorten writes it (MarshalJSON), expand reads it back (expand).
type shortShared struct {
	isActive         *bool
	a                **bool
	props, p         *map[string]any
	created, updated *time.Time
	c, m             *int64
}

func (f shortShared) shorten() {
	*f.a, *f.isActive = activeFlag(*f.isActive), false
	*f.p, *f.props = *f.props, nil
	*f.m, *f.updated = millis(sinceCreated(*f.created, *f.updated))
	*f.c, *f.created = millis(*f.created)
}

func (f shortShared) expand() {
	*f.isActive, *f.a = isActive(*f.isActive, *f.a), nil
	if *f.props == nil {
		*f.props = *f.p
	}
	*f.p = nil
	*f.created, *f.c = fromMillis(*f.created, *f.c), 0
	*f.updated, *f.m = fromMillis(*f.updated, *f.m), 0
	*f.updated = cmp.Or(*f.updated, *f.created)
}

// activeFlag is the short form's isActive: left out (nil) when true.
func activeFlag(active bool) *bool {
	if active {
		return nil
	}
	return new(false)
}

// isActive reads the short form's flag a, which overrides the default.
func isActive(active bool, a *bool) bool {
	if a != nil {
		return *a
	}
	return active
}

// millis is t as the short form writes it: its Unix milliseconds when t is a
// whole millisecond other than the epoch (0 is "left out"), else t itself, for
// the long field.
func millis(t time.Time) (int64, time.Time) {
	ms := t.UnixMilli()
	if t.IsZero() || ms == 0 || !time.UnixMilli(ms).Equal(t) {
		return 0, t
	}
	return ms, time.Time{}
}

// fromMillis reads a time written either way (millis): the long field when
// present, else the milliseconds.
func fromMillis(t time.Time, ms int64) time.Time {
	if !t.IsZero() || ms == 0 {
		return t
	}
	return time.UnixMilli(ms).UTC()
}

func (r userRecord) user() core.User {
	return core.User{
		ID: r.ID, Number: r.Number, Username: r.Username, Email: r.Email,
		EmailVerified: r.EmailVerified, ExternalID: r.ExternalID, RedirectURI: r.RedirectURI,
		IsActive: r.IsActive, SessionsLimit: r.SessionsLimit, Props: r.Props,
		Identities: identities(r.Identities), ExpiresAt: r.ExpiresAt,
		ClientID: r.ClientID, ClientIdentifier: r.ClientIdentifier, SecretPreview: r.SecretPreview,
		Groups: r.Groups, Tags: r.Tags,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Stored: r.raw,
	}
}

// clone returns a copy of r that shares no map, slice or pointer with it.
func (r userRecord) clone() userRecord {
	if r.SessionsLimit != nil {
		n := *r.SessionsLimit
		r.SessionsLimit = &n
	}
	r.Props = cloneMap(r.Props)
	if r.Identities != nil {
		ids := make([]identityRecord, len(r.Identities))
		for i, id := range r.Identities {
			id.RawClaims = cloneMap(id.RawClaims)
			ids[i] = id
		}
		r.Identities = ids
	}
	r.Groups, r.Tags = slices.Clone(r.Groups), slices.Clone(r.Tags)
	return r
}

// cloneMap deep-copies a map decoded from JSON (nil stays nil).
func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneJSON(v)
	}
	return out
}

// cloneJSON deep-copies a value decoded from JSON: its objects and arrays.
func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneJSON(e)
		}
		return out
	}
	return v
}

// nilIfEmpty stores an empty list as none (omitted from the record).
func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// appRecord is the stored form of a core.App (OwnerActive is derived, not stored).
type appRecord struct {
	ID          string         `json:"id"`
	Seq         int64          `json:"seq"`
	Name        string         `json:"name"`
	UserID      string         `json:"userId"`
	RedirectURI string         `json:"redirectUri,omitempty"`
	IsActive    bool           `json:"isActive"`
	Props       map[string]any `json:"props,omitempty"`
	CreatedAt   time.Time      `json:"createdAt"`
	UpdatedAt   time.Time      `json:"updatedAt"`
}

func toAppRecord(a core.App) appRecord {
	return appRecord{
		ID: a.ID, Seq: a.Seq, Name: a.Name, UserID: a.UserID, RedirectURI: a.RedirectURI,
		IsActive: a.IsActive, Props: a.Props, CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(),
	}
}

func (r appRecord) app() core.App {
	return core.App{
		ID: r.ID, Seq: r.Seq, Name: r.Name, UserID: r.UserID, RedirectURI: r.RedirectURI,
		IsActive: r.IsActive, Props: r.Props, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// grantRecord is the stored form of a core.ScopeGrant.
type grantRecord struct {
	Name string `json:"name"`
	Reg  string `json:"reg"`
}

// credRecord is the stored form of a core.Credential (OwnerActive is derived),
// under P u:{<its user id>}:cred:<type>:<id>. Left out: the type and the user
// id (the key gives them), the id but an oauth2 credential's (an OAuth
// token's credential is decoded knowing only its user and type), the
// consumer's kind and id for a user's own credential (kind "user", id the
// user's), an updatedAt equal to createdAt; a SHA-256 secret ("sha256:<hex>")
// is kept as its base64 (s256, "h" in the short form). The /verify script
// reads consumerKind and consumerId, and only acts on an app's, which are
// written (by their long names in every form). The short form's fields (N, A,
// H, P, C, M) are only ever set between MarshalJSON and expand.
type credRecord struct {
	Type         string         `json:"type,omitempty"`
	ID           string         `json:"id,omitempty"`
	Seq          int64          `json:"seq,omitempty"`
	ConsumerID   string         `json:"consumerId,omitempty"`
	ConsumerKind string         `json:"consumerKind,omitempty"`
	UserID       string         `json:"userId,omitempty"`
	IsActive     bool           `json:"isActive,omitempty"`
	Scopes       []grantRecord  `json:"scopes,omitempty"`
	Secret       string         `json:"secret,omitempty"`
	Sha256       string         `json:"s256,omitempty"`
	Algorithm    string         `json:"algorithm,omitempty"`
	ExpiresAt    time.Time      `json:"expiresAt,omitzero"`
	Props        map[string]any `json:"props,omitempty"`
	CreatedAt    time.Time      `json:"createdAt,omitzero"`
	UpdatedAt    time.Time      `json:"updatedAt,omitzero"`

	// The short form (December 2026), as userRecord's: Seq, IsActive when
	// false, the SHA-256 secret's base64, Props, and CreatedAt and UpdatedAt
	// in Unix milliseconds.
	N int64          `json:"n,omitempty"`
	A *bool          `json:"a,omitempty"`
	H string         `json:"h,omitempty"`
	P map[string]any `json:"p,omitempty"`
	C int64          `json:"c,omitempty"`
	M int64          `json:"m,omitempty"`
}

func toCredRecord(c core.Credential) credRecord {
	var grants []grantRecord
	for _, g := range c.Scopes {
		grants = append(grants, grantRecord(g))
	}
	var exp time.Time
	if !c.ExpiresAt.IsZero() {
		exp = c.ExpiresAt.UTC()
	}
	return credRecord{
		Type: string(c.Type), ID: c.ID, Seq: c.Seq, ConsumerID: c.ConsumerID,
		ConsumerKind: string(c.ConsumerKind), UserID: c.UserID, IsActive: c.IsActive,
		Scopes: grants, Secret: c.Secret, Algorithm: c.Algorithm, ExpiresAt: exp, Props: c.Props,
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
}

// MarshalJSON writes the stored form: the short one, without the type and
// user id, nor the id of a credential but an oauth2 one, nor the consumer of
// a user's own credential, nor an updatedAt equal to createdAt, and a SHA-256
// secret in base64.
func (r credRecord) MarshalJSON() ([]byte, error) {
	type stored credRecord // without this method
	if r.ConsumerKind == string(core.ConsumerUser) && r.ConsumerID == r.UserID {
		r.ConsumerID, r.ConsumerKind = "", ""
	}
	if r.Type != string(core.OAuth2) {
		r.ID = ""
	}
	r.Type, r.UserID = "", ""
	r.N, r.Seq = r.Seq, 0
	r.shared().shorten()
	if h, ok := hashHex(r.Secret); ok {
		sum, _ := hex.DecodeString(h)
		r.Secret, r.H = "", base64.RawStdEncoding.EncodeToString(sum)
	}
	return json.Marshal(stored(r))
}

// defaults sets what a record that leaves a field out means by it, before
// the record is decoded, as userRecord's.
func (r *credRecord) defaults() { r.IsActive = true }

// shared is r's part of the short form that every record has.
func (r *credRecord) shared() shortShared {
	return shortShared{&r.IsActive, &r.A, &r.Props, &r.P, &r.CreatedAt, &r.UpdatedAt, &r.C, &r.M}
}

// expand fills what the stored form leaves out (MarshalJSON): the type, id
// and user id from the key, the consumer of a user's own credential, the
// secret's "sha256:<hex>" form; and moves the short form's fields to the long
// ones.
func (r *credRecord) expand(key string) error {
	typ, id := keyCredParts(key)
	r.UserID = cmp.Or(r.UserID, keyUID(key))
	r.Type = cmp.Or(r.Type, typ)
	r.ID = cmp.Or(r.ID, id)
	r.ConsumerKind = cmp.Or(r.ConsumerKind, string(core.ConsumerUser))
	if r.ConsumerID == "" && r.ConsumerKind == string(core.ConsumerUser) {
		r.ConsumerID = r.UserID
	}
	r.Seq, r.N = cmp.Or(r.Seq, r.N), 0
	r.shared().expand()
	r.Sha256, r.H = cmp.Or(r.Sha256, r.H), ""
	if r.Sha256 != "" {
		var sum [sha256.Size]byte
		if len(r.Sha256) == base64.RawStdEncoding.EncodedLen(sha256.Size) {
			// The form written: decoded without a copy of the digest.
			if n, err := base64.RawStdEncoding.Decode(sum[:], []byte(r.Sha256)); err != nil || n != sha256.Size {
				return cmp.Or(err, errors.New("s256 is not a SHA-256 in base64"))
			}
		} else {
			b, err := base64.RawStdEncoding.DecodeString(r.Sha256) // it ignores line breaks
			if err != nil || len(b) != sha256.Size {
				return cmp.Or(err, errors.New("s256 is not a SHA-256 in base64"))
			}
			copy(sum[:], b)
		}
		r.Secret, r.Sha256 = sha256Hex(sum), ""
	}
	return nil
}

// sha256Hex is core.HashSHA256's form of a digest, "sha256:<hex>", in one
// allocation.
func sha256Hex(sum [sha256.Size]byte) string {
	const prefix = "sha256:"
	var b [len(prefix) + 2*sha256.Size]byte
	copy(b[:], prefix)
	hex.Encode(b[len(prefix):], sum[:])
	return string(b[:])
}

// sinceCreated is updated as stored: zero (left out) when it equals created.
func sinceCreated(created, updated time.Time) time.Time {
	if updated.Equal(created) {
		return time.Time{}
	}
	return updated.UTC()
}

// keyCredParts returns the <type> and <id> of a credential's key, P
// u:{<uid>}:cred:<type>:<id> (or of its prefix, without the id: id ""), or
// "", "". Types never hold ':'.
func keyCredParts(key string) (typ, id string) {
	_, rest, _ := strings.Cut(key, "}:cred:")
	typ, id, _ = strings.Cut(rest, ":")
	return typ, id
}

// keyUID returns the hash tag of key, which is the user id in a user's slot
// (P u:{<uid>}...; the prefix never holds a brace), or "".
func keyUID(key string) string {
	_, rest, ok := strings.Cut(key, "{")
	uid, _, closed := strings.Cut(rest, "}")
	if !ok || !closed {
		return ""
	}
	return uid
}

func (r credRecord) credential() core.Credential {
	var grants []core.ScopeGrant
	for _, g := range r.Scopes {
		grants = append(grants, core.ScopeGrant(g))
	}
	return core.Credential{
		Type: core.CredentialType(r.Type), ID: r.ID, Seq: r.Seq, ConsumerID: r.ConsumerID,
		ConsumerKind: core.ConsumerKind(r.ConsumerKind), UserID: r.UserID, IsActive: r.IsActive,
		Scopes: grants, Secret: r.Secret, Algorithm: r.Algorithm, ExpiresAt: r.ExpiresAt, Props: r.Props,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// sessionRecord is the stored form of a core.Session: a login session or an OAuth
// access token, under the hex of its hash in its user's slot.
type sessionRecord struct {
	ID           string        `json:"id"`
	Hash         string        `json:"hash"`
	Kind         string        `json:"kind"`
	UserID       string        `json:"userId"`
	ConsumerID   string        `json:"consumerId,omitempty"`
	ConsumerKind string        `json:"consumerKind,omitempty"`
	Provider     string        `json:"provider,omitempty"`
	Scopes       []grantRecord `json:"scopes,omitempty"`
	CreatedAt    time.Time     `json:"createdAt"`
	ExpiresAt    time.Time     `json:"expiresAt"`
	LastSeenAt   time.Time     `json:"lastSeenAt,omitzero"`
	ClientAddr   string        `json:"clientAddr,omitempty"`
	UserAgent    string        `json:"userAgent,omitempty"`
	// ExpUs is ExpiresAt in Unix microseconds, for the Lua scripts that drop
	// expired records (they cannot parse RFC 3339).
	ExpUs int64 `json:"expUs"`
}

func toSessionRecord(s core.Session) sessionRecord {
	var grants []grantRecord
	for _, g := range s.Scopes {
		grants = append(grants, grantRecord(g))
	}
	var seen time.Time
	if !s.LastSeenAt.IsZero() {
		seen = s.LastSeenAt.UTC()
	}
	return sessionRecord{
		ID: s.ID, Hash: s.Hash, Kind: string(s.Kind), UserID: s.UserID, ConsumerID: s.ConsumerID,
		ConsumerKind: string(s.ConsumerKind), Provider: s.Provider, Scopes: grants,
		CreatedAt: s.CreatedAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(), LastSeenAt: seen,
		ClientAddr: s.ClientAddr, UserAgent: s.UserAgent, ExpUs: s.ExpiresAt.UnixMicro(),
	}
}

func (r sessionRecord) session() core.Session {
	var grants []core.ScopeGrant
	for _, g := range r.Scopes {
		grants = append(grants, core.ScopeGrant(g))
	}
	return core.Session{
		ID: r.ID, Hash: r.Hash, Kind: core.SessionKind(r.Kind), UserID: r.UserID, ConsumerID: r.ConsumerID,
		ConsumerKind: core.ConsumerKind(r.ConsumerKind), Provider: r.Provider, Scopes: grants,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, LastSeenAt: r.LastSeenAt,
		ClientAddr: r.ClientAddr, UserAgent: r.UserAgent,
	}
}

// scopeRecord is the stored form of a core.Scope, under its name in P scopes.
type scopeRecord struct {
	Reg       string    `json:"reg"`
	CreatedAt time.Time `json:"createdAt"`
}

// adminKeyRecord is the stored form of a core.AdminKey; the last use is kept apart
// in P {adminkeys}:used so that a touch does not rewrite the record.
type adminKeyRecord struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	Prefix    string    `json:"prefix"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"createdAt"`
}

func toAdminKeyRecord(k core.AdminKey) adminKeyRecord {
	return adminKeyRecord{ID: k.ID, Name: k.Name, Scope: string(k.Scope), Prefix: k.Prefix, Hash: k.Hash, CreatedAt: k.CreatedAt.UTC()}
}

func (r adminKeyRecord) adminKey() core.AdminKey {
	return core.AdminKey{ID: r.ID, Name: r.Name, Scope: core.AdminScope(r.Scope), Prefix: r.Prefix, Hash: r.Hash, CreatedAt: r.CreatedAt}
}

// groupRecord is the stored form of a core.Group, under its id in P groups.
type groupRecord struct {
	ID        string    `json:"id"`
	Number    int64     `json:"number"`
	Name      string    `json:"name"`
	Tags      []string  `json:"tags,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func toGroupRecord(g core.Group) groupRecord {
	return groupRecord{ID: g.ID, Number: g.Number, Name: g.Name, Tags: nilIfEmpty(g.Tags), CreatedAt: g.CreatedAt.UTC(), UpdatedAt: g.UpdatedAt.UTC()}
}

func (r groupRecord) group() core.Group {
	return core.Group{ID: r.ID, Number: r.Number, Name: r.Name, Tags: r.Tags, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// clientRecord is the stored form of a core.Client.
type clientRecord struct {
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

func toClientRecord(c core.Client) clientRecord {
	return clientRecord{ID: c.ID, Seq: c.Seq, Name: c.Name, CreatedAt: c.CreatedAt.UTC()}
}

func (r clientRecord) client() core.Client {
	return core.Client{ID: r.ID, Seq: r.Seq, Name: r.Name, CreatedAt: r.CreatedAt}
}

// clientKeyRecord is the stored form of a core.ClientKey, a field of its
// client's P c:{cid}:keys hash.
type clientKeyRecord struct {
	ID        string    `json:"id"`
	ClientID  string    `json:"clientId"`
	Hash      string    `json:"hash"`
	Preview   string    `json:"preview"`
	CreatedAt time.Time `json:"createdAt"`
}

func toClientKeyRecord(k core.ClientKey) clientKeyRecord {
	return clientKeyRecord{ID: k.ID, ClientID: k.ClientID, Hash: k.Hash, Preview: k.Preview, CreatedAt: k.CreatedAt.UTC()}
}

func (r clientKeyRecord) clientKey() core.ClientKey {
	return core.ClientKey{ID: r.ID, ClientID: r.ClientID, Hash: r.Hash, Preview: r.Preview, CreatedAt: r.CreatedAt}
}

// encode marshals a record; only Props can make it fail.
func encode(op string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", &core.Error{Kind: core.Invalid, Op: op, Msg: "properties cannot be stored as JSON", Err: err}
	}
	return string(b), nil
}

// expander is a record whose stored form leaves out fields that its key or
// its other fields give.
type expander interface{ expand(key string) error }

// defaulter is a record whose stored form leaves out a field that does not
// default to its zero value: defaults sets it before the record is decoded.
type defaulter interface{ defaults() }

// decode unmarshals a record read from key, and expands it (expander).
func decode[T any](op, key, data string) (T, error) {
	var v T
	if d, ok := any(&v).(defaulter); ok {
		d.defaults()
	}
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		return v, corrupt(op, key, err)
	}
	if e, ok := any(&v).(expander); ok {
		if err := e.expand(key); err != nil {
			return v, corrupt(op, key, err)
		}
	}
	return v, nil
}
