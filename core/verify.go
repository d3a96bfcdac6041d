package core

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Schemes of a credential presented to /verify (SPEC §3.2).
const (
	SchemeBearer = "bearer" // Authorization: Bearer: a gths_ or gtho_ token, or a jwt
	SchemeBasic  = "basic"  // Authorization: Basic: a username (or id) and a password
	SchemeAPIKey = "apikey" // keyId:keySecret in any of Express Gateway's places
)

const (
	jwtLeeway     = 60 * time.Second // exp and nbf leeway
	touchInterval = time.Minute      // lastSeenAt is written at most this often
)

// Presented is one credential a gateway forwarded to /verify: the first one
// present, in the precedence order of SPEC §3.2, is the one checked.
type Presented struct {
	Scheme         string
	ID             string   // basic: the username, user id, app id or app name; apikey: the keyId
	Secret         string   // bearer: the token or jwt; basic: the password; apikey: the key secret
	ClientAddr     string   // the original client, for the failure throttle
	RequiredScopes []string // X-Required-Scopes
}

// Principal is who a verified request comes from.
type Principal struct {
	Kind       string // "session", "oauth2", or the credential type
	ConsumerID string // the app's id for an app's credential or token, else the user's
	Username   string // the app's name for an app's, else the username
	UserID     string
	AppID      string
	Scopes     []string
	Groups     []string
	SessionID  string // sessions and tokens
}

// errVerify is the one answer to anything unknown, wrong or expired.
func errVerify(op string) error { return Errorf(Unauthorized, op, "invalid credentials") }

// Verify checks a presented credential with the rules of SPEC §3.2, §6, §7 and §9:
// Unauthorized when it is unknown, wrong or expired (with RetryAfter when the key
// or username has had too many failures from that address), Forbidden when it is
// not effectively active or lacks a required scope, Unavailable when the store
// cannot answer. The credential's record and its owners' state are read in one
// round trip (after the first use of a key, whose owner is then remembered).
func (s *Service) Verify(ctx context.Context, p Presented) (Principal, error) {
	switch p.Scheme {
	case SchemeBearer:
		switch {
		case strings.HasPrefix(p.Secret, PrefixSession):
			return s.verifyToken(ctx, p, PrefixSession, KindSession)
		case strings.HasPrefix(p.Secret, PrefixOAuth):
			return s.verifyToken(ctx, p, PrefixOAuth, KindOAuth)
		case strings.Count(p.Secret, ".") == 2:
			return s.verifyJWT(ctx, p)
		}
	case SchemeAPIKey:
		return s.verifyKey(ctx, p)
	case SchemeBasic:
		return s.verifyBasic(ctx, p)
	}
	return Principal{}, errVerify("core.Verify")
}

// verifyToken checks a session or OAuth access token: the user id it is routed
// to names the slot, so one read finds the record and its owners' state.
func (s *Service) verifyToken(ctx context.Context, p Presented, prefix string, kind SessionKind) (Principal, error) {
	const op = "core.verifyToken"
	uid, ok := TokenUser(prefix, p.Secret)
	if !ok {
		return Principal{}, errVerify(op)
	}
	hash := HashSHA256(p.Secret)
	rec, err := s.store.ReadAuth(ctx, AuthQuery{UserID: uid, SessionHash: hash})
	if KindOf(err) == NotFound {
		return Principal{}, errVerify(op)
	}
	if err != nil {
		return Principal{}, err
	}
	sess := rec.Session
	now := s.now()
	if sess == nil || sess.Kind != kind || sess.Hash != hash || !now.Before(sess.ExpiresAt) {
		return Principal{}, errVerify(op)
	}
	if now.Sub(sess.LastSeenAt) >= touchInterval {
		s.touch(sess.UserID, sess.Hash, now)
	}
	var grants []ScopeGrant
	if kind == KindOAuth {
		// The token's credential must still be there and active; its scopes
		// bound the token's.
		c := rec.Credential
		if c == nil || c.Expired(now) {
			return Principal{}, errVerify(op)
		}
		if !c.Active() {
			return Principal{}, errInactive(op)
		}
		for _, g := range sess.Scopes {
			if slices.Contains(c.Scopes, g) {
				grants = append(grants, g)
			}
		}
	}
	pr, err := s.principal(op, rec, string(kind), sess.ConsumerKind, sess.ConsumerID, grants, p.RequiredScopes)
	pr.SessionID = sess.ID
	return pr, err
}

// touch records a session's use off the request path, once per touchInterval
// per session and process however many requests arrive meanwhile.
func (s *Service) touch(uid, hash string, at time.Time) {
	if _, busy := s.touched.get(hash, at); busy {
		return
	}
	s.touched.put(hash, "", at.Add(touchInterval))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.store.TouchSession(ctx, uid, hash, at) // best effort: only lastSeenAt is lost
	}()
}

// verifyKey checks a key-auth keyId:keySecret.
func (s *Service) verifyKey(ctx context.Context, p Presented) (Principal, error) {
	const op = "core.verifyKey"
	if !ValidKeyID(p.ID) || p.Secret == "" {
		return Principal{}, errVerify(op)
	}
	rec, throttle, err := s.readKeyed(ctx, KeyAuth, p)
	if err != nil || rec.Credential == nil {
		return Principal{}, err
	}
	if !secretMatches(rec.Credential.Secret, p.Secret) {
		return Principal{}, s.failed(ctx, op, throttle)
	}
	return s.credentialPrincipal(op, rec, p)
}

// readKeyed reads a keyed credential through the locator cache, honouring the
// failure throttle of its keyId and the client address. A nil credential with a
// nil error means unknown (the error to answer is then errVerify).
func (s *Service) readKeyed(ctx context.Context, typ CredentialType, p Presented) (AuthRecord, *Throttle, error) {
	op := "core.verify." + string(typ)
	throttle := &Throttle{Key: "verify:" + string(typ) + ":" + p.ID + "|" + p.ClientAddr, Rate: s.policy.VerifyFailures}
	q := func(uid string) AuthQuery {
		return AuthQuery{UserID: uid, Credential: &CredentialRef{typ, p.ID}, Throttle: throttle}
	}
	rec, found, err := s.readLocated(ctx, "c:"+string(typ)+":"+p.ID, q,
		func() (string, error) { return s.store.LocateCredential(ctx, typ, p.ID) },
		func(r AuthRecord) bool { return r.Credential != nil })
	switch {
	case err != nil:
		return AuthRecord{}, nil, err
	case rec.RetryAfter > 0:
		return AuthRecord{}, nil, throttled(op, rec.RetryAfter)
	case !found:
		return AuthRecord{}, nil, errVerify(op)
	}
	return rec, throttle, nil
}

// readLocated reads, in one round trip, what query(uid) names in the slot of the
// user remembered for cacheKey, and reports whether owned says the presented
// name is really there. When it is not (the name moved to another user since it
// was remembered) the owner is located again, once, and read again.
func (s *Service) readLocated(ctx context.Context, cacheKey string, query func(uid string) AuthQuery, locate func() (string, error), owned func(AuthRecord) bool) (AuthRecord, bool, error) {
	uid, cached := s.locators.get(cacheKey, time.Time{})
	for {
		if !cached {
			var err error
			if uid, err = locate(); KindOf(err) == NotFound {
				return AuthRecord{}, false, nil
			} else if err != nil {
				return AuthRecord{}, false, err
			}
		}
		rec, err := s.store.ReadAuth(ctx, query(uid))
		if err != nil && KindOf(err) != NotFound {
			return AuthRecord{}, false, err
		}
		if err == nil && owned(rec) {
			if !cached {
				s.locators.put(cacheKey, uid, time.Time{})
			}
			return rec, true, nil
		}
		if !cached {
			return rec, false, nil
		}
		s.locators.del(cacheKey)
		cached = false
	}
}

// failed counts a failed attempt against the throttle and answers 401 (SPEC §6:
// a 429 from auth_request becomes a 500 in nginx).
func (s *Service) failed(ctx context.Context, op string, t *Throttle) error {
	if s.limiter != nil && t != nil {
		if ok, retry, err := s.limiter.Allow(ctx, t.Key, t.Rate, 1); err == nil && !ok {
			return throttled(op, retry)
		}
	}
	return errVerify(op)
}

func throttled(op string, retry time.Duration) error {
	return &Error{Kind: Unauthorized, Op: op, Msg: "too many failed attempts: try again later", RetryAfter: max(retry, time.Second)}
}

func errInactive(op string) error { return Errorf(Forbidden, op, "credential is not active") }

// credentialPrincipal checks a verified credential's state and expiry and
// returns its principal.
func (s *Service) credentialPrincipal(op string, rec AuthRecord, p Presented) (Principal, error) {
	c := rec.Credential
	if c.Expired(s.now()) {
		return Principal{}, errVerify(op)
	}
	if !c.IsActive {
		return Principal{}, errInactive(op)
	}
	// principal checks the owners' flags, naming which one is off.
	return s.principal(op, rec, string(c.Type), c.ConsumerKind, c.ConsumerID, c.Scopes, p.RequiredScopes)
}

// principal builds the verified principal: the consumer (an app's id and name for
// an app's), the effective scopes, and the required-scope check.
func (s *Service) principal(op string, rec AuthRecord, kind string, ck ConsumerKind, consumerID string, grants []ScopeGrant, required []string) (Principal, error) {
	if !rec.User.IsActive {
		return Principal{}, Errorf(Forbidden, op, "user is deactivated")
	}
	pr := Principal{Kind: kind, ConsumerID: rec.User.ID, Username: rec.User.Username, UserID: rec.User.ID, Scopes: []string{}, Groups: []string{}}
	if ck == ConsumerApp {
		if rec.App == nil || rec.App.ID != consumerID {
			return Principal{}, errVerify(op)
		}
		if !rec.App.IsActive {
			return Principal{}, Errorf(Forbidden, op, "app is deactivated")
		}
		pr.ConsumerID, pr.Username, pr.AppID = rec.App.ID, rec.App.Name, rec.App.ID
	}
	for _, g := range grants {
		if rec.Scopes[g.Name] == g.Reg {
			pr.Scopes = append(pr.Scopes, g.Name)
		}
	}
	for _, want := range required {
		if !slices.Contains(pr.Scopes, want) {
			return Principal{}, Errorf(Forbidden, op, "scope %q is required", want)
		}
	}
	return pr, nil
}

// verifyBasic checks a basic-auth credential: users by username or id, apps by
// id or unique name. An unknown name costs a dummy hash, and a successful argon2
// comparison is remembered for a while under a keyed hash (the records are still
// read, so a deactivation or a new password takes effect at once).
func (s *Service) verifyBasic(ctx context.Context, p Presented) (Principal, error) {
	const op = "core.verifyBasic"
	if p.ID == "" {
		return Principal{}, errVerify(op)
	}
	throttle := &Throttle{Key: "verify:basic-auth:" + identifierKey(p.ID) + "|" + p.ClientAddr, Rate: s.policy.VerifyFailures}
	rec, found, err := s.readBasic(ctx, p.ID, throttle)
	if err != nil {
		return Principal{}, err
	}
	if rec.RetryAfter > 0 {
		return Principal{}, throttled(op, rec.RetryAfter)
	}
	if !found {
		s.verifyHasher.Dummy(ctx, p.Secret)
		return Principal{}, errVerify(op)
	}
	ok, err := s.checkPassword(ctx, rec.Credential.Secret, p.Secret)
	if err != nil {
		return Principal{}, err
	}
	if !ok {
		return Principal{}, s.failed(ctx, op, throttle)
	}
	return s.credentialPrincipal(op, rec, p)
}

// readBasic finds the basic-auth credential of a Basic user part: a UUID as a
// user id then an app id; anything else as a username, then a unique app name.
// found is false when there is no such credential.
func (s *Service) readBasic(ctx context.Context, name string, throttle *Throttle) (rec AuthRecord, found bool, err error) {
	userCred := func(uid string) AuthQuery {
		return AuthQuery{UserID: uid, Credential: &CredentialRef{BasicAuth, uid}, Throttle: throttle}
	}
	if IsUUID(name) {
		id := strings.ToLower(name)
		rec, err = s.store.ReadAuth(ctx, userCred(id))
		if err != nil && KindOf(err) != NotFound {
			return AuthRecord{}, false, err
		}
		if err == nil {
			return rec, rec.Credential != nil, nil
		}
		rec, found, err = s.readLocated(ctx, "a:"+id,
			func(uid string) AuthQuery {
				return AuthQuery{UserID: uid, AppID: id, Credential: &CredentialRef{BasicAuth, id}, Throttle: throttle}
			},
			func() (string, error) { return s.store.LocateApp(ctx, id) },
			func(r AuthRecord) bool { return r.App != nil && r.App.ID == id })
		return rec, found && rec.Credential != nil, err
	}
	if key, kerr := UsernameKey(name); kerr == nil {
		rec, found, err = s.readLocated(ctx, "u:"+key, userCred,
			func() (string, error) { return s.store.LocateUser(ctx, NameUsername, name) },
			func(r AuthRecord) bool { return holdsName(r.User, NameUsername, name) })
		if err != nil || found {
			return rec, found && rec.Credential != nil, err
		}
	}
	apps, err := s.store.AppsByName(ctx, name) // app names are rare at /verify: no cache
	if err != nil || len(apps) != 1 {
		return AuthRecord{}, false, err
	}
	a := apps[0]
	rec, err = s.store.ReadAuth(ctx, AuthQuery{UserID: a.UserID, AppID: a.ID, Credential: &CredentialRef{BasicAuth, a.ID}, Throttle: throttle})
	if err != nil && KindOf(err) != NotFound {
		return AuthRecord{}, false, err
	}
	return rec, rec.Credential != nil, nil
}

// checkPassword verifies a password against an argon2id hash at /verify, with
// the verify pool, remembering successes for Policy.RememberSuccess under a keyed
// hash of the stored hash and the password (a new password changes the stored
// hash, so the memory does not outlive it).
func (s *Service) checkPassword(ctx context.Context, phc, password string) (bool, error) {
	mac := hmac.New(sha256.New, s.passKey)
	mac.Write([]byte(phc))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	key := hex.EncodeToString(mac.Sum(nil))
	now := s.now()
	if _, ok := s.passed.get(key, now); ok {
		return true, nil
	}
	prepared, perr := ValidatePassword(password)
	ok, err := s.verifyHasher.Verify(ctx, phc, prepared)
	if err != nil || !ok || perr != nil {
		return false, err
	}
	s.passed.put(key, "", now.Add(s.policy.RememberSuccess))
	return true, nil
}

// verifyJWT checks a jwt credential's token: HS256 with the credential's
// decrypted key secret; the keyId is the kid header, else sub (Express Gateway's
// convention), else iss; exp and nbf are checked with 60 s of leeway.
func (s *Service) verifyJWT(ctx context.Context, p Presented) (Principal, error) {
	const op = "core.verifyJWT"
	unverified, _, err := jwt.NewParser().ParseUnverified(p.Secret, jwt.MapClaims{})
	if err != nil {
		return Principal{}, errVerify(op)
	}
	keyID, _ := unverified.Header["kid"].(string)
	claims, _ := unverified.Claims.(jwt.MapClaims)
	for _, name := range []string{"sub", "iss"} {
		if keyID == "" {
			keyID, _ = claims[name].(string)
		}
	}
	if !ValidKeyID(keyID) {
		return Principal{}, errVerify(op)
	}
	p.ID = keyID
	rec, throttle, err := s.readKeyed(ctx, JWT, p)
	if err != nil || rec.Credential == nil {
		return Principal{}, err
	}
	secret, err := s.JWTSecret(*rec.Credential)
	if err != nil {
		return Principal{}, err
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{algHS256}), jwt.WithLeeway(jwtLeeway), jwt.WithTimeFunc(s.now))
	if _, err := parser.Parse(p.Secret, func(*jwt.Token) (any, error) { return secret, nil }); err != nil {
		return Principal{}, s.failed(ctx, op, throttle)
	}
	return s.credentialPrincipal(op, rec, p)
}
