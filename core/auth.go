package core

import (
	"context"
	"strings"
	"time"
)

// Login providers the core checks itself: a password, or a user secret.
const (
	ProviderEmail  = "email"
	ProviderSecret = "secret"
)

// SetPassword sets a user's password (RFC 8265 OpaqueString, 8–256 characters,
// argon2id) and ends every login session of the user in the same write, which
// updates the user's updatedAt: the user is a new version, returned. A
// precondition (If-Match) is checked on the stored user inside the write:
// PreconditionFailed, nothing written.
func (s *Service) SetPassword(ctx context.Context, ref, password string, pre ...Precondition) (User, error) {
	const op = "core.SetPassword"
	p := precondition(pre)
	prepared, err := ValidatePassword(password)
	if err != nil {
		return User{}, err
	}
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return User{}, err
	}
	if err := p.check(op, "user", u.Version()); err != nil {
		return User{}, err // stale already: no hash computed for nothing
	}
	phc, err := s.hasher.Hash(ctx, prepared)
	if err != nil {
		return User{}, err
	}
	var written User
	err = s.store.SetPassword(ctx, u.ID, phc, func(u *User) error {
		if err := p.check(op, "user", u.Version()); err != nil {
			return err
		}
		// Strictly later, so that the version changes even within one millisecond.
		now := s.Now()
		if !now.After(u.UpdatedAt) {
			now = u.UpdatedAt.Add(time.Millisecond)
		}
		u.UpdatedAt = now
		written = *u
		return nil
	})
	if err != nil {
		return User{}, err
	}
	return written, nil
}

// NewUserSecret gives a user a new secret (gthu_…) and returns it, to be shown
// once; only its SHA-256 is kept. The old secret stops working; sessions stay.
func (s *Service) NewUserSecret(ctx context.Context, ref string) (string, error) {
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return "", err
	}
	secret := NewToken(PrefixUserSecret, u.ID)
	if err := s.store.SetUserSecret(ctx, u.ID, HashSHA256(secret)); err != nil {
		return "", err
	}
	return secret, nil
}

// LoginRequest is a login (POST /auth/tokens): a password, a user secret, a
// password checked by an identity provider, or the code a redirect sign-in
// handed to the app.
type LoginRequest struct {
	Provider   string // "email" (a password), "secret" (a user secret), or an identity provider's name
	Identifier string // a user id, username or email (for "email" and "secret"); the provider's own otherwise
	Secret     string
	Code       string // a redirect sign-in's code, instead of Identifier and Secret
	ClientAddr string
	UserAgent  string
}

// NewSession is a session just created, with its token in plain text: shown once.
type NewSession struct {
	Token string
	Session
}

// errLogin is the one answer to a wrong identifier or secret: nothing tells them apart.
func errLogin(op string) error {
	return Errorf(Unauthorized, op, "invalid identifier or secret")
}

// Login checks an identifier and secret and opens a session.
// The identifier is resolved as a user id, then a username, then an email; an
// unknown identifier and a wrong secret get the same 401 after the same work
// (a dummy hash). Failed logins count against the identifier and the client
// address; over either rate the answer is RateLimited with RetryAfter. A user
// over its sessionsLimit (or the global cap) loses its oldest session.
//
// Any other provider is an identity provider: with a Code, a redirect
// sign-in's code is redeemed once; else the provider checks the password
// (it must declare the password_check capability) and the identity it
// answers is the user's, linked or created as a redirect sign-in's is.
func (s *Service) Login(ctx context.Context, req LoginRequest) (NewSession, error) {
	const op = "core.Login"
	var c checker
	builtin := req.Provider == ProviderEmail || req.Provider == ProviderSecret
	switch {
	case req.Provider == "":
		c.fail("provider", "is required")
	case !builtin && s.providers != nil:
		if _, ok := s.providers.IdentityProvider(req.Provider); !ok {
			c.fail("provider", "must be %q, %q or an identity provider's name", ProviderEmail, ProviderSecret)
		}
	case !builtin:
		c.fail("provider", "must be %q or %q", ProviderEmail, ProviderSecret)
	}
	if req.Code != "" {
		if builtin {
			c.fail("code", "is for identity providers that sign in by redirect")
		}
		if req.Identifier != "" || req.Secret != "" {
			c.fail("code", "goes without identifier and secret")
		}
		if err := c.err(op); err != nil {
			return NewSession{}, err
		}
		return s.redeemLoginCode(ctx, op, req)
	}
	if req.Identifier == "" {
		c.fail("identifier", "is required")
	}
	if req.Secret == "" {
		c.fail("secret", "is required")
	}
	if err := c.err(op); err != nil {
		return NewSession{}, err
	}
	keys := []string{"login:id:" + identifierKey(req.Identifier), "login:addr:" + req.ClientAddr}
	rates := []Rate{s.policy.LoginPerIdentifier, s.policy.LoginPerAddress}
	if err := s.checkRates(ctx, op, keys, rates, 0); err != nil {
		return NewSession{}, err
	}
	if !builtin {
		return s.checkedLogin(ctx, op, req, keys, rates)
	}
	rec, found, err := s.readLogin(ctx, req)
	if err != nil {
		return NewSession{}, err
	}
	ok := false
	switch {
	case req.Provider == ProviderSecret:
		ok = found && rec.SecretHash != "" && MatchesSHA256(rec.SecretHash, req.Secret)
	case found && rec.PasswordHash != "":
		prepared, perr := ValidatePassword(req.Secret)
		if ok, err = s.hasher.Verify(ctx, rec.PasswordHash, prepared); err != nil {
			return NewSession{}, err
		}
		ok = ok && perr == nil
	default:
		s.hasher.Dummy(ctx, req.Secret) // the same work as a real check
	}
	if !ok {
		if err := s.checkRates(ctx, op, keys, rates, 1); err != nil {
			return NewSession{}, err
		}
		return NewSession{}, errLogin(op)
	}
	if !rec.User.IsActive {
		return NewSession{}, Errorf(Forbidden, op, "user %q is deactivated", rec.User.Username)
	}
	if req.Provider == ProviderEmail && s.policy.RequireVerifiedEmail {
		// Only users who signed up by email (their first identity) and never
		// verified it; admin-created users have no identity and log in.
		if ids := rec.User.Identities; len(ids) > 0 && ids[0].Provider == ProviderEmail && !ids[0].EmailVerified {
			return NewSession{}, Errorf(Forbidden, op, "email address not verified: follow the link in the verification mail")
		}
	}
	return s.openSession(ctx, rec.User, req)
}

// checkedLogin is a login whose password an identity provider checks (LDAP
// and the like): its identity is the user's, found, linked or created as a
// redirect sign-in's. Only a refused password counts as a failure.
func (s *Service) checkedLogin(ctx context.Context, op string, req LoginRequest, keys []string, rates []Rate) (NewSession, error) {
	p, err := s.providerWith(ctx, op, req.Provider, CapPasswordCheck, "does not check passwords")
	if KindOf(err) == NotFound {
		return NewSession{}, InvalidFields(op, FieldError{Field: "provider", Detail: MessageOf(err)})
	}
	if err != nil {
		return NewSession{}, err
	}
	id, err := p.CheckPassword(ctx, req.Identifier, req.Secret)
	if KindOf(err) == Unauthorized || KindOf(err) == NotFound {
		if err := s.checkRates(ctx, op, keys, rates, 1); err != nil {
			return NewSession{}, err
		}
		return NewSession{}, errLogin(op)
	}
	if err != nil {
		return NewSession{}, err
	}
	u, err := s.userForIdentity(ctx, op, req.Provider, id)
	if err != nil {
		return NewSession{}, err
	}
	return s.openSession(ctx, u, req)
}

// readLogin finds the user of a login identifier: id, then username, then email.
func (s *Service) readLogin(ctx context.Context, req LoginRequest) (AuthRecord, bool, error) {
	q := AuthQuery{Password: req.Provider == ProviderEmail, Secret: req.Provider == ProviderSecret}
	type try struct {
		kind  NameKind
		value string
	}
	var tries []try
	if IsUUID(req.Identifier) {
		tries = append(tries, try{"", strings.ToLower(req.Identifier)})
	} else {
		tries = append(tries, try{NameUsername, req.Identifier})
		if strings.Contains(req.Identifier, "@") {
			tries = append(tries, try{NameEmail, req.Identifier})
		}
	}
	for _, t := range tries {
		uid := t.value
		if t.kind != "" {
			var err error
			if uid, err = s.store.LocateUser(ctx, t.kind, t.value); KindOf(err) == NotFound {
				continue
			} else if err != nil {
				return AuthRecord{}, false, err
			}
		}
		q.UserID = uid
		rec, err := s.store.ReadAuth(ctx, q)
		if KindOf(err) == NotFound {
			continue
		}
		if err != nil {
			return AuthRecord{}, false, err
		}
		if holdsName(rec.User, t.kind, t.value) {
			return rec, true, nil
		}
	}
	return AuthRecord{}, false, nil
}

// holdsName reports whether u holds the name it was located by (a leftover claim
// may point elsewhere).
func holdsName(u User, kind NameKind, value string) bool {
	switch kind {
	case NameUsername:
		a, err1 := UsernameKey(u.Username)
		b, err2 := UsernameKey(value)
		return err1 == nil && err2 == nil && a == b
	case NameEmail:
		norm, err := NormalizeEmail(value)
		return err == nil && u.Email != "" && EmailKey(u.Email) == EmailKey(norm)
	}
	return true
}

// identifierKey folds a login identifier for rate limiting, so case variants
// share one counter.
func identifierKey(id string) string {
	if k, err := UsernameKey(id); err == nil {
		return k
	}
	return strings.ToLower(id)
}

// checkRates counts n events (0: only asks) against each key and answers
// RateLimited with the longest RetryAfter when one is over its rate.
func (s *Service) checkRates(ctx context.Context, op string, keys []string, rates []Rate, n int) error {
	if s.limiter == nil {
		return nil
	}
	var wait time.Duration
	for i, key := range keys {
		ok, retry, err := s.limiter.Allow(ctx, key, rates[i], n)
		if err != nil {
			return err
		}
		if !ok && retry > wait {
			wait = retry
		}
		if !ok && wait == 0 {
			wait = time.Second
		}
	}
	if wait > 0 {
		return &Error{Kind: RateLimited, Op: op, Msg: "too many failed attempts: try again later", RetryAfter: wait}
	}
	return nil
}

// openSession creates a session for u and returns its token, shown once.
func (s *Service) openSession(ctx context.Context, u User, req LoginRequest) (NewSession, error) {
	now := s.Now()
	token := NewToken(PrefixSession, u.ID)
	sess := Session{
		ID: NewSecret("", 9), Hash: HashSHA256(token), Kind: KindSession, UserID: u.ID,
		ConsumerID: u.ID, ConsumerKind: ConsumerUser, Provider: req.Provider,
		CreatedAt: now, ExpiresAt: now.Add(s.policy.SessionTTL), LastSeenAt: now,
		ClientAddr: req.ClientAddr, UserAgent: truncate(req.UserAgent, 256),
	}
	limit := s.policy.MaxSessions
	if u.SessionsLimit != nil && *u.SessionsLimit < limit {
		limit = *u.SessionsLimit
	}
	if err := s.store.CreateSession(ctx, sess, limit); err != nil {
		return NewSession{}, err
	}
	return NewSession{Token: token, Session: sess}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// Logout ends the session of a session token. Unauthorized if it is not a live one.
func (s *Service) Logout(ctx context.Context, token string) error {
	const op = "core.Logout"
	uid, ok := TokenUser(PrefixSession, token)
	if !ok {
		return Errorf(Unauthorized, op, "not a session token")
	}
	err := s.store.DeleteSession(ctx, uid, HashSHA256(token))
	if KindOf(err) == NotFound {
		return Errorf(Unauthorized, op, "session not found")
	}
	return err
}

// Me returns the user of a live session token (GET /users/me).
func (s *Service) Me(ctx context.Context, token string) (User, error) {
	p, err := s.Verify(ctx, Presented{Scheme: SchemeBearer, Secret: token})
	if err != nil {
		return User{}, err
	}
	if p.Kind != string(KindSession) {
		return User{}, Errorf(Forbidden, "core.Me", "a session token is required")
	}
	return s.store.GetUser(ctx, p.UserID)
}

// Sessions lists a user's live sessions (never their tokens).
func (s *Service) Sessions(ctx context.Context, ref string) ([]Session, error) {
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.store.Sessions(ctx, u.ID)
}

// EndSessions logs a user out everywhere: every session and token ends at once.
func (s *Service) EndSessions(ctx context.Context, ref string) error {
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return err
	}
	return s.store.DeleteSessions(ctx, u.ID)
}
