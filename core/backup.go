package core

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// UserData is a user with everything it owns, as export writes it and import
// restores it: its record, its password and secret hashes, its apps, the
// credentials of the user and of its apps (stored forms only: hashes, jwt
// secrets sealed), optionally its live login sessions (hashes), and its
// integration accounts (tokens sealed).
type UserData struct {
	User         User
	PasswordHash string // an argon2id PHC string (or a bcrypt hash an import brought); "" when none
	SecretHash   string // "sha256:<hex>"; "" when none
	Apps         []App
	Credentials  []Credential // the user's and its apps', in Seq order
	Sessions     []Session    // login sessions (KindSession), when exported with them
	Linked       []LinkedAccount
}

// ReadUserData reads a user and everything it owns; with sessions, its live
// login sessions too. NotFound if there is no such user. Derived fields
// (OwnerActive) are left zero, so two reads of the same data compare equal.
func (s *Service) ReadUserData(ctx context.Context, id string, sessions bool) (UserData, error) {
	rec, err := s.store.ReadAuth(ctx, AuthQuery{UserID: id, Password: true, Secret: true})
	if err != nil {
		return UserData{}, err
	}
	d := UserData{User: rec.User, PasswordHash: rec.PasswordHash, SecretHash: rec.SecretHash}
	for start := int64(0); ; {
		page, err := s.store.ListApps(ctx, ListOptions{UserID: id, Start: start, Count: MaxPageSize})
		if err != nil {
			return UserData{}, err
		}
		for _, a := range page.Items {
			a.OwnerActive = false
			d.Apps = append(d.Apps, a)
		}
		if start = page.NextKey; start == 0 {
			break
		}
	}
	for start := int64(0); ; {
		page, err := s.store.ListCredentials(ctx, ListOptions{UserID: id, Start: start, Count: MaxPageSize})
		if err != nil {
			return UserData{}, err
		}
		for _, c := range page.Items {
			c.OwnerActive = false
			d.Credentials = append(d.Credentials, c)
		}
		if start = page.NextKey; start == 0 {
			break
		}
	}
	if sessions {
		if d.Sessions, err = s.store.Sessions(ctx, id); err != nil {
			return UserData{}, err
		}
		slices.SortFunc(d.Sessions, func(a, b Session) int { return strings.Compare(a.Hash, b.Hash) })
	}
	if d.Linked, err = s.store.LinkedAccounts(ctx, id); err != nil {
		return UserData{}, err
	}
	return d, nil
}

// validStoredSecret reports whether v is a stored form of a secret of that
// credential type: a SHA-256 ("sha256:<64 hex>"), an argon2id PHC string, a
// bcrypt hash (as Express Gateway keeps basic-auth passwords and oauth2
// secrets), or a sealed jwt secret ("aesgcm:...").
func validStoredSecret(typ CredentialType, v string) bool {
	switch typ {
	case KeyAuth:
		return validSHA256(v)
	case OAuth2:
		return validSHA256(v) || IsBcrypt(v)
	case BasicAuth:
		return validPHC(v) || IsBcrypt(v)
	case JWT:
		return strings.HasPrefix(v, "aesgcm:")
	}
	return false
}

// validSHA256 reports whether v is "sha256:" and 64 lower-case hex digits.
func validSHA256(v string) bool {
	h, ok := strings.CutPrefix(v, sha256Prefix)
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func validPHC(v string) bool {
	_, _, _, err := parsePHC(v)
	return err == nil
}

// checkUserData validates d as import needs it: every name and reference in
// the form the store holds, so a bad line writes nothing. Problems are field
// errors ("user.email", "apps.0.name", "credentials.1.secret").
func checkUserData(d UserData) error {
	const op = "core.RestoreUser"
	var c checker
	u := d.User
	if !IsUUID(u.ID) {
		c.fail("user.id", "must be a UUID")
	}
	if u.Number < 0 {
		c.fail("user.number", "must not be negative")
	}
	if err := ValidateUsername(u.Username); err != nil {
		c.fail("user.username", "%s", detailOf(err))
	}
	if u.Email != "" {
		if n, err := NormalizeEmail(u.Email); err != nil || n != u.Email {
			c.fail("user.email", "must be a normalised email address")
		}
	}
	if u.ExternalID != "" {
		if err := validateExternalID(u.ExternalID); err != nil {
			c.fail("user.externalId", "%s", detailOf(err))
		}
	}
	if u.CreatedAt.IsZero() {
		c.fail("user.createdAt", "is required")
	}
	checkTags(&c, "user.tags", u.Tags)
	for i, g := range u.Groups {
		if !IsUUID(g) {
			c.fail(fmt.Sprintf("user.groups.%d", i), "must be a group's id (a UUID)")
		}
	}
	for i, id := range u.Identities {
		if id.Provider == "" || strings.Contains(id.Provider, ":") || id.Subject == "" {
			c.fail(fmt.Sprintf("user.identities.%d", i), "needs a provider (without ':') and a subject")
		}
	}
	if d.PasswordHash != "" && !validPHC(d.PasswordHash) && !IsBcrypt(d.PasswordHash) {
		c.fail("password", "must be an argon2id PHC string or a bcrypt hash")
	}
	if d.SecretHash != "" && !validSHA256(d.SecretHash) {
		c.fail("secret", "must be sha256:<64 hex digits>")
	}
	apps := map[string]bool{}
	names := map[string]bool{}
	for i, a := range d.Apps {
		f := fmt.Sprintf("apps.%d.", i)
		switch {
		case !IsUUID(a.ID):
			c.fail(f+"id", "must be a UUID")
		case apps[a.ID]:
			c.fail(f+"id", "is listed twice")
		}
		if a.UserID != u.ID {
			c.fail(f+"userId", "must be the user's id")
		}
		if err := ValidateAppName(a.Name); err != nil {
			c.fail(f+"name", "%s", detailOf(err))
		} else if names[a.Name] {
			c.fail(f+"name", "is the name of another app of the user")
		}
		if a.Seq < 0 {
			c.fail(f+"seq", "must not be negative")
		}
		apps[a.ID], names[a.Name] = true, true
	}
	creds := map[string]bool{}
	for i, cr := range d.Credentials {
		f := fmt.Sprintf("credentials.%d.", i)
		if !cr.Type.Valid() {
			c.fail(f+"type", "must be one of key-auth, basic-auth, oauth2, jwt")
			continue
		}
		switch cr.ConsumerKind {
		case ConsumerUser:
			if cr.ConsumerID != u.ID {
				c.fail(f+"consumerId", "must be the user's id for a user's credential")
			}
		case ConsumerApp:
			if !apps[cr.ConsumerID] {
				c.fail(f+"consumerId", "must be one of the user's apps")
			}
		default:
			c.fail(f+"consumerKind", "must be user or app")
		}
		if cr.UserID != u.ID {
			c.fail(f+"userId", "must be the user's id")
		}
		if cr.Type.Keyed() && !ValidKeyID(cr.ID) {
			c.fail(f+"id", "must be 1 to 128 of A-Z a-z 0-9 . _ ~ -")
		}
		if !cr.Type.Keyed() && cr.ID != cr.ConsumerID {
			c.fail(f+"id", "must be the consumer's id for a %s credential", cr.Type)
		}
		if creds[string(cr.Type)+":"+cr.ID] {
			c.fail(f+"id", "is listed twice")
		}
		creds[string(cr.Type)+":"+cr.ID] = true
		if !validStoredSecret(cr.Type, cr.Secret) {
			c.fail(f+"secret", "is not a stored %s secret (a hash, or a sealed jwt secret)", cr.Type)
		}
		if cr.Type == JWT && cr.Algorithm != algHS256 {
			c.fail(f+"algorithm", "must be HS256")
		}
		if cr.Seq < 0 {
			c.fail(f+"seq", "must not be negative")
		}
	}
	for i, ss := range d.Sessions {
		f := fmt.Sprintf("sessions.%d.", i)
		if ss.Kind != KindSession || ss.UserID != u.ID || !validSHA256(ss.Hash) || ss.ExpiresAt.IsZero() {
			c.fail(f+"hash", "must be a login session of the user: sha256:<64 hex digits>, with an expiry")
		}
	}
	for i, a := range d.Linked {
		if a.Connector == "" || strings.Contains(a.Connector, ":") || a.UserIdentifier == "" {
			c.fail(fmt.Sprintf("integrations.%d", i), "needs a connector (without ':') and a userIdentifier")
		}
	}
	return c.err(op)
}

// IsBcrypt reports whether v looks like a bcrypt hash ("$2a$", "$2b$" or
// "$2y$"), the form Express Gateway keeps passwords and oauth2 secrets in.
func IsBcrypt(v string) bool {
	return len(v) == 60 && (strings.HasPrefix(v, "$2a$") || strings.HasPrefix(v, "$2b$") || strings.HasPrefix(v, "$2y$"))
}

// canonical is d in a form two equal UserData share: times in UTC, derived
// fields cleared, sessions ordered.
func canonical(d UserData) []byte {
	d.Apps = slices.Clone(d.Apps)
	for i := range d.Apps {
		d.Apps[i].OwnerActive = false
	}
	d.Credentials = slices.Clone(d.Credentials)
	for i := range d.Credentials {
		d.Credentials[i].OwnerActive = false
	}
	d.Sessions = slices.Clone(d.Sessions)
	slices.SortFunc(d.Sessions, func(a, b Session) int { return strings.Compare(a.Hash, b.Hash) })
	b, err := json.Marshal(d)
	if err != nil {
		return nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	b, _ = json.Marshal(utcTimes(v))
	return b
}

// utcTimes rewrites every RFC 3339 time string in v in UTC, so that a time
// read back from the store compares equal to the one written.
func utcTimes(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if x[k] = utcTimes(e); empty(x[k]) {
				delete(x, k) // absent, null, [] and {} are alike
			}
		}
	case []any:
		for i, e := range x {
			x[i] = utcTimes(e)
		}
	case string:
		return utcString(x)
	}
	return v
}

// utcString is s, or s in UTC when it is an RFC 3339 time.
func utcString(s string) string {
	if len(s) >= 20 {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC().Format(time.RFC3339Nano)
		}
	}
	return s
}

// grantRegistrations gives the grants that name no registration (from
// another system) the scope's current one; Invalid names each grant of an
// unregistered scope.
func (s *Service) grantRegistrations(ctx context.Context, d *UserData) error {
	var reg map[string]string
	var c checker
	for i, cr := range d.Credentials {
		for j, g := range cr.Scopes {
			if g.Reg != "" {
				continue
			}
			if reg == nil {
				var err error
				if reg, err = s.registry(ctx); err != nil {
					return err
				}
			}
			if r, ok := reg[g.Name]; ok {
				d.Credentials[i].Scopes[j].Reg = r
			} else {
				c.fail(fmt.Sprintf("credentials.%d.scopes.%d", i, j), "scope %q is not registered", g.Name)
			}
		}
	}
	return c.err("core.RestoreUser")
}

// adopt copies into d what an import from another system leaves for the store
// to choose (numbers, sequence numbers) from have, the data already stored,
// and have's sealed jwt secrets where they seal the same secret (sealing is
// randomised) or replace a bcrypt hash since it matched, so that importing
// the same data again compares equal.
func (s *Service) adopt(d *UserData, have UserData) {
	if d.User.Number == 0 {
		d.User.Number = have.User.Number
	}
	for i, a := range d.Apps {
		if j := slices.IndexFunc(have.Apps, func(h App) bool { return h.ID == a.ID }); j >= 0 && a.Seq == 0 {
			d.Apps[i].Seq = have.Apps[j].Seq
		}
	}
	for i, c := range d.Credentials {
		j := slices.IndexFunc(have.Credentials, func(h Credential) bool { return h.Type == c.Type && h.ID == c.ID })
		if j < 0 {
			continue
		}
		h := have.Credentials[j]
		if c.Seq == 0 {
			d.Credentials[i].Seq = h.Seq
		}
		if IsBcrypt(c.Secret) && !IsBcrypt(h.Secret) {
			d.Credentials[i].Secret = h.Secret // upgraded at its first match (upgradeSecret)
		}
		if c.Type == JWT && c.Secret != h.Secret && s.keyring != nil {
			a, errA := s.JWTSecret(c)
			b, errB := s.JWTSecret(h)
			if errA == nil && errB == nil && string(a) == string(b) {
				d.Credentials[i].Secret = h.Secret
			}
		}
	}
}

// empty reports whether a decoded JSON value is null, [] or {}.
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// RestoreUser writes d as it is: ids, numbers, hashes and timestamps kept (a
// zero Number or Seq is assigned, as a create assigns it; a scope grant
// without a registration gets the scope's current one). It is idempotent:
// when the user exists and holds exactly d, nothing is written and created is
// false; when it exists with other data, Conflict. Invalid names each bad field
// and writes nothing; a store refusal (a name another user holds: Conflict)
// removes whatever of d was written, so a line is restored whole or not at all.
func (s *Service) RestoreUser(ctx context.Context, d UserData) (created bool, err error) {
	const op = "core.RestoreUser"
	if err := s.grantRegistrations(ctx, &d); err != nil {
		return false, err
	}
	if err := checkUserData(d); err != nil {
		return false, err
	}
	switch _, err := s.store.GetUser(ctx, d.User.ID); KindOf(err) {
	case Other:
		have, err := s.ReadUserData(ctx, d.User.ID, len(d.Sessions) > 0)
		if err != nil {
			return false, err
		}
		s.adopt(&d, have)
		if string(canonical(have)) != string(canonical(d)) {
			return false, Errorf(Conflict, op, "user %s exists with other data", d.User.ID)
		}
		return false, nil
	case NotFound:
	default:
		return false, err
	}
	u := d.User
	if err := s.store.CreateUser(ctx, &u); err != nil {
		return false, err
	}
	if err := s.restoreOwned(ctx, d); err != nil {
		// Best effort: the user and all it owns go; a leftover is Doctor's.
		_ = s.store.DeleteUser(context.WithoutCancel(ctx), u.ID)
		return false, err
	}
	return true, nil
}

// restoreOwned writes what a restored user owns, the user being stored.
func (s *Service) restoreOwned(ctx context.Context, d UserData) error {
	uid := d.User.ID
	if d.PasswordHash != "" {
		if err := s.store.SetPassword(ctx, uid, d.PasswordHash); err != nil {
			return err
		}
	}
	if d.SecretHash != "" {
		if err := s.store.SetUserSecret(ctx, uid, d.SecretHash); err != nil {
			return err
		}
	}
	for _, a := range d.Apps {
		if err := s.store.CreateApp(ctx, &a); err != nil {
			return err
		}
	}
	for _, c := range d.Credentials {
		if err := s.store.CreateCredential(ctx, &c); err != nil {
			return err
		}
	}
	now := s.now()
	for _, ss := range d.Sessions {
		if !ss.ExpiresAt.After(now) {
			continue // expired since the export
		}
		if err := s.store.CreateSession(ctx, ss, 0); err != nil {
			return err
		}
	}
	var selected []LinkedAccount
	for _, a := range d.Linked {
		if _, err := s.store.PutLinkedAccount(ctx, uid, a); err != nil {
			return err
		}
		if a.Selected {
			selected = append(selected, a)
		}
	}
	for _, a := range selected {
		if err := s.store.SelectLinkedAccount(ctx, uid, a.Connector, a.UserIdentifier); err != nil {
			return err
		}
	}
	return nil
}

// RestoreScope registers a scope with its registration id, so restored
// credentials' grants stay effective (a scope without one, from another
// system, is registered anew unless it is registered). Idempotent: the same registration
// already there is not an error (created false); another one is Conflict.
func (s *Service) RestoreScope(ctx context.Context, sc Scope) (created bool, err error) {
	const op = "core.RestoreScope"
	var c checker
	if err := ValidateScopeName(sc.Name); err != nil {
		c.fail("name", "%s", detailOf(err))
	}
	if err := c.err(op); err != nil {
		return false, err
	}
	if sc.Reg == "" { // from another system: registered anew unless it is there
		if _, err := s.GetScope(ctx, sc.Name); KindOf(err) != NotFound {
			return false, err
		}
		sc.Reg = NewSecret("", 9)
		if sc.CreatedAt.IsZero() {
			sc.CreatedAt = s.Now()
		}
	}
	err = s.store.CreateScopes(ctx, []Scope{sc})
	if KindOf(err) != Conflict {
		return err == nil, err
	}
	have, gerr := s.GetScope(ctx, sc.Name)
	if gerr == nil && have.Reg == sc.Reg {
		return false, nil
	}
	return false, Errorf(Conflict, op, "scope %q is registered with another registration", sc.Name)
}

// RestoreGroup stores a group with its id, number and tags. Idempotent: the
// same group already there is not an error (created false); a group of that
// id with other data, or another group of that name, is Conflict.
func (s *Service) RestoreGroup(ctx context.Context, g Group) (created bool, err error) {
	const op = "core.RestoreGroup"
	var c checker
	if !IsUUID(g.ID) {
		c.fail("id", "must be a UUID")
	}
	if g.Number < 0 {
		c.fail("number", "must not be negative")
	}
	if err := ValidateGroupName(g.Name); err != nil {
		c.fail("name", "%s", detailOf(err))
	}
	g.Tags = checkTags(&c, "tags", g.Tags)
	if err := c.err(op); err != nil {
		return false, err
	}
	have, err := s.store.GetGroup(ctx, g.ID)
	switch KindOf(err) {
	case Other:
		if have.Name != g.Name || !slices.Equal(have.Tags, g.Tags) || (g.Number != 0 && have.Number != g.Number) {
			return false, Errorf(Conflict, op, "group %s exists with other data", g.ID)
		}
		return false, nil
	case NotFound:
		return true, s.store.CreateGroup(ctx, &g)
	default:
		return false, err
	}
}

// RestoreAdminKey stores an admin key (its hash, never a key) with its id and
// last use. Idempotent: a key of that hash and id already there is not an
// error; a name or hash held by another key is Conflict.
func (s *Service) RestoreAdminKey(ctx context.Context, k AdminKey) (created bool, err error) {
	const op = "core.RestoreAdminKey"
	var c checker
	if k.ID == "" {
		c.fail("id", "is required")
	}
	if err := ValidateAppName(k.Name); err != nil {
		c.fail("name", "%s", detailOf(err))
	}
	if !k.Scope.Valid() {
		c.fail("scope", "must be one of admin, read, publicala, gaio, qloud")
	}
	if !validSHA256(k.Hash) {
		c.fail("hash", "must be sha256:<64 hex digits>")
	}
	if err := c.err(op); err != nil {
		return false, err
	}
	if have, err := s.store.AdminKeyByHash(ctx, k.Hash); err == nil {
		if have.ID == k.ID && have.Name == k.Name {
			return false, nil
		}
		return false, Errorf(Conflict, op, "admin key %q: its hash is another key's", k.Name)
	} else if KindOf(err) != NotFound {
		return false, err
	}
	used := k.LastUsedAt
	k.LastUsedAt = time.Time{}
	if err := s.store.CreateAdminKey(ctx, k); err != nil {
		return false, err
	}
	if !used.IsZero() {
		if err := s.store.TouchAdminKey(ctx, k.ID, used); err != nil {
			return true, err
		}
	}
	return true, nil
}

// RestoreClient stores a client (tenant) with its id, Seq and keys (hashes).
// Idempotent: a client of that id already there is not an error (keys it
// lacks are added); a name held by another client is Conflict.
func (s *Service) RestoreClient(ctx context.Context, cl Client, keys []ClientKey) (created bool, err error) {
	const op = "core.RestoreClient"
	var c checker
	if !IsUUID(cl.ID) {
		c.fail("id", "must be a UUID")
	}
	if err := validateLabel(op, "name", cl.Name, ""); err != nil {
		c.fail("name", "%s", detailOf(err))
	}
	for i, k := range keys {
		if k.ID == "" || k.ClientID != cl.ID || !validSHA256(k.Hash) {
			c.fail(fmt.Sprintf("keys.%d", i), "needs an id, the client's id and a sha256:<64 hex digits> hash")
		}
	}
	if err := c.err(op); err != nil {
		return false, err
	}
	have, err := s.store.GetClient(ctx, cl.ID)
	switch KindOf(err) {
	case Other:
		if have.Name != cl.Name {
			return false, Errorf(Conflict, op, "client %s exists with another name", cl.ID)
		}
	case NotFound:
		if err := s.store.CreateClient(ctx, &cl); err != nil {
			return false, err
		}
		created = true
	default:
		return false, err
	}
	held, err := s.store.ClientKeys(ctx, cl.ID)
	if err != nil {
		return created, err
	}
	for _, k := range keys {
		if slices.ContainsFunc(held, func(h ClientKey) bool { return h.ID == k.ID }) {
			continue
		}
		if err := s.store.CreateClientKey(ctx, k); err != nil {
			return created, err
		}
	}
	return created, nil
}

// StoredSecret returns the stored form of a credential secret that an import
// from another system brings in clear: a key-auth or oauth2 secret as its
// SHA-256, a jwt secret sealed by the keyring (Unavailable without one), a
// basic-auth password as argon2id. The secret is never kept in clear.
func (s *Service) StoredSecret(ctx context.Context, typ CredentialType, keyID, secret string) (string, error) {
	const op = "core.StoredSecret"
	switch typ {
	case KeyAuth, OAuth2:
		return HashSHA256(secret), nil
	case JWT:
		if s.keyring == nil {
			return "", Errorf(Unavailable, op, "encryption key not configured: set GATEHOUSE_ENCRYPTION_KEYS to import jwt credentials")
		}
		return s.keyring.Encrypt([]byte(secret), jwtAAD(keyID))
	case BasicAuth:
		prepared, err := ValidatePassword(secret)
		if err != nil {
			return "", err
		}
		return s.hasher.Hash(ctx, prepared)
	}
	return "", Errorf(Invalid, op, "unknown credential type %q", typ)
}
