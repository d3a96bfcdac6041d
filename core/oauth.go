package core

import (
	"context"
	"slices"
	"strings"
	"time"
)

// ClientRequest is an OAuth 2.0 client authenticating with its oauth2
// credential: the client id is the credential's consumer (an app id, or a user id).
type ClientRequest struct {
	ClientID     string
	ClientSecret string
	ClientAddr   string
}

// AccessToken is a client-credentials access token, shown once.
type AccessToken struct {
	Token     string
	ExpiresIn time.Duration
	Scopes    []string
}

// authenticateClient checks an oauth2 client's id and secret (RFC 6749 §2.3) and
// returns its credential's record. Unauthorized for an unknown client, a wrong
// secret, or a credential that is not effectively active.
func (s *Service) authenticateClient(ctx context.Context, req ClientRequest) (AuthRecord, error) {
	const op = "core.authenticateClient"
	if !IsUUID(req.ClientID) || req.ClientSecret == "" {
		return AuthRecord{}, Errorf(Unauthorized, op, "invalid client")
	}
	id := strings.ToLower(req.ClientID)
	throttles := []Throttle{{Key: "oauth:" + id + "|" + req.ClientAddr, Rate: s.policy.VerifyFailures}}
	// A user's credential lives under its own id; an app's in its owner's slot.
	rec, err := s.store.ReadAuth(ctx, AuthQuery{UserID: id, Credential: &CredentialRef{OAuth2, id}, Throttles: throttles})
	if KindOf(err) == NotFound {
		rec, _, err = s.readLocated(ctx, "a:"+id,
			func(uid string) AuthQuery {
				return AuthQuery{UserID: uid, AppID: id, Credential: &CredentialRef{OAuth2, id}, Throttles: throttles}
			},
			func() (string, error) { return s.store.LocateApp(ctx, id) },
			func(r AuthRecord) bool { return r.App != nil && r.App.ID == id })
	}
	if err != nil {
		return AuthRecord{}, err
	}
	if rec.RetryAfter > 0 {
		return AuthRecord{}, throttled(op, rec.RetryAfter)
	}
	c := rec.Credential
	if c == nil {
		return AuthRecord{}, Errorf(Unauthorized, op, "invalid client")
	}
	matched := MatchesSHA256(c.Secret, req.ClientSecret)
	if !matched && IsBcrypt(c.Secret) {
		if matched, err = s.hasher.Verify(ctx, c.Secret, req.ClientSecret); err != nil {
			return AuthRecord{}, err
		}
		if matched {
			s.upgradeSecret(ctx, *c, func() (string, error) { return HashSHA256(req.ClientSecret), nil })
		}
	}
	if !matched {
		if err := s.refuse(ctx, op, throttles, 0); RetryAfterOf(err) > 0 {
			return AuthRecord{}, err
		}
		return AuthRecord{}, Errorf(Unauthorized, op, "invalid client")
	}
	if !c.Active() || c.Expired(s.now()) || !rec.User.IsActive || c.ConsumerKind == ConsumerApp && (rec.App == nil || !rec.App.IsActive) {
		return AuthRecord{}, Errorf(Unauthorized, op, "client is not active")
	}
	return rec, nil
}

// ClientCredentials answers the client-credentials grant (RFC 6749 §4.4): an
// access token (gtho_…) carrying the credential's effective scopes, or the
// requested subset of them (scope, space-separated; Invalid field "scope" when it
// asks for one the client does not hold).
func (s *Service) ClientCredentials(ctx context.Context, req ClientRequest, scope string) (AccessToken, error) {
	const op = "core.ClientCredentials"
	rec, err := s.authenticateClient(ctx, req)
	if err != nil {
		return AccessToken{}, err
	}
	c := rec.Credential
	var held []ScopeGrant
	for _, g := range c.Scopes {
		if rec.Scopes[g.Name] == g.Reg {
			held = append(held, g)
		}
	}
	grants := held
	if scope != "" {
		grants = nil
		for _, want := range strings.Fields(scope) {
			i := slices.IndexFunc(held, func(g ScopeGrant) bool { return g.Name == want })
			if i < 0 {
				return AccessToken{}, InvalidFields(op, FieldError{Field: "scope", Detail: "scope " + want + " is not granted to this client"})
			}
			if !slices.Contains(grants, held[i]) {
				grants = append(grants, held[i])
			}
		}
	}
	now := s.Now()
	token := NewToken(PrefixOAuth, rec.User.ID)
	sess := Session{
		ID: NewSecret("", 9), Hash: HashSHA256(token), Kind: KindOAuth, UserID: rec.User.ID,
		ConsumerID: c.ConsumerID, ConsumerKind: c.ConsumerKind, Provider: "client_credentials",
		Scopes: grants, CreatedAt: now, ExpiresAt: now.Add(s.policy.OAuthTokenTTL), LastSeenAt: now,
		ClientAddr: req.ClientAddr,
	}
	if err := s.store.CreateSession(ctx, sess, 0); err != nil {
		return AccessToken{}, err
	}
	names := make([]string, len(grants))
	for i, g := range grants {
		names[i] = g.Name
	}
	return AccessToken{Token: token, ExpiresIn: s.policy.OAuthTokenTTL, Scopes: names}, nil
}

// RevokeClientToken revokes an access token at its client's request (RFC 7009):
// the client authenticates; an unknown or expired token is not an error, a token
// of another client is Forbidden.
func (s *Service) RevokeClientToken(ctx context.Context, req ClientRequest, token string) error {
	const op = "core.RevokeClientToken"
	if _, err := s.authenticateClient(ctx, req); err != nil {
		return err
	}
	uid, ok := TokenUser(PrefixOAuth, token)
	if !ok {
		return nil
	}
	rec, err := s.store.ReadAuth(ctx, AuthQuery{UserID: uid, SessionHash: HashSHA256(token)})
	if KindOf(err) == NotFound || err == nil && rec.Session == nil {
		return nil
	}
	if err != nil {
		return err
	}
	if rec.Session.ConsumerID != strings.ToLower(req.ClientID) {
		return Errorf(Forbidden, op, "the token was not issued to this client")
	}
	if err := s.store.DeleteSession(ctx, uid, rec.Session.Hash); err != nil && KindOf(err) != NotFound {
		return err
	}
	return nil
}

// RevokeToken revokes a session or access token on an operator's request
// (DELETE /tokens/{token}, what `eg tokens revoke` calls). NotFound when it is
// not a live token.
func (s *Service) RevokeToken(ctx context.Context, token string) error {
	const op = "core.RevokeToken"
	for _, prefix := range []string{PrefixOAuth, PrefixSession} {
		if uid, ok := TokenUser(prefix, token); ok {
			err := s.store.DeleteSession(ctx, uid, HashSHA256(token))
			if KindOf(err) == NotFound {
				break
			}
			return err
		}
	}
	return Errorf(NotFound, op, "token not found")
}
