// Package backup is `gatehouse export` and `gatehouse import`: Gatehouse's
// data as JSON lines, written and read one line at a time (constant memory),
// through core.Service, so an import is validated by the same rules as every
// other write. docs/backup.md describes the format.
package backup

import (
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// Version is the format version every line carries ("v"). A reader refuses
// a line of a version it does not know.
const Version = 1

// The line kinds, in the order an export writes them: the header, the scope
// registry, admin keys, clients, groups, then users in Number order.
const (
	KindHeader   = "header"
	KindScope    = "scope"
	KindAdminKey = "adminKey"
	KindClient   = "client"
	KindGroup    = "group"
	KindUser     = "user"
)

// formatName is the header's "format".
const formatName = "gatehouse-export"

// envelope is what every line starts with.
type envelope struct {
	Kind string `json:"kind"`
	V    int    `json:"v"`
}

type headerLine struct {
	envelope
	Format   string `json:"format"`
	Sessions bool   `json:"sessions"` // whether login sessions were exported
}

type scopeLine struct {
	envelope
	Name      string    `json:"name"`
	Reg       string    `json:"reg"`
	CreatedAt time.Time `json:"createdAt"`
}

type adminKeyLine struct {
	envelope
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Scope      string    `json:"scope"`
	Prefix     string    `json:"prefix"`
	Hash       string    `json:"hash"`
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt,omitzero"`
}

type clientLine struct {
	envelope
	ID        string      `json:"id"`
	Seq       int64       `json:"seq"`
	Name      string      `json:"name"`
	CreatedAt time.Time   `json:"createdAt"`
	Keys      []clientKey `json:"keys,omitempty"`
}

type clientKey struct {
	ID        string    `json:"id"`
	Hash      string    `json:"hash"`
	Preview   string    `json:"preview,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

type groupLine struct {
	envelope
	ID        string    `json:"id"`
	Number    int64     `json:"number"`
	Name      string    `json:"name"`
	Tags      []string  `json:"tags,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// userLine is a user with everything it owns: one line, restored whole or not
// at all.
type userLine struct {
	envelope
	ID               string         `json:"id"`
	Number           int64          `json:"number"`
	Username         string         `json:"username"`
	Email            string         `json:"email,omitempty"`
	EmailVerified    bool           `json:"emailVerified,omitempty"`
	ExternalID       string         `json:"externalId,omitempty"`
	RedirectURI      string         `json:"redirectUri,omitempty"`
	IsActive         bool           `json:"isActive"`
	SessionsLimit    *int           `json:"sessionsLimit,omitempty"`
	Props            map[string]any `json:"props,omitempty"`
	Identities       []identity     `json:"identities,omitempty"`
	Groups           []string       `json:"groups,omitempty"` // group ids
	Tags             []string       `json:"tags,omitempty"`   // its own permission tags
	ClientID         string         `json:"clientId,omitempty"`
	ClientIdentifier string         `json:"clientIdentifier,omitempty"`
	SecretPreview    string         `json:"secretPreview,omitempty"`
	ExpiresAt        time.Time      `json:"expiresAt,omitzero"`
	CreatedAt        time.Time      `json:"createdAt"`
	UpdatedAt        time.Time      `json:"updatedAt"`
	Password         string         `json:"password,omitempty"` // the hash
	Secret           string         `json:"secret,omitempty"`   // the user secret's hash
	Apps             []app          `json:"apps,omitempty"`
	Credentials      []credential   `json:"credentials,omitempty"`
	Sessions         []session      `json:"sessions,omitempty"`
	Integrations     []integration  `json:"integrations,omitempty"`
}

type identity struct {
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

type app struct {
	ID          string         `json:"id"`
	Seq         int64          `json:"seq"`
	Name        string         `json:"name"`
	RedirectURI string         `json:"redirectUri,omitempty"`
	IsActive    bool           `json:"isActive"`
	Props       map[string]any `json:"props,omitempty"`
	CreatedAt   time.Time      `json:"createdAt"`
	UpdatedAt   time.Time      `json:"updatedAt"`
}

type grant struct {
	Name string `json:"name"`
	Reg  string `json:"reg"`
}

type credential struct {
	Type         string         `json:"type"`
	ID           string         `json:"id"`
	Seq          int64          `json:"seq"`
	ConsumerID   string         `json:"consumerId"`
	ConsumerKind string         `json:"consumerKind"`
	IsActive     bool           `json:"isActive"`
	Scopes       []grant        `json:"scopes,omitempty"`
	Secret       string         `json:"secret"` // a hash, or the sealed jwt secret
	Algorithm    string         `json:"algorithm,omitempty"`
	ExpiresAt    time.Time      `json:"expiresAt,omitzero"`
	Props        map[string]any `json:"props,omitempty"`
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
}

type session struct {
	ID         string    `json:"id"`
	Hash       string    `json:"hash"`
	Provider   string    `json:"provider,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
	LastSeenAt time.Time `json:"lastSeenAt,omitzero"`
	ClientAddr string    `json:"clientAddr,omitempty"`
	UserAgent  string    `json:"userAgent,omitempty"`
}

type integration struct {
	ID             string    `json:"id"`
	Connector      string    `json:"connector"`
	UserIdentifier string    `json:"userIdentifier"`
	DisplayName    string    `json:"displayName,omitempty"`
	Scopes         []string  `json:"scopes,omitempty"`
	Tokens         string    `json:"tokens,omitempty"` // sealed
	ExpiresAt      time.Time `json:"expiresAt,omitzero"`
	ConnectedAt    time.Time `json:"connectedAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
	Selected       bool      `json:"selected,omitempty"`
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func grantsOut(gs []core.ScopeGrant) []grant {
	var out []grant
	for _, g := range gs {
		out = append(out, grant(g))
	}
	return out
}

func grantsIn(gs []grant) []core.ScopeGrant {
	var out []core.ScopeGrant
	for _, g := range gs {
		out = append(out, core.ScopeGrant(g))
	}
	return out
}

// toUserLine is the line of d.
func toUserLine(d core.UserData) userLine {
	u := d.User
	l := userLine{
		envelope: envelope{KindUser, Version},
		ID:       u.ID, Number: u.Number, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		ExternalID: u.ExternalID, RedirectURI: u.RedirectURI, IsActive: u.IsActive, SessionsLimit: u.SessionsLimit,
		Props: u.Props, Groups: u.Groups, Tags: u.Tags,
		ClientID: u.ClientID, ClientIdentifier: u.ClientIdentifier, SecretPreview: u.SecretPreview,
		ExpiresAt: utc(u.ExpiresAt), CreatedAt: utc(u.CreatedAt), UpdatedAt: utc(u.UpdatedAt),
		Password: d.PasswordHash, Secret: d.SecretHash,
	}
	for _, id := range u.Identities {
		l.Identities = append(l.Identities, identity{
			Provider: id.Provider, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
			Username: id.Username, DisplayName: id.DisplayName, GivenName: id.GivenName, FamilyName: id.FamilyName,
			AvatarURL: id.AvatarURL, RawClaims: id.RawClaims, LinkedAt: utc(id.LinkedAt),
		})
	}
	for _, a := range d.Apps {
		l.Apps = append(l.Apps, app{
			ID: a.ID, Seq: a.Seq, Name: a.Name, RedirectURI: a.RedirectURI, IsActive: a.IsActive, Props: a.Props,
			CreatedAt: utc(a.CreatedAt), UpdatedAt: utc(a.UpdatedAt),
		})
	}
	for _, c := range d.Credentials {
		l.Credentials = append(l.Credentials, credential{
			Type: string(c.Type), ID: c.ID, Seq: c.Seq, ConsumerID: c.ConsumerID, ConsumerKind: string(c.ConsumerKind),
			IsActive: c.IsActive, Scopes: grantsOut(c.Scopes), Secret: c.Secret, Algorithm: c.Algorithm,
			ExpiresAt: utc(c.ExpiresAt), Props: c.Props, CreatedAt: utc(c.CreatedAt), UpdatedAt: utc(c.UpdatedAt),
		})
	}
	for _, s := range d.Sessions {
		l.Sessions = append(l.Sessions, session{
			ID: s.ID, Hash: s.Hash, Provider: s.Provider, CreatedAt: utc(s.CreatedAt), ExpiresAt: utc(s.ExpiresAt),
			LastSeenAt: utc(s.LastSeenAt), ClientAddr: s.ClientAddr, UserAgent: s.UserAgent,
		})
	}
	for _, a := range d.Linked {
		l.Integrations = append(l.Integrations, integration{
			ID: a.ID, Connector: a.Connector, UserIdentifier: a.UserIdentifier, DisplayName: a.DisplayName,
			Scopes: a.Scopes, Tokens: a.Tokens, ExpiresAt: utc(a.ExpiresAt), ConnectedAt: utc(a.ConnectedAt),
			UpdatedAt: utc(a.UpdatedAt), Selected: a.Selected,
		})
	}
	return l
}

// userData is the core form of a user line.
func (l userLine) userData() core.UserData {
	d := core.UserData{
		User: core.User{
			ID: l.ID, Number: l.Number, Username: l.Username, Email: l.Email, EmailVerified: l.EmailVerified,
			ExternalID: l.ExternalID, RedirectURI: l.RedirectURI, IsActive: l.IsActive, SessionsLimit: l.SessionsLimit,
			Props: l.Props, Groups: l.Groups, Tags: l.Tags,
			ClientID: l.ClientID, ClientIdentifier: l.ClientIdentifier, SecretPreview: l.SecretPreview,
			ExpiresAt: l.ExpiresAt, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt,
		},
		PasswordHash: l.Password, SecretHash: l.Secret,
	}
	for _, id := range l.Identities {
		d.User.Identities = append(d.User.Identities, core.Identity{
			Provider: id.Provider, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
			Username: id.Username, DisplayName: id.DisplayName, GivenName: id.GivenName, FamilyName: id.FamilyName,
			AvatarURL: id.AvatarURL, RawClaims: id.RawClaims, LinkedAt: id.LinkedAt,
		})
	}
	for _, a := range l.Apps {
		d.Apps = append(d.Apps, core.App{
			ID: a.ID, Seq: a.Seq, Name: a.Name, UserID: l.ID, RedirectURI: a.RedirectURI, IsActive: a.IsActive,
			Props: a.Props, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
		})
	}
	for _, c := range l.Credentials {
		d.Credentials = append(d.Credentials, core.Credential{
			Type: core.CredentialType(c.Type), ID: c.ID, Seq: c.Seq, ConsumerID: c.ConsumerID,
			ConsumerKind: core.ConsumerKind(c.ConsumerKind), UserID: l.ID, IsActive: c.IsActive,
			Scopes: grantsIn(c.Scopes), Secret: c.Secret, Algorithm: c.Algorithm, ExpiresAt: c.ExpiresAt,
			Props: c.Props, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		})
	}
	for _, s := range l.Sessions {
		d.Sessions = append(d.Sessions, core.Session{
			ID: s.ID, Hash: s.Hash, Kind: core.KindSession, UserID: l.ID, ConsumerID: l.ID, Provider: s.Provider,
			CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, LastSeenAt: s.LastSeenAt,
			ClientAddr: s.ClientAddr, UserAgent: s.UserAgent,
		})
	}
	for _, a := range l.Integrations {
		d.Linked = append(d.Linked, core.LinkedAccount{
			ID: a.ID, Connector: a.Connector, UserIdentifier: a.UserIdentifier, DisplayName: a.DisplayName,
			Scopes: a.Scopes, Tokens: a.Tokens, ExpiresAt: a.ExpiresAt, ConnectedAt: a.ConnectedAt,
			UpdatedAt: a.UpdatedAt, Selected: a.Selected,
		})
	}
	return d
}
