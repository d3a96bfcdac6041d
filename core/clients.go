package core

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"unicode"
)

// Clients are the tenants of the GL Connectors surface: a client's API keys
// (sk-client-…) create users that belong to it, identified by the client's
// own identifier for them, and see only those users.

// Prefixes of the GL Connectors surface's secrets, as its clients expect them.
const (
	PrefixClientKey  = "sk-client-"
	PrefixClientUser = "sk-user-"
)

// NewClientKey is a client key just made, shown once.
type NewClientKey struct {
	Key string
	ClientKey
}

// CreateClient creates a client and its first key. Invalid for a bad name,
// Conflict when the name is taken.
func (s *Service) CreateClient(ctx context.Context, name string) (Client, NewClientKey, error) {
	const op = "core.CreateClient"
	if err := validateLabel(op, "name", name, ""); err != nil {
		return Client{}, NewClientKey{}, err
	}
	c := Client{ID: NewID(), Name: name, CreatedAt: s.Now()}
	if err := s.store.CreateClient(ctx, &c); err != nil {
		return Client{}, NewClientKey{}, err
	}
	k, err := s.addClientKey(ctx, c.ID)
	if err != nil {
		_ = s.store.DeleteClient(context.WithoutCancel(ctx), c.ID)
		return Client{}, NewClientKey{}, err
	}
	return c, k, nil
}

// addClientKey makes a key for the client id.
func (s *Service) addClientKey(ctx context.Context, clientID string) (NewClientKey, error) {
	key := NewSecret(PrefixClientKey, 32)
	k := ClientKey{ID: NewSecret("", 6), ClientID: clientID, Hash: HashSHA256(key),
		Preview: PrefixClientKey + "..." + key[len(key)-4:], CreatedAt: s.Now()}
	if err := s.store.CreateClientKey(ctx, k); err != nil {
		return NewClientKey{}, err
	}
	return NewClientKey{Key: key, ClientKey: k}, nil
}

// NewClientKey gives a client another key, shown once; its other keys stay.
func (s *Service) NewClientKey(ctx context.Context, clientID string) (NewClientKey, error) {
	if _, err := s.store.GetClient(ctx, clientID); err != nil {
		return NewClientKey{}, err
	}
	return s.addClientKey(ctx, clientID)
}

// GetClient returns a client with its keys (never the keys themselves).
func (s *Service) GetClient(ctx context.Context, id string) (Client, []ClientKey, error) {
	c, err := s.store.GetClient(ctx, id)
	if err != nil {
		return Client{}, nil, err
	}
	keys, err := s.store.ClientKeys(ctx, id)
	return c, keys, err
}

// ListClients returns one page of clients.
func (s *Service) ListClients(ctx context.Context, opt ListOptions) (Page[Client], error) {
	return s.store.ListClients(ctx, opt)
}

// RevokeClientKey revokes one key of a client. A precondition (If-Match)
// names the client's version (ClientWithKeys), checked inside the revocation.
func (s *Service) RevokeClientKey(ctx context.Context, clientID, keyID string, pre ...Precondition) error {
	const op = "core.RevokeClientKey"
	return s.store.DeleteClientKey(ctx, clientID, keyID, checkVersion[ClientWithKeys](precondition(pre), op, "client", nil)...)
}

// DeleteClient deletes a client and its keys; its users stay, for the admin
// API to keep or delete. A precondition is checked as RevokeClientKey does.
func (s *Service) DeleteClient(ctx context.Context, id string, pre ...Precondition) error {
	const op = "core.DeleteClient"
	return s.store.DeleteClient(ctx, id, checkVersion[ClientWithKeys](precondition(pre), op, "client", nil)...)
}

// AuthenticateClient returns the client of a client key. Unauthorized for a
// key that is missing, malformed, revoked or unknown.
func (s *Service) AuthenticateClient(ctx context.Context, key string) (Client, error) {
	const op = "core.AuthenticateClient"
	if !strings.HasPrefix(key, PrefixClientKey) || len(key) > 256 {
		return Client{}, Errorf(Unauthorized, op, "a valid client API key is required")
	}
	c, _, err := s.store.ClientByKeyHash(ctx, HashSHA256(key))
	if KindOf(err) == NotFound {
		return Client{}, Errorf(Unauthorized, op, "a valid client API key is required")
	}
	return c, err
}

// ClientUser is a client's user just registered, with its secret shown once.
type ClientUser struct {
	User
	Secret string
}

// clientUserPolicy writes nothing but the username a client's user gets.
var clientUserPolicy = UserPolicy{Writable: []string{"username"}, Username: UsernameField}

// RegisterClientUser creates a user of client c with c's identifier for it
// and a secret (sk-user-…, kept as its SHA-256, shown once). The username is
// the identifier when it is a valid, free username, else the identifier's
// plain characters and a random suffix. Invalid for a bad identifier,
// Conflict when the client already has a user of that identifier.
func (s *Service) RegisterClientUser(ctx context.Context, c Client, identifier string) (ClientUser, error) {
	const op = "core.RegisterClientUser"
	if err := validateLabel(op, "identifier", identifier, ""); err != nil {
		return ClientUser{}, err
	}
	secret := NewSecret(PrefixClientUser, 32)
	var u User
	// A Conflict is the identifier's (taken: the answer) or the username's (a
	// race with another create: pick again).
	for range 3 {
		name, err := s.freeUsername(ctx, []string{identifier}, usernameBase(identifier))
		if err != nil {
			return ClientUser{}, err
		}
		var chk checker
		u = s.buildUser(&chk, Fields{"username": name}, clientUserPolicy)
		if err := chk.err(op); err != nil {
			return ClientUser{}, err
		}
		u.ClientID, u.ClientIdentifier = c.ID, identifier
		u.SecretPreview = PrefixClientUser + "..." + secret[len(secret)-8:]
		if err = s.store.CreateUser(ctx, &u); KindOf(err) != Conflict {
			if err != nil {
				return ClientUser{}, err
			}
			break
		}
		if _, lerr := s.store.LocateUser(ctx, NameClientIdentifier, ClientIdentifierName(c.ID, identifier)); lerr == nil {
			return ClientUser{}, Errorf(Conflict, op, "identifier %q is taken", identifier)
		}
		u.ID = ""
	}
	if u.ID == "" {
		return ClientUser{}, Errorf(Conflict, op, "could not find a free username for identifier %q: try again", identifier)
	}
	if err := s.store.SetUserSecret(ctx, u.ID, HashSHA256(secret)); err != nil {
		_ = s.store.DeleteUser(context.WithoutCancel(ctx), u.ID)
		return ClientUser{}, err
	}
	return ClientUser{User: u, Secret: secret}, nil
}

// usernameBase is the part of an identifier kept in a derived username: its
// letters, digits and '.', '_', '-', '@', at most 100 of them ("user" if
// none).
func usernameBase(identifier string) string {
	var b strings.Builder
	for _, r := range identifier {
		if b.Len() >= 100 {
			break
		}
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-@", r)) {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 || ValidateUsername(b.String()) != nil {
		return "user"
	}
	return b.String()
}

// ClientLogin opens a session for a client's user from its identifier and
// secret, like a login with a user secret: one 401 for an unknown identifier
// and a wrong secret, failures counted against the same rate limits. A new
// session leaves the older ones alive.
func (s *Service) ClientLogin(ctx context.Context, c Client, req LoginRequest) (NewSession, error) {
	const op = "core.ClientLogin"
	var chk checker
	if req.Identifier == "" {
		chk.fail("identifier", "is required")
	}
	if req.Secret == "" {
		chk.fail("secret", "is required")
	}
	if err := chk.err(op); err != nil {
		return NewSession{}, err
	}
	keys := []string{"login:client:" + c.ID + "/" + req.Identifier, "login:addr:" + req.ClientAddr}
	rates := []Rate{s.policy.LoginPerIdentifier, s.policy.LoginPerAddress}
	if err := s.checkRates(ctx, op, keys, rates, 0); err != nil {
		return NewSession{}, err
	}
	rec, ok, err := s.readClientLogin(ctx, c, req.Identifier)
	if err != nil {
		return NewSession{}, err
	}
	if !ok || rec.SecretHash == "" || !MatchesSHA256(rec.SecretHash, req.Secret) {
		if err := s.checkRates(ctx, op, keys, rates, 1); err != nil {
			return NewSession{}, err
		}
		return NewSession{}, errLogin(op)
	}
	if !rec.User.IsActive {
		return NewSession{}, Errorf(Forbidden, op, "user %q is deactivated", req.Identifier)
	}
	req.Provider = ProviderSecret
	return s.openSession(ctx, rec.User, req)
}

// readClientLogin reads the login record of client c's user identifier.
func (s *Service) readClientLogin(ctx context.Context, c Client, identifier string) (AuthRecord, bool, error) {
	uid, err := s.store.LocateUser(ctx, NameClientIdentifier, ClientIdentifierName(c.ID, identifier))
	if KindOf(err) == NotFound {
		return AuthRecord{}, false, nil
	}
	if err != nil {
		return AuthRecord{}, false, err
	}
	rec, err := s.store.ReadAuth(ctx, AuthQuery{UserID: uid, Secret: true})
	if KindOf(err) == NotFound {
		return AuthRecord{}, false, nil
	}
	if err != nil {
		return AuthRecord{}, false, err
	}
	// The claim may be a leftover pointing elsewhere: the record is the truth.
	return rec, rec.User.ClientID == c.ID && rec.User.ClientIdentifier == identifier, nil
}

// ClientSessionUser returns the user of a session token if it belongs to
// client c. Unauthorized otherwise: a client sees its own users only.
func (s *Service) ClientSessionUser(ctx context.Context, c Client, token string) (User, error) {
	u, err := s.Me(ctx, token)
	if KindOf(err) == Forbidden || KindOf(err) == NotFound {
		return User{}, Errorf(Unauthorized, "core.ClientSessionUser", "a valid user token is required")
	}
	if err != nil {
		return User{}, err
	}
	if u.ClientID != c.ID {
		return User{}, Errorf(Unauthorized, "core.ClientSessionUser", "the token is not one of this client's users")
	}
	return u, nil
}

// Connectors lists the integrations a user may link.
func (s *Service) Connectors() []string {
	if s.providers == nil {
		return nil
	}
	return s.providers.IntegrationNames()
}

// SelectLinked makes one of a user's accounts its connector's selected one.
func (s *Service) SelectLinked(ctx context.Context, userID, connector, userIdentifier string) error {
	return s.store.SelectLinkedAccount(ctx, userID, connector, userIdentifier)
}

// CustomConfigTokenType marks a linked account whose credentials are a
// configuration of the user's (LinkedAccessToken.Token is its JSON).
const CustomConfigTokenType = "custom"

// ConfigureIntegration stores a configuration of the user's (an API key, a
// server) as an account of the connector, sealed like tokens, when the
// connector's plugin takes one (capability custom_configuration); Malformed
// otherwise. The account's identifier is the configuration's
// "user_identifier", "identifier", "username" or "email" (the first that is a
// non-empty string), else "default"; configuring it again replaces it.
func (s *Service) ConfigureIntegration(ctx context.Context, userID, connector string, configuration map[string]any) (LinkedAccount, error) {
	const op = "core.ConfigureIntegration"
	if s.keyring == nil {
		return LinkedAccount{}, errNoKeyring(op)
	}
	p, err := s.integration(ctx, op, connector)
	if err != nil {
		return LinkedAccount{}, err
	}
	info, err := p.Describe(ctx)
	if err != nil {
		return LinkedAccount{}, err
	}
	if !slices.Contains(info.Capabilities, CapCustomConfig) {
		return LinkedAccount{}, Errorf(Malformed, op, "connector %q takes no custom configuration: link it with a callback_url", connector)
	}
	if len(configuration) == 0 {
		return LinkedAccount{}, &Error{Kind: Malformed, Op: op, Msg: "configuration: is required",
			Fields: []FieldError{{Field: "configuration", Detail: "is required"}}}
	}
	plain, err := json.Marshal(configuration)
	if err != nil {
		return LinkedAccount{}, E(Malformed, op, err)
	}
	ident := "default"
	for _, k := range []string{"user_identifier", "identifier", "username", "email"} {
		if v, ok := configuration[k].(string); ok && validateLabel(op, "configuration."+k, v, "") == nil {
			ident = v
			break
		}
	}
	return s.storeLinked(ctx, op, userID, LinkedAccount{Connector: connector, UserIdentifier: ident, ConnectedAt: s.Now()},
		IntegrationTokens{AccessToken: string(plain), TokenType: CustomConfigTokenType})
}
