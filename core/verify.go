package core

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Schemes of a credential presented to /verify.
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
// present, in /verify's order of precedence (docs/verify.md), is the one checked.
type Presented struct {
	Scheme         string
	ID             string   // basic: the username, user id, app id or app name; apikey: the keyId
	Secret         string   // bearer: the token or jwt; basic: the password; apikey: the key secret
	ClientAddr     string   // the original client, for the failure throttle
	RequiredScopes []string // X-Required-Scopes
	RequiredTags   []string // X-Required-Tags: effective permission tags the consumer must hold
}

// Kind is the kind of credential p presents, which Verify checks it as and
// which is the Principal's Kind when it verifies: a bearer token by its prefix
// (KindSession, KindOAuth), a bearer of three dot-separated parts a JWT, an
// apikey KeyAuth, a Basic credential BasicAuth. "" for anything else, which is
// refused. It reads no store, so metrics can label a refusal with it too.
func (p Presented) Kind() string {
	switch p.Scheme {
	case SchemeBearer:
		switch {
		case strings.HasPrefix(p.Secret, PrefixSession):
			return string(KindSession)
		case strings.HasPrefix(p.Secret, PrefixOAuth):
			return string(KindOAuth)
		case strings.Count(p.Secret, ".") == 2:
			return string(JWT)
		}
	case SchemeAPIKey:
		return string(KeyAuth)
	case SchemeBasic:
		return string(BasicAuth)
	}
	return ""
}

// Principal is who a verified request comes from.
type Principal struct {
	Kind       string // "session", "oauth2", or the credential type
	ConsumerID string // the app's id for an app's credential or token, else the user's
	Username   string // the app's name for an app's, else the username
	UserID     string
	AppID      string
	Scopes     []string
	Groups     []string // the user's group names, sorted
	Tags       []string // the user's effective permission tags (own and its groups'), sorted
	SessionID  string   // sessions and tokens
}

// errVerify is the one answer to anything unknown, wrong or expired.
func errVerify(op string) error { return Errorf(Unauthorized, op, "invalid credentials") }

// Verify checks a presented credential (docs/verify.md has the rules):
// Unauthorized when it is unknown, wrong or expired (with RetryAfter when the key
// or username, or the client address, has had too many failures), Forbidden when
// it is not effectively active or lacks a required scope, Unavailable when the
// store cannot answer. The credential's record and its owners' state are read in
// one round trip (after the first use of a key, whose owner is then remembered),
// or none when the verification cache holds the answer.
//
// It fails closed: a Principal is returned only with a consumer, and every other
// outcome is an error.
func (s *Service) Verify(ctx context.Context, p Presented) (Principal, error) {
	var v verdict
	c := s.vcache
	if c == nil {
		s.verify(ctx, p, &v)
		return answer(&v, p)
	}
	k := c.keyOf(p)
	now := s.now()
	if hit, ok := c.get(k, now); ok {
		if hit.session != "" && now.Sub(hit.lastSeen) >= touchInterval {
			s.touch(hit.userID, hit.session, now)
		}
		return answer(hit, p)
	}
	gen, live := c.begin()
	if !live {
		s.verify(ctx, p, &v)
		return answer(&v, p)
	}
	f, leader := c.join(k)
	if !leader {
		// The same credential is being verified: its verdict is this one's
		// too when it counted no failure (what the cache would keep); else
		// (a wrong secret, a store error) this verification goes its own way
		// and counts its own failure.
		<-f.done // bounded by the leader's store timeouts
		if f.v.store {
			return answer(&f.v, p)
		}
		s.verify(ctx, p, &v)
		return answer(&v, p)
	}
	defer c.land(k, f, &v) // deferred: a panic must not leave waiters behind
	s.verify(ctx, p, &v)
	if v.store {
		c.put(k, v, now, gen)
	}
	return answer(&v, p)
}

// answer is what a verdict answers to a request requiring p's scopes and tags.
func answer(v *verdict, p Presented) (Principal, error) {
	const op = "core.Verify"
	if v.err != nil {
		return Principal{}, v.err
	}
	if v.pr.ConsumerID == "" {
		// principal never builds one; this holds the verification cache to
		// that promise too.
		return Principal{}, errVerify(op)
	}
	for _, want := range p.RequiredScopes {
		if !slices.Contains(v.pr.Scopes, want) {
			return Principal{}, Errorf(Forbidden, op, "scope %q is required", want)
		}
	}
	for _, want := range p.RequiredTags {
		if !slices.Contains(v.pr.Tags, want) {
			return Principal{}, Errorf(Forbidden, op, "tag %q is required", want)
		}
	}
	return v.pr, nil
}

// verify dispatches on the scheme and fills in the verdict, with store set
// when the outcome counted no failure and may be kept by the cache.
func (s *Service) verify(ctx context.Context, p Presented, v *verdict) {
	var err error
	switch p.Kind() {
	case string(KindSession):
		v.pr, err = s.verifyToken(ctx, p, PrefixSession, KindSession, v)
	case string(KindOAuth):
		v.pr, err = s.verifyToken(ctx, p, PrefixOAuth, KindOAuth, v)
	case string(JWT):
		v.pr, err = s.verifyJWT(ctx, p, v)
	case string(KeyAuth):
		v.pr, err = s.verifyKey(ctx, p, v)
	case string(BasicAuth):
		v.pr, err = s.verifyBasic(ctx, p, v)
	default:
		err = errVerify("core.Verify")
	}
	if err != nil {
		v.pr, v.err = Principal{}, err
		// A refusal is kept only when it says what the records say (no
		// failure counted, no store error).
		v.store = v.store && (KindOf(err) == Forbidden || KindOf(err) == Unauthorized) && RetryAfterOf(err) == 0
	}
}

// verifyToken checks a session or OAuth access token: the user id it is routed
// to names the slot, so one read finds the record and its owners' state. Tokens
// carry 256 random bits: their failures are not counted.
func (s *Service) verifyToken(ctx context.Context, p Presented, prefix string, kind SessionKind, v *verdict) (Principal, error) {
	const op = "core.verifyToken"
	uid, ok := TokenUser(prefix, p.Secret)
	if !ok {
		return Principal{}, errVerify(op)
	}
	hash := HashSHA256(p.Secret)
	rec, err := s.readAuth(ctx, AuthQuery{UserID: uid, SessionHash: hash, OAuthToken: kind == KindOAuth})
	if err != nil && KindOf(err) != NotFound {
		return Principal{}, err
	}
	// Whatever follows is what the records say, and counts no failure.
	v.store, v.userID = true, uid
	if err != nil {
		return Principal{}, errVerify(op)
	}
	sess := rec.Session
	now := s.now()
	if sess == nil || sess.Kind != kind || sess.Hash != hash || !now.Before(sess.ExpiresAt) {
		return Principal{}, errVerify(op)
	}
	v.session, v.lastSeen = sess.Hash, sess.LastSeenAt
	v.bound(sess.ExpiresAt)
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
		v.bound(c.ExpiresAt)
		if !c.Active() {
			return Principal{}, errInactive(op)
		}
		for _, g := range sess.Scopes {
			if slices.Contains(c.Scopes, g) {
				grants = append(grants, g)
			}
		}
	}
	return s.principal(op, rec, grant{kind: string(kind), consumerKind: sess.ConsumerKind, consumerID: sess.ConsumerID, scopes: grants, sessionID: sess.ID})
}

// touch records a session's use off the request path, once per touchInterval
// per session and process however many requests arrive meanwhile.
func (s *Service) touch(uid, hash string, at time.Time) {
	if _, busy := s.touched.get(hash, at); busy {
		return
	}
	s.touched.put(hash, "", at.Add(touchInterval))
	s.background.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.store.TouchSession(ctx, uid, hash, at) // best effort: only lastSeenAt is lost
	})
}

// An unknown key id or username and a known one with a wrong secret are answered
// alike, so that /verify does not tell which exist: the same 401, the same
// failure counting under the same throttle keys, and the same Redis work — one
// read, then one write that counts the failure (refuse), and the publish of a
// throttle that this count put over its rate. The read of a known
// name is its record with the throttles (ReadAuth); an unknown one's owner is
// looked up while the same read runs on a user that does not exist
// (locateAlike). A throttled attempt is refused through the same count, which
// counts nothing where the rate is already used up. (The first use of a known
// name on an instance costs one lookup more, before its owner is remembered.)

// verifyThrottles are the failure throttles of one /verify attempt: per name
// (its throttle key prefix and the name, "" for a name that cannot exist) and
// client address, and per client address whatever the name. A rate that is not
// positive limits nothing.
func (s *Service) verifyThrottles(addr, name string) []Throttle {
	ts := make([]Throttle, 0, 2)
	if r := s.policy.VerifyFailures; name != "" && r.Count > 0 && r.Per > 0 {
		ts = append(ts, Throttle{Key: name + "|" + addr, Rate: r})
	}
	if r := s.policy.VerifyFailuresPerAddress; r.Count > 0 && r.Per > 0 {
		ts = append(ts, Throttle{Key: verifyThrottlePrefix + "addr:" + addr, Rate: r})
	}
	return ts
}

// refuse answers a failed attempt: it counts the failure against every
// throttle in one round trip (a throttle already over its rate counts nothing)
// and answers 401, with RetryAfter when a throttle is over its rate (not 429:
// nginx turns a 429 from auth_request into a 500). over is what the read said
// (ReadAuth's RetryAfter); the count's own answer takes precedence, so that a
// known name, whose read saw the throttles, and an unknown one, whose read did
// not, get the same Retry-After.
func (s *Service) refuse(ctx context.Context, op string, ts []Throttle, over time.Duration) error {
	if s.limiter != nil && len(ts) > 0 {
		// A failed count still answers 401: a failure never turns into a success.
		if waits, reopen, err := s.limiter.AllowEach(ctx, ts, 1); err == nil && len(waits) > 0 {
			if w := slices.Max(waits); w > 0 {
				over = w
			}
			for i, t := range ts {
				s.noteOverRate(ctx, t.Key, reopen[i], waits[i] == 0)
			}
		}
	}
	if over > 0 {
		return throttled(op, over)
	}
	return errVerify(op)
}

// noteOverRate records in the process' set that key is over its rate for d
// (when d > 0) and, when this count used the rate up (counted: a refused
// failure changes nothing, and whoever counted the last one told already),
// tells the other processes through the store's ThrottleFeed, so that none
// needs to read the throttle to refuse the right secret too.
func (s *Service) noteOverRate(ctx context.Context, key string, d time.Duration, counted bool) {
	if d <= 0 {
		return
	}
	s.over.add(key, time.Now().Add(d))
	if feed, ok := s.store.(ThrottleFeed); ok && counted {
		feed.Throttled(ctx, key, d)
	}
}

func throttled(op string, retry time.Duration) error {
	return &Error{Kind: Unauthorized, Op: op, Msg: "too many failed attempts: try again later", RetryAfter: max(retry, time.Second)}
}

func errInactive(op string) error { return Errorf(Forbidden, op, "credential is not active") }

// verifyKey checks a key-auth keyId:keySecret.
func (s *Service) verifyKey(ctx context.Context, p Presented, v *verdict) (Principal, error) {
	const op = "core.verifyKey"
	if !ValidKeyID(p.ID) {
		return Principal{}, s.refuse(ctx, op, s.verifyThrottles(p.ClientAddr, ""), 0)
	}
	ts := s.verifyThrottles(p.ClientAddr, verifyThrottlePrefix+"key-auth:"+p.ID)
	rec, err := s.readKeyed(ctx, KeyAuth, p.ID, ts)
	if err != nil {
		return Principal{}, err
	}
	if rec.Credential == nil || rec.RetryAfter > 0 || !MatchesSHA256(rec.Credential.Secret, p.Secret) {
		return Principal{}, s.refuse(ctx, op, ts, rec.RetryAfter)
	}
	return s.credentialPrincipal(op, rec, v)
}

// readKeyed reads a keyed credential through the locator cache, with the
// throttles. The record's Credential is nil when the keyId is unknown. The app
// an app's credential belongs to is remembered too, and read with it
// (AuthQuery.ConsumerApp): one round trip rather than two.
func (s *Service) readKeyed(ctx context.Context, typ CredentialType, keyID string, ts []Throttle) (AuthRecord, error) {
	located := "c:" + string(typ) + ":" + keyID
	app, _ := s.locators.get("app "+located, time.Time{})
	rec, found, err := s.readLocated(ctx, located,
		func(uid string) AuthQuery {
			return AuthQuery{UserID: uid, Credential: &CredentialRef{typ, keyID}, ConsumerApp: app, Throttles: ts}
		},
		func() (string, error) { return s.store.LocateCredential(ctx, typ, keyID) },
		func(r AuthRecord) bool { return r.Credential != nil })
	if err != nil || !found {
		return AuthRecord{}, err
	}
	if c := rec.Credential; c.ConsumerKind == ConsumerApp && c.ConsumerID != app {
		s.locators.put("app "+located, c.ConsumerID, time.Time{})
	}
	return rec, nil
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
			if uid, err = s.locateAlike(ctx, query, locate); KindOf(err) == NotFound {
				return AuthRecord{}, false, nil
			} else if err != nil {
				return AuthRecord{}, false, err
			}
		}
		rec, err := s.readAuth(ctx, query(uid))
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

// locateAlike locates an owner that is not remembered. Meanwhile it reads what
// query names in the slot of a user that does not exist, and waits for that
// read too: a name that has no owner then costs the time of the read a
// remembered one costs (the two requests go to Redis at once), not just that
// of one GET of its claim, and the time does not tell an unknown name from a
// known one.
func (s *Service) locateAlike(ctx context.Context, query func(uid string) AuthQuery, locate func() (string, error)) (string, error) {
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = s.readAuth(ctx, query(s.nobody)) })
	uid, err := locate()
	wg.Wait()
	return uid, err
}

// credentialPrincipal checks the state and expiry of a credential whose
// secret was verified, and returns its principal. What it answers counts no
// failure: the cache may keep it, until the credential's expiry at most.
func (s *Service) credentialPrincipal(op string, rec AuthRecord, v *verdict) (Principal, error) {
	c := rec.Credential
	v.store, v.userID = true, rec.User.ID
	if c == nil || c.Expired(s.now()) {
		return Principal{}, errVerify(op)
	}
	v.bound(c.ExpiresAt)
	if !c.IsActive {
		return Principal{}, errInactive(op)
	}
	// principal checks the owners' flags, naming which one is off.
	return s.principal(op, rec, grant{kind: string(c.Type), consumerKind: c.ConsumerKind, consumerID: c.ConsumerID, scopes: c.Scopes})
}

// grant is what a verified credential or token grants, for principal.
type grant struct {
	kind         string // the Principal's Kind
	consumerKind ConsumerKind
	consumerID   string
	scopes       []ScopeGrant
	sessionID    string
}

// principal builds the verified principal, the only place a Principal is made:
// the consumer (an app's id and name for an app's) and the effective scopes
// (answer checks the required ones, on a cache hit too). A grant whose
// consumer is not the record's user or app is refused, so a success always
// names its consumer.
func (s *Service) principal(op string, rec AuthRecord, g grant) (Principal, error) {
	if rec.User.ID == "" || g.consumerID == "" {
		return Principal{}, errVerify(op)
	}
	if !rec.User.IsActive {
		return Principal{}, Errorf(Forbidden, op, "user is deactivated")
	}
	pr := Principal{Kind: g.kind, ConsumerID: rec.User.ID, Username: rec.User.Username, UserID: rec.User.ID, SessionID: g.sessionID, Scopes: []string{}, Groups: []string{}}
	switch g.consumerKind {
	case ConsumerUser, "":
		if g.consumerID != rec.User.ID {
			return Principal{}, errVerify(op)
		}
	case ConsumerApp:
		if rec.App == nil || rec.App.ID != g.consumerID {
			return Principal{}, errVerify(op)
		}
		if !rec.App.IsActive {
			return Principal{}, Errorf(Forbidden, op, "app is deactivated")
		}
		pr.ConsumerID, pr.Username, pr.AppID = rec.App.ID, rec.App.Name, rec.App.ID
	default:
		return Principal{}, errVerify(op)
	}
	for _, g := range g.scopes {
		if rec.Scopes[g.Name] == g.Reg {
			pr.Scopes = append(pr.Scopes, g.Name)
		}
	}
	// Clipped: a caller appending to a cached principal's scopes copies them.
	pr.Scopes = slices.Clip(pr.Scopes)
	if len(rec.User.Groups) > 0 {
		pr.Groups = slices.Clip(GroupNames(rec.User, rec.Groups))
	}
	pr.Tags = slices.Clip(EffectiveTags(rec.User, rec.Groups))
	if pr.Tags == nil {
		pr.Tags = []string{}
	}
	return pr, nil
}

// verifyBasic checks a basic-auth credential: users by username or id, apps by
// id or unique name. An unknown name costs a dummy hash, and a successful argon2
// comparison is remembered for a while under a keyed hash (the records are still
// read, so a deactivation or a new password takes effect at once). A throttled
// attempt costs no hash, known name or not.
func (s *Service) verifyBasic(ctx context.Context, p Presented, v *verdict) (Principal, error) {
	const op = "core.verifyBasic"
	if p.ID == "" {
		return Principal{}, s.refuse(ctx, op, s.verifyThrottles(p.ClientAddr, ""), 0)
	}
	ts := s.verifyThrottles(p.ClientAddr, verifyThrottlePrefix+"basic-auth:"+identifierKey(p.ID))
	rec, err := s.readBasic(ctx, p.ID, ts)
	if err != nil {
		return Principal{}, err
	}
	if rec.Credential == nil {
		// Unknown: only the count tells whether the name is throttled, so it
		// comes first; the hash is a known name's work when it is not.
		err := s.refuse(ctx, op, ts, 0)
		if RetryAfterOf(err) == 0 {
			s.verifyHasher.Dummy(ctx, p.Secret)
		}
		return Principal{}, err
	}
	if rec.RetryAfter > 0 {
		return Principal{}, s.refuse(ctx, op, ts, rec.RetryAfter)
	}
	ok, err := s.checkPassword(ctx, rec.Credential.Secret, p.Secret)
	if err != nil {
		return Principal{}, err
	}
	if !ok {
		return Principal{}, s.refuse(ctx, op, ts, 0)
	}
	if IsBcrypt(rec.Credential.Secret) {
		if prepared, err := ValidatePassword(p.Secret); err == nil {
			s.upgradeSecret(ctx, *rec.Credential, func() (string, error) { return s.verifyHasher.Hash(ctx, prepared) })
		}
	}
	return s.credentialPrincipal(op, rec, v)
}

// upgradeSecret replaces a credential's bcrypt hash (from an Express Gateway
// import), once its secret has just matched, with the stored form Gatehouse
// makes (argon2id for a password, SHA-256 for an oauth2 secret), unless the
// credential changed meanwhile. A failure is reported, never the caller's:
// the bcrypt hash keeps working.
func (s *Service) upgradeSecret(ctx context.Context, c Credential, stored func() (string, error)) {
	h, err := stored()
	if err == nil {
		_, err = s.store.UpdateCredential(ctx, c.Type, c.ID, func(cur *Credential) error {
			if cur.Secret == c.Secret {
				cur.Secret = h
			}
			return nil
		})
	}
	if err != nil {
		s.reportError(fmt.Errorf("rehashing the bcrypt secret of a %s credential: %w", c.Type, err))
	}
}

// readBasic finds the basic-auth credential of a Basic user part, read with the
// throttles: a UUID as a user id then an app id; anything else as a username,
// then a unique app name. The record's Credential is nil when there is none.
// A username whose owner is not remembered is located while the app names are
// read, so that an unknown name takes one round trip's time, as a remembered
// one does.
func (s *Service) readBasic(ctx context.Context, name string, ts []Throttle) (AuthRecord, error) {
	userCred := func(uid string) AuthQuery {
		return AuthQuery{UserID: uid, Credential: &CredentialRef{BasicAuth, uid}, Throttles: ts}
	}
	if IsUUID(name) {
		return s.readBasicByID(ctx, strings.ToLower(name), ts)
	}
	var (
		rec     AuthRecord
		found   bool
		err     error
		apps    []App
		appsErr error
	)
	readUser := func(key string) {
		rec, found, err = s.readLocated(ctx, "u:"+key, userCred,
			func() (string, error) { return s.store.LocateUser(ctx, NameUsername, name) },
			func(r AuthRecord) bool { return holdsName(r.User, NameUsername, name) })
	}
	readApps := func() { apps, appsErr = s.store.AppsByName(ctx, name) } // app names are rare at /verify: no cache
	key, kerr := UsernameKey(name)
	switch _, remembered := s.locators.get("u:"+key, time.Time{}); {
	case kerr != nil:
		readApps()
	case remembered:
		if readUser(key); err == nil && !found {
			readApps() // the name left its owner since
		}
	default:
		var wg sync.WaitGroup
		wg.Go(readApps)
		readUser(key)
		wg.Wait()
	}
	switch {
	case err != nil:
		return AuthRecord{}, err
	case found:
		return rec, nil
	case appsErr != nil || len(apps) != 1:
		return AuthRecord{}, appsErr
	}
	a := apps[0]
	rec, err = s.readAuth(ctx, AuthQuery{UserID: a.UserID, AppID: a.ID, Credential: &CredentialRef{BasicAuth, a.ID}, Throttles: ts})
	if KindOf(err) == NotFound {
		return AuthRecord{}, nil
	}
	return rec, err
}

// readBasicByID finds the basic-auth credential of a user id or an app id. An
// id remembered as a user's or an app's is read at once; another is read as a
// user's while it is looked up as an app's, so that an unknown id takes one
// round trip's time, as a remembered one does.
func (s *Service) readBasicByID(ctx context.Context, id string, ts []Throttle) (AuthRecord, error) {
	readUser := func() (AuthRecord, error) {
		rec, err := s.readAuth(ctx, AuthQuery{UserID: id, Credential: &CredentialRef{BasicAuth, id}, Throttles: ts})
		if err == nil {
			s.locators.put("i:"+id, id, time.Time{})
		}
		return rec, err
	}
	readApp := func() (AuthRecord, error) {
		rec, found, err := s.readLocated(ctx, "a:"+id,
			func(uid string) AuthQuery {
				return AuthQuery{UserID: uid, AppID: id, Credential: &CredentialRef{BasicAuth, id}, Throttles: ts}
			},
			func() (string, error) { return s.store.LocateApp(ctx, id) },
			func(r AuthRecord) bool { return r.App != nil && r.App.ID == id })
		if err != nil || !found {
			return AuthRecord{}, err
		}
		return rec, nil
	}
	if _, ok := s.locators.get("a:"+id, time.Time{}); ok {
		return readApp()
	}
	if _, ok := s.locators.get("i:"+id, time.Time{}); ok {
		rec, err := readUser()
		if KindOf(err) != NotFound {
			return rec, err
		}
		s.locators.del("i:" + id) // the user is gone: an id is never reused
	}
	var app AuthRecord
	var appErr error
	var wg sync.WaitGroup
	wg.Go(func() { app, appErr = readApp() })
	user, err := readUser()
	wg.Wait()
	switch {
	case err == nil:
		return user, nil
	case KindOf(err) != NotFound:
		return AuthRecord{}, err
	}
	return app, appErr
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
func (s *Service) verifyJWT(ctx context.Context, p Presented, v *verdict) (Principal, error) {
	const op = "core.verifyJWT"
	keyID := ""
	if unverified, _, err := jwt.NewParser().ParseUnverified(p.Secret, jwt.MapClaims{}); err == nil {
		keyID, _ = unverified.Header["kid"].(string)
		claims, _ := unverified.Claims.(jwt.MapClaims)
		for _, name := range []string{"sub", "iss"} {
			if keyID == "" {
				keyID, _ = claims[name].(string)
			}
		}
	}
	if !ValidKeyID(keyID) {
		return Principal{}, s.refuse(ctx, op, s.verifyThrottles(p.ClientAddr, ""), 0)
	}
	ts := s.verifyThrottles(p.ClientAddr, verifyThrottlePrefix+"jwt:"+keyID)
	rec, err := s.readKeyed(ctx, JWT, keyID, ts)
	if err != nil {
		return Principal{}, err
	}
	if rec.Credential == nil || rec.RetryAfter > 0 {
		return Principal{}, s.refuse(ctx, op, ts, rec.RetryAfter)
	}
	secret, err := s.JWTSecret(*rec.Credential)
	if err != nil {
		return Principal{}, err
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{algHS256}), jwt.WithLeeway(jwtLeeway), jwt.WithTimeFunc(s.now))
	tok, err := parser.Parse(p.Secret, func(*jwt.Token) (any, error) { return secret, nil })
	if err != nil {
		return Principal{}, s.refuse(ctx, op, ts, 0)
	}
	// The cache keeps the token's answer no longer than the token is valid.
	if exp, err := tok.Claims.GetExpirationTime(); err == nil && exp != nil {
		v.bound(exp.Add(jwtLeeway))
	}
	return s.credentialPrincipal(op, rec, v)
}
