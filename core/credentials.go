package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Secret sizes and rules.
const (
	minChosenSecret = 32 // characters of a client-chosen key or oauth2 secret; bytes of a jwt key secret
	keyIDBytes      = 16 // a generated keyId: 128 random bits
	secretBytes     = 32 // a generated key, jwt or oauth2 secret: 256 random bits
	passwordBytes   = 24 // a generated basic-auth password: 192 random bits
	algHS256        = "HS256"
)

// CredentialRequest is the body of POST /credentials.
type CredentialRequest struct {
	ConsumerID string // user id, username, app id or app name
	Type       string
	Credential Fields // the type's built-in fields and the credential model's properties
}

// NewCredential is a credential just created, with its secret in plain text: shown
// once and never again.
type NewCredential struct {
	Credential
	KeySecret string // key-auth and jwt
	Password  string // basic-auth, when generated
	Secret    string // oauth2, when generated
}

// CreateCredential creates a credential for a consumer. key-auth and jwt: many
// per consumer, identified by a keyId (generated, or chosen and then unique per type: Conflict, never an overwrite); the key secret
// is generated or chosen (at least 32 characters; 32 bytes for jwt). basic-auth and
// oauth2: one active per consumer, identified by the consumer's id; the password or
// secret is generated unless given. Scopes must be registered; expiresAt is an
// RFC 3339 time in the future. Nothing is stored when validation fails.
func (s *Service) CreateCredential(ctx context.Context, req CredentialRequest) (NewCredential, error) {
	const op = "core.CreateCredential"
	var c checker
	typ := CredentialType(req.Type)
	switch {
	case req.Type == "":
		c.fail("type", "is required")
	case !typ.Valid():
		c.fail("type", "must be one of key-auth, basic-auth, oauth2, jwt")
	}
	if req.ConsumerID == "" {
		c.fail("consumerId", "is required")
	}
	if err := c.err(op); err != nil {
		return NewCredential{}, err
	}
	if typ == JWT && s.keyring == nil {
		return NewCredential{}, Errorf(Unavailable, op, "encryption key not configured: set GATEHOUSE_ENCRYPTION_KEYS to create jwt credentials")
	}

	now := s.Now()
	nc := NewCredential{Credential: Credential{Type: typ, IsActive: true, CreatedAt: now, UpdatedAt: now}}
	f := cloneFields(req.Credential)
	cc := checker{prefix: "credential."}
	for _, name := range []string{"id", "consumerId", "type", "createdAt", "updatedAt"} {
		cc.readOnly(f, name, nil, false)
	}
	if v, ok := cc.boolean(f, "isActive"); ok {
		nc.IsActive = v
	}
	scopes, _ := cc.stringList(f, "scopes")
	if t, present, null := cc.timestamp(f, "expiresAt"); present && !null {
		if !t.After(now) {
			cc.fail("expiresAt", "must be in the future")
		}
		nc.ExpiresAt = t
	}
	var chosen string // a client-chosen secret
	switch typ {
	case KeyAuth, JWT:
		if id, present, _ := cc.str(f, "keyId"); present {
			if !ValidKeyID(id) {
				cc.fail("keyId", "must be 1 to 128 of A-Z a-z 0-9 . _ ~ -")
			}
			nc.ID = id
		}
		if sec, present, _ := cc.str(f, "keySecret"); present {
			short, unit := len([]rune(sec)) < minChosenSecret, "characters"
			if typ == JWT {
				short, unit = len(sec) < minChosenSecret, "bytes"
			}
			if short {
				cc.fail("keySecret", "must be at least %d %s", minChosenSecret, unit)
			}
			chosen = sec
		}
		if typ == JWT {
			nc.Algorithm = algHS256
			if alg, present, _ := cc.str(f, "algorithm"); present && alg != algHS256 {
				cc.fail("algorithm", "must be HS256")
			}
		}
	case BasicAuth:
		if pw, present, _ := cc.str(f, "password"); present {
			prepared, err := ValidatePassword(pw)
			cc.addErr("password", err)
			chosen = prepared
		}
	case OAuth2:
		if sec, present, _ := cc.str(f, "secret"); present {
			if len([]rune(sec)) < minChosenSecret {
				cc.fail("secret", "must be at least %d characters", minChosenSecret)
			}
			chosen = sec
		}
	}
	if !typ.Keyed() {
		if auto, present := cc.boolean(f, "autoGeneratePassword"); present && !auto && chosen == "" {
			field := "password"
			if typ == OAuth2 {
				field = "secret"
			}
			cc.fail(field, "is required when autoGeneratePassword is false")
		}
	}
	nc.Props = map[string]any(f)
	if s.models != nil {
		if m := s.models.Credentials[typ]; m != nil {
			m.ApplyDefaults(nc.Props)
			cc.model(m, nc.Props, MaxString(DefaultMaxString))
		}
	}
	c.errs = append(c.errs, cc.errs...)

	// References: the consumer and the scopes.
	con, err := s.resolveConsumer(ctx, req.ConsumerID)
	switch KindOf(err) {
	case Other:
		nc.ConsumerKind, nc.UserID, nc.ConsumerID, nc.OwnerActive = con.kind, con.userID, con.id, con.active
	case NotFound:
		c.fail("consumerId", "no user or app %q", req.ConsumerID)
	default:
		return NewCredential{}, err
	}
	if len(scopes) > 0 {
		if nc.Scopes, err = s.scopeGrants(ctx, &c, "credential.scopes", scopes); err != nil {
			return NewCredential{}, err
		}
	}
	if err := c.err(op); err != nil {
		return NewCredential{}, err
	}

	// Secrets: generated unless chosen; returned once, stored in their own form.
	switch typ {
	case KeyAuth, JWT:
		if nc.ID == "" {
			nc.ID = NewSecret("", keyIDBytes)
		}
		nc.KeySecret = chosen
		if chosen == "" {
			nc.KeySecret = NewSecret("", secretBytes)
		}
		if typ == KeyAuth {
			nc.Credential.Secret = HashSHA256(nc.KeySecret)
		} else if nc.Credential.Secret, err = s.keyring.Encrypt([]byte(nc.KeySecret), jwtAAD(nc.ID)); err != nil {
			return NewCredential{}, err
		}
	case BasicAuth:
		nc.ID = nc.ConsumerID
		pw := chosen
		if pw == "" {
			pw = NewSecret("", passwordBytes)
			nc.Password = pw
		}
		if nc.Credential.Secret, err = s.hasher.Hash(ctx, pw); err != nil {
			return NewCredential{}, err
		}
	case OAuth2:
		nc.ID = nc.ConsumerID
		sec := chosen
		if sec == "" {
			sec = NewSecret("", secretBytes)
			nc.Secret = sec
		}
		nc.Credential.Secret = HashSHA256(sec)
	}
	if err := s.store.CreateCredential(ctx, &nc.Credential); err != nil {
		return NewCredential{}, err
	}
	return nc, nil
}

// jwtAAD binds a jwt key secret's ciphertext to its keyId, so a blob copied onto
// another credential does not decrypt.
func jwtAAD(keyID string) []byte { return []byte("jwt:" + keyID) }

// JWTSecret returns a jwt credential's key secret, decrypted, for HMAC.
func (s *Service) JWTSecret(c Credential) ([]byte, error) {
	return s.keyring.Decrypt(c.Secret, jwtAAD(c.ID))
}

// consumer is a resolved credential consumer.
type consumer struct {
	kind   ConsumerKind
	userID string // the user who owns it
	id     string // the user's or the app's id
	active bool   // its effective state when resolved
}

// resolveConsumer finds a credential's consumer: user id, username, app
// id, app name, in that order.
func (s *Service) resolveConsumer(ctx context.Context, ref string) (consumer, error) {
	if u, err := s.ResolveUser(ctx, ref); err == nil {
		return consumer{ConsumerUser, u.ID, u.ID, u.IsActive}, nil
	} else if KindOf(err) != NotFound {
		return consumer{}, err
	}
	a, err := s.ResolveApp(ctx, ref)
	if err != nil {
		return consumer{}, err
	}
	return consumer{ConsumerApp, a.UserID, a.ID, a.Active()}, nil
}

// grants turns scope names into grants of their current registrations (duplicates
// dropped) and reports, by index, the names that are not valid scope names or
// not registered, with why.
func (s *Service) grants(ctx context.Context, names []string) (out []ScopeGrant, bad map[int]string, err error) {
	bad = map[int]string{}
	for i, name := range names {
		if err := ValidateScopeName(name); err != nil {
			bad[i] = detailOf(err) // never echoes the name: it may be anything
		}
	}
	reg, err := s.registry(ctx)
	if err != nil {
		return nil, nil, err
	}
	for i, name := range names {
		r, ok := reg[name]
		switch {
		case bad[i] != "":
		case !ok:
			bad[i] = fmt.Sprintf("scope %q is not registered", name)
		case !slices.ContainsFunc(out, func(g ScopeGrant) bool { return g.Name == name }):
			out = append(out, ScopeGrant{Name: name, Reg: r})
		}
	}
	return out, bad, nil
}

// scopeGrants is grants for a list field: Invalid naming each unregistered scope
// as field.N.
func (s *Service) scopeGrants(ctx context.Context, c *checker, field string, names []string) ([]ScopeGrant, error) {
	out, bad, err := s.grants(ctx, names)
	for i := range names {
		if d, ok := bad[i]; ok {
			c.fail(field+"."+strconv.Itoa(i), "%s", d)
		}
	}
	return out, err
}

// registry returns the scope registry as name → registration.
func (s *Service) registry(ctx context.Context) (map[string]string, error) {
	scopes, err := s.store.Scopes(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(scopes))
	for _, sc := range scopes {
		m[sc.Name] = sc.Reg
	}
	return m, nil
}

// effective keeps only the grants whose registration is still in the registry: a
// deleted scope stops being effective everywhere without a rewrite.
func effective(c *Credential, reg map[string]string) {
	kept := c.Scopes[:0:0]
	for _, g := range c.Scopes {
		if reg[g.Name] == g.Reg {
			kept = append(kept, g)
		}
	}
	c.Scopes = kept
}

// filterScopes applies effective to every credential.
func (s *Service) filterScopes(ctx context.Context, creds []Credential) error {
	reg, err := s.registry(ctx)
	if err != nil {
		return err
	}
	for i := range creds {
		effective(&creds[i], reg)
	}
	return nil
}

// credentialID resolves the id of a credential reference: a keyId for keyed types,
// and for basic-auth and oauth2 the consumer's id, username or app name.
func (s *Service) credentialID(ctx context.Context, typ CredentialType, ref string) (string, error) {
	if !typ.Valid() {
		// Path values of credential routes are never echoed: a mistyped
		// request may carry KEYID:SECRET where an id was expected.
		return "", Errorf(NotFound, "core.credentialID", "unknown credential type")
	}
	if typ.Keyed() {
		return ref, nil
	}
	con, err := s.resolveConsumer(ctx, ref)
	if KindOf(err) == NotFound {
		return "", Errorf(NotFound, "core.credentialID", "%s credential not found", typ)
	}
	return con.id, err
}

// GetCredential returns a credential with its effective state and scopes.
func (s *Service) GetCredential(ctx context.Context, typ CredentialType, ref string) (Credential, error) {
	id, err := s.credentialID(ctx, typ, ref)
	if err != nil {
		return Credential{}, err
	}
	c, err := s.store.GetCredential(ctx, typ, id)
	if err != nil {
		return Credential{}, err
	}
	creds := []Credential{c}
	if err := s.filterScopes(ctx, creds); err != nil {
		return Credential{}, err
	}
	return creds[0], nil
}

// updateCredential applies fn to a credential and returns it with effective
// scopes. A precondition is checked on the stored credential inside the write.
func (s *Service) updateCredential(ctx context.Context, op string, typ CredentialType, ref string, pre []Precondition, fn func(*Credential) error) (Credential, error) {
	id, err := s.credentialID(ctx, typ, ref)
	if err != nil {
		return Credential{}, err
	}
	if p := precondition(pre); !p.IsZero() {
		derive, err := s.credentialState(ctx, typ, id)
		if err != nil {
			return Credential{}, err
		}
		check := checkVersion(p, op, "credential", derive)[0]
		change := fn
		fn = func(c *Credential) error {
			if err := check(*c); err != nil {
				return err
			}
			return change(c)
		}
	}
	c, err := s.store.UpdateCredential(ctx, typ, id, fn)
	if err != nil {
		return Credential{}, err
	}
	creds := []Credential{c}
	return creds[0], s.filterScopes(ctx, creds)
}

// credentialState returns what a credential's version covers besides what its
// store's write reads: its owners' state and the scope registry, as of now.
// The credential's own state is checked atomically with the write; the
// others, which the write does not change, as of this read.
func (s *Service) credentialState(ctx context.Context, typ CredentialType, id string) (func(*Credential), error) {
	cur, err := s.store.GetCredential(ctx, typ, id)
	if err != nil {
		return nil, err
	}
	reg, err := s.registry(ctx)
	if err != nil {
		return nil, err
	}
	return func(c *Credential) {
		c.OwnerActive = cur.OwnerActive
		effective(c, reg)
	}, nil
}

// SetCredentialStatus sets a credential's own active flag and reports whether
// it changed. Each of the credential writes below takes a precondition.
func (s *Service) SetCredentialStatus(ctx context.Context, typ CredentialType, ref string, active bool, pre ...Precondition) (changed bool, err error) {
	_, err = s.updateCredential(ctx, "core.SetCredentialStatus", typ, ref, pre, func(c *Credential) error {
		if c.IsActive == active {
			return errUnchanged
		}
		c.IsActive = active
		c.UpdatedAt = s.Now()
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	return err == nil, err
}

// SetCredentialScopes replaces a credential's scopes; each must be registered.
func (s *Service) SetCredentialScopes(ctx context.Context, typ CredentialType, ref string, scopes []string, pre ...Precondition) (Credential, error) {
	var c checker
	grants, err := s.scopeGrants(ctx, &c, "scopes", scopes)
	if err == nil {
		err = c.err("core.SetCredentialScopes")
	}
	if err != nil {
		return Credential{}, err
	}
	return s.updateCredential(ctx, "core.SetCredentialScopes", typ, ref, pre, func(c *Credential) error {
		c.Scopes = grants
		c.UpdatedAt = s.Now()
		return nil
	})
}

// AddCredentialScope grants a registered scope to a credential.
func (s *Service) AddCredentialScope(ctx context.Context, typ CredentialType, ref, scope string, pre ...Precondition) (Credential, error) {
	grants, bad, err := s.grants(ctx, []string{scope})
	if err != nil {
		return Credential{}, err
	}
	if d, ok := bad[0]; ok {
		return Credential{}, InvalidFields("core.AddCredentialScope", FieldError{Field: "scope", Detail: d})
	}
	return s.updateCredential(ctx, "core.AddCredentialScope", typ, ref, pre, func(c *Credential) error {
		c.Scopes = slices.DeleteFunc(c.Scopes, func(g ScopeGrant) bool { return g.Name == scope })
		c.Scopes = append(c.Scopes, grants[0])
		c.UpdatedAt = s.Now()
		return nil
	})
}

// RemoveCredentialScope takes a scope off a credential; removing one it does not
// hold is not an error.
func (s *Service) RemoveCredentialScope(ctx context.Context, typ CredentialType, ref, scope string, pre ...Precondition) (Credential, error) {
	return s.updateCredential(ctx, "core.RemoveCredentialScope", typ, ref, pre, func(c *Credential) error {
		c.Scopes = slices.DeleteFunc(c.Scopes, func(g ScopeGrant) bool { return g.Name == scope })
		c.UpdatedAt = s.Now()
		return nil
	})
}

// DeleteCredential deletes a credential and frees its keyId. A precondition
// is checked on the stored credential inside the delete.
func (s *Service) DeleteCredential(ctx context.Context, typ CredentialType, ref string, pre ...Precondition) error {
	id, err := s.credentialID(ctx, typ, ref)
	if err != nil {
		return err
	}
	p := precondition(pre)
	if p.IsZero() {
		return s.store.DeleteCredential(ctx, typ, id)
	}
	derive, err := s.credentialState(ctx, typ, id)
	if err != nil {
		return err
	}
	return s.store.DeleteCredential(ctx, typ, id, checkVersion(p, "core.DeleteCredential", "credential", derive)...)
}

// ConsumerCredentials returns every credential of one consumer (user id, username,
// app id or app name).
func (s *Service) ConsumerCredentials(ctx context.Context, ref string) ([]Credential, error) {
	con, err := s.resolveConsumer(ctx, ref)
	if KindOf(err) == NotFound {
		return nil, Errorf(NotFound, "core.ConsumerCredentials", "no user or app of that id or name")
	}
	if err != nil {
		return nil, err
	}
	creds, err := s.store.ConsumerCredentials(ctx, con.id)
	if err != nil {
		return nil, err
	}
	return creds, s.filterScopes(ctx, creds)
}

// ListCredentials returns one page of all credentials in creation order.
func (s *Service) ListCredentials(ctx context.Context, opt ListOptions) (Page[Credential], error) {
	if err := checkList("core.ListCredentials", &opt); err != nil {
		return Page[Credential]{}, err
	}
	if opt.UserID != "" {
		u, err := s.ResolveUser(ctx, opt.UserID)
		if err != nil {
			return Page[Credential]{}, err
		}
		opt.UserID = u.ID
	}
	p, err := s.store.ListCredentials(ctx, opt)
	if err != nil {
		return p, err
	}
	return p, s.filterScopes(ctx, p.Items)
}
