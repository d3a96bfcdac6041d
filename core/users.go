package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
)

// Limits of user built-ins and of strings the model leaves unbounded.
const (
	maxSessionsLimit = 999999
	maxExternalIDLen = 256
	// DefaultMaxString bounds, in characters, each string property whose
	// schema sets no maxLength (the admin body limit alone would allow 1 MiB).
	DefaultMaxString = 1024
	// SignupMaxString is the tighter bound of the unauthenticated sign-up.
	SignupMaxString = 256
)

// UserPolicy says what one surface may write of a user, so that every surface
// (the native admin API, public sign-up, each dialect and redirect provider)
// goes through one create and one update path with its own rules.
type UserPolicy struct {
	// Writable lists the fields the surface may write, built-ins and model
	// properties alike; any other field is an unknown property. Nil: the
	// native admin API's fields (id, number and the timestamps read-only,
	// isActive on create, the built-ins emailVerified, sessionsLimit and
	// externalId, and the model's properties, the model deciding on unknown ones).
	Writable []string
	// Require lists the fields the surface requires on create besides the model's.
	Require []string
	// ModelRequired makes the user model's required list bind on create.
	ModelRequired bool
	// Username is where a new user's username comes from.
	Username UsernameSource
	// MaxString bounds strings the model leaves unbounded; 0 means DefaultMaxString.
	MaxString int
	// Password makes a "password" field required on create: checked with the
	// other fields (RFC 8265 OpaqueString, 8–256 characters), hashed with
	// argon2id and stored with the user, so it can log in with it.
	Password bool
}

// UsernameSource says how a new user gets its username.
type UsernameSource uint8

// The username sources.
const (
	UsernameField UsernameSource = iota // the "username" field; an update ignores it
	UsernameEmail                       // the email, as given (sign-ups)
)

// NativeUsers is the native admin API's policy (Express Gateway's rules): the
// model's required list binds, username is required and never changes.
var NativeUsers = UserPolicy{ModelRequired: true, Require: []string{"username"}, Username: UsernameField}

// readOnlyUserFields are never written by a client: accepted on update only
// when equal to the stored value, so GET → edit → PUT works.
var readOnlyUserFields = []string{"id", "number", "createdAt", "updatedAt"}

// IsAttribute reports whether a user property is a dialect's attribute:
// its name holds a colon ("publicala:admin"). A dialect keeps there what its
// clients write that the user model does not describe; the model does not
// validate attributes, every surface shows them, and only a policy that lists
// one in Writable changes it (to others it is read-only: accepted when
// unchanged, so GET → edit → PUT works).
func IsAttribute(name string) bool { return strings.Contains(name, ":") }

// keepAttributes takes from f the attributes pol does not own: accepted when
// equal to the stored value, refused otherwise.
func (p UserPolicy) keepAttributes(c *checker, f Fields, stored map[string]any) {
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if !IsAttribute(k) || (p.Writable != nil && p.writable(k)) {
			continue
		}
		v, _ := take(f, k)
		old, exists := stored[k]
		a, aerr := json.Marshal(v)
		b, berr := json.Marshal(old)
		if !exists || aerr != nil || berr != nil || !bytes.Equal(a, b) {
			c.fail(k, "is kept by another surface: read-only here")
		}
	}
}

// writable reports whether the policy lets its surface write field.
func (p UserPolicy) writable(field string) bool {
	return p.Writable == nil || slices.Contains(p.Writable, field)
}

// refuseUnwritable takes every field of f the policy does not allow, as an
// unknown property.
func (p UserPolicy) refuseUnwritable(c *checker, f Fields) {
	if p.Writable == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if !p.writable(k) {
			c.fail(k, "unknown property")
			delete(f, k)
		}
	}
}

func (p UserPolicy) modelOptions(update bool) []ValidateOption {
	max := p.MaxString
	if max == 0 {
		max = DefaultMaxString
	}
	opts := []ValidateOption{MaxString(max)}
	if update || !p.ModelRequired {
		opts = append(opts, SkipRequired())
	}
	return opts
}

// CreateUser creates a user from a surface's fields under its policy. Invalid
// lists every field at fault; Conflict names a taken username, email or
// externalId. Nothing is stored when validation fails.
//
// A policy listing "groups" among its writable fields takes group refs
// (ResolveGroup's) there: NotFound names one that does not exist. With
// pol.Password the user's password is stored after the user; if that fails,
// the user is deleted again and the error returned.
func (s *Service) CreateUser(ctx context.Context, in Fields, pol UserPolicy) (User, error) {
	const op = "core.CreateUser"
	var c, pc checker
	f := in
	var groups []string
	var password string
	if pol.Password || slices.Contains(pol.Writable, "groups") {
		f = cloneFields(in)
		groups, _ = pc.stringList(f, "groups")
		if pol.Password {
			password = readPassword(&pc, f)
		}
	}
	u := s.buildUser(&c, f, pol)
	c.errs = append(c.errs, pc.errs...)
	if err := c.err(op); err != nil {
		return User{}, err
	}
	if len(groups) > 0 {
		ids, err := s.groupIDs(ctx, groups)
		if err != nil {
			return User{}, err
		}
		u.Groups = ids
	}
	var phc string
	if pol.Password {
		var err error
		if phc, err = s.hasher.Hash(ctx, password); err != nil {
			return User{}, err
		}
	}
	if err := s.store.CreateUser(ctx, &u); err != nil {
		return User{}, err
	}
	if pol.Password {
		if err := s.store.SetPassword(ctx, u.ID, phc); err != nil {
			_ = s.store.DeleteUser(context.WithoutCancel(ctx), u.ID)
			return User{}, err
		}
	}
	return u, nil
}

// readPassword takes the required "password" field of f, prepared by
// ValidatePassword, into c.
func readPassword(c *checker, f Fields) string {
	pw, present, null := c.str(f, "password")
	switch {
	case present && !null:
		prepared, err := ValidatePassword(pw)
		c.addErr("password", err)
		return prepared
	case !c.failed("password"):
		c.fail("password", "is required")
	}
	return ""
}

// buildUser validates a create under pol into c and returns the user to store
// (meaningful only when c holds no error).
func (s *Service) buildUser(c *checker, in Fields, pol UserPolicy) User {
	now := s.Now()
	u := User{ID: NewID(), IsActive: true, CreatedAt: now, UpdatedAt: now}
	f := cloneFields(in)
	pol.keepAttributes(c, f, nil)
	pol.refuseUnwritable(c, f)
	for _, name := range readOnlyUserFields {
		c.readOnly(f, name, nil, false)
	}
	if v, ok := c.boolean(f, "isActive"); ok {
		u.IsActive = v
	}
	s.userBuiltins(c, f, &u)
	if pol.Username == UsernameField {
		if name, present, null := c.str(f, "username"); present && !null {
			c.addErr("username", ValidateUsername(name))
			u.Username = name
		}
	}
	s.userContact(c, f, &u)
	if pol.Username == UsernameEmail && u.Email != "" && !c.failed("email") {
		if err := ValidateUsername(u.Email); err != nil {
			c.fail("email", "cannot be used as a username: %s", detailOf(err))
		}
		u.Username = u.Email
	}
	for _, name := range pol.Require {
		if v, ok := in[name]; (!ok || v == nil) && !c.failed(name) {
			c.fail(name, "is required")
		}
	}
	u.Props = map[string]any(f)
	if s.models != nil {
		s.models.Users.ApplyDefaults(u.Props)
		c.model(s.models.Users, userInstance(&u), pol.modelOptions(false)...)
	}
	return u
}

// UpdateUser merges a surface's fields into a user under its policy: absent
// fields stay, null clears an optional one (a property the model requires
// cannot be cleared), username never changes (the native API ignores it, as
// Express Gateway does), read-only fields and isActive are accepted only when
// equal to the stored value. A new email clears emailVerified unless the body
// sets it, and gets a verification mail. A precondition (If-Match) is checked
// on the stored user inside the write: PreconditionFailed, nothing written.
func (s *Service) UpdateUser(ctx context.Context, ref string, in Fields, pol UserPolicy, pre ...Precondition) (User, error) {
	const op = "core.UpdateUser"
	p := precondition(pre)
	cur, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return User{}, err
	}
	u, err := s.store.UpdateUser(ctx, cur.ID, func(u *User) error {
		if err := p.check(op, "user", u.Version()); err != nil {
			return err
		}
		f := cloneFields(in)
		if pol.Username == UsernameField {
			delete(f, "username")
		}
		var c checker
		pol.keepAttributes(&c, f, u.Props)
		pol.refuseUnwritable(&c, f)
		c.readOnly(f, "id", u.ID, true)
		c.readOnly(f, "number", u.Number, true)
		c.readOnly(f, "createdAt", u.CreatedAt, true)
		c.readOnly(f, "updatedAt", u.UpdatedAt, true)
		if v, ok := f["isActive"]; ok && !sameValue(v, u.IsActive) {
			c.fail("isActive", "cannot be changed by an update: set the user's status instead")
		}
		delete(f, "isActive")
		oldEmail := u.Email
		_, verifiedSet := f["emailVerified"]
		s.userBuiltins(&c, f, u)
		s.userContact(&c, f, u)
		if u.Email != oldEmail && !verifiedSet {
			u.EmailVerified = false
		}
		props := maps.Clone(u.Props)
		if props == nil {
			props = map[string]any{}
		}
		for k, v := range f {
			if v != nil {
				props[k] = v
				continue
			}
			delete(props, k)
			if pol.ModelRequired && s.models != nil && slices.Contains(s.models.Users.Required(), k) {
				c.fail(k, "is required")
			}
		}
		u.Props = props
		if s.models != nil {
			c.model(s.models.Users, userInstance(u), pol.modelOptions(true)...)
		}
		if err := c.err(op); err != nil {
			return err
		}
		u.UpdatedAt = s.Now()
		return nil
	})
	if err == nil && u.Email != "" && EmailKey(u.Email) != EmailKey(cur.Email) && !u.EmailVerified {
		s.mailNewAddress(ctx, u)
	}
	return u, err
}

// mailNewAddress sends a verification link to a user's new, unverified email
// (an email change makes it unverified), through the email provider when one is configured.
// It is best effort: the change stands, and the user can ask for another link.
func (s *Service) mailNewAddress(ctx context.Context, u User) {
	p, err := s.mailProvider(ctx, "core.mailNewAddress", ProviderEmail)
	if err != nil {
		return
	}
	_ = p.SendVerification(ctx, MailRequest{UserID: u.ID, Email: u.Email, DisplayName: displayName(u), Link: s.mailLink(ProviderEmail, "verify")})
}

// userBuiltins takes the built-in fields known apart from the model.
func (s *Service) userBuiltins(c *checker, f Fields, u *User) {
	if v, ok := c.boolean(f, "emailVerified"); ok {
		u.EmailVerified = v
	}
	if n, present, null := c.integer(f, "sessionsLimit", 1, maxSessionsLimit); null {
		u.SessionsLimit = nil
	} else if present {
		v := int(n)
		u.SessionsLimit = &v
	}
	if x, present, null := c.str(f, "externalId"); null {
		u.ExternalID = ""
	} else if present {
		if err := validateExternalID(x); err != nil {
			c.addErr("externalId", err)
		}
		u.ExternalID = x
	}
}

// userContact takes the core fields email and redirectUri.
func (s *Service) userContact(c *checker, f Fields, u *User) {
	if e, present, null := c.str(f, "email"); null {
		u.Email = ""
	} else if present {
		norm, err := NormalizeEmail(e)
		if err != nil {
			c.addErr("email", err)
		}
		u.Email = norm
	}
	if r, present, null := c.str(f, "redirectUri"); null {
		u.RedirectURI = ""
	} else if present {
		if !validURI(r) {
			c.fail("redirectUri", "must be an absolute URI of at most %d bytes", maxURILen)
		}
		u.RedirectURI = r
	}
}

// model validates a model instance and adds its problems, but for fields the code
// has already reported (a wrong type is said once).
func (c *checker) model(m *Model, instance map[string]any, opts ...ValidateOption) {
	if m == nil {
		return
	}
	seen := map[string]bool{}
	for _, e := range c.errs {
		seen[e.Field] = true
	}
	for _, e := range m.Validate(instance, opts...) {
		if !seen[c.prefix+e.Field] {
			c.errs = append(c.errs, FieldError{Field: c.prefix + e.Field, Detail: e.Detail})
		}
	}
}

// userInstance returns what the user model validates: the core fields and the
// properties.
func userInstance(u *User) map[string]any {
	m := make(map[string]any, len(u.Props)+3)
	for k, v := range u.Props {
		if !IsAttribute(k) {
			m[k] = v
		}
	}
	if u.Username != "" {
		m["username"] = u.Username
	}
	if u.Email != "" {
		m["email"] = u.Email
	}
	if u.RedirectURI != "" {
		m["redirectUri"] = u.RedirectURI
	}
	return m
}

func validateExternalID(x string) error {
	if x == "" || len(x) > maxExternalIDLen || !printable(x) {
		return Errorf(Invalid, "core.validateExternalID", "must be 1 to %d printable characters", maxExternalIDLen)
	}
	return nil
}

// UserByNumber returns the user with that number, or NotFound.
func (s *Service) UserByNumber(ctx context.Context, n int64) (User, error) {
	return s.store.UserByNumber(ctx, n)
}

// ResolveUser finds a user by `{id, username or externalId}`: a UUID is an
// id, anything else a username; when neither finds a user, the reference is
// looked up as an externalId (so a username wins over another user's equal
// externalId).
func (s *Service) ResolveUser(ctx context.Context, ref string) (User, error) {
	var u User
	var err error
	if IsUUID(ref) {
		u, err = s.store.GetUser(ctx, ref)
	} else {
		u, err = s.store.UserByName(ctx, NameUsername, ref)
	}
	if KindOf(err) == NotFound || KindOf(err) == Invalid {
		u, err = s.store.UserByName(ctx, NameExternalID, ref)
	}
	if KindOf(err) == NotFound || KindOf(err) == Invalid {
		return User{}, Errorf(NotFound, "core.ResolveUser", "user %s not found", quoteRef(ref))
	}
	return u, err
}

// SetUserStatus sets a user's own active flag and reports whether it changed.
// Deactivation is one write: the user's apps, credentials and sessions read as
// inactive through derivation, and come back as they were on reactivation.
// A precondition is checked as UpdateUser does.
func (s *Service) SetUserStatus(ctx context.Context, ref string, active bool, pre ...Precondition) (changed bool, err error) {
	const op = "core.SetUserStatus"
	p := precondition(pre)
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return false, err
	}
	if u.IsActive == active {
		return false, p.check(op, "user", u.Version())
	}
	_, err = s.store.UpdateUser(ctx, u.ID, func(u *User) error {
		if err := p.check(op, "user", u.Version()); err != nil {
			return err
		}
		if u.IsActive == active {
			return errUnchanged
		}
		u.IsActive = active
		u.UpdatedAt = s.Now()
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	return err == nil, err
}

// errUnchanged stops an update whose change another writer already made.
var errUnchanged = errors.New("unchanged")

// DeleteUser deletes a user with its apps and credentials and frees its names.
// A precondition is checked on the stored user inside the delete.
func (s *Service) DeleteUser(ctx context.Context, ref string, pre ...Precondition) error {
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return err
	}
	return s.store.DeleteUser(ctx, u.ID, checkVersion[User](precondition(pre), "core.DeleteUser", "user", nil)...)
}

// ListUsers returns one page of users in creation order, filtered by
// opt.Users (Group may name a group by id, number or name: an unknown group
// has no members; Tag is a permission tag held effectively).
func (s *Service) ListUsers(ctx context.Context, opt ListOptions) (Page[User], error) {
	const op = "core.ListUsers"
	if err := checkList(op, &opt); err != nil {
		return Page[User]{}, err
	}
	f := &opt.Users
	if f.Email != "" {
		norm, err := NormalizeEmail(f.Email)
		if err != nil {
			return Page[User]{Items: []User{}}, nil // no user has it
		}
		f.Email = norm
	}
	if f.Group != "" {
		g, err := s.ResolveGroup(ctx, f.Group)
		if KindOf(err) == NotFound {
			return Page[User]{Items: []User{}}, nil
		}
		if err != nil {
			return Page[User]{}, err
		}
		f.Group = g.ID
	}
	return s.store.ListUsers(ctx, opt)
}

// UserByName returns the user holding a unique name (its email, external id,
// username), or NotFound.
func (s *Service) UserByName(ctx context.Context, kind NameKind, value string) (User, error) {
	u, err := s.store.UserByName(ctx, kind, value)
	if KindOf(err) == Invalid {
		return User{}, Errorf(NotFound, "core.UserByName", "no user has that %s", kind)
	}
	return u, err
}

// UsersAt returns the users from the offset-th (0-based) to count of them,
// in creation order, among those f selects and keep accepts (nil: all), and
// how many there are in all: the offset paging of surfaces that number their
// pages. The filter is the store's (indexed): without keep a call costs
// O(offset + count) and the total is the store's count. keep is for what no
// index serves: it reads every user f selects, to count them.
func (s *Service) UsersAt(ctx context.Context, f UserFilter, keep func(User) bool, offset, count int) ([]User, int64, error) {
	var out []User
	var seen, total int64
	opt := ListOptions{Count: MaxPageSize, Users: f}
	for {
		p, err := s.ListUsers(ctx, opt)
		if err != nil {
			return nil, 0, err
		}
		total = p.Total
		if keep == nil && seen+int64(len(p.Items)) <= int64(offset) {
			seen += int64(len(p.Items)) // a page wholly before the offset
		} else {
			for _, u := range p.Items {
				if keep != nil && !keep(u) {
					continue
				}
				if seen >= int64(offset) && len(out) < count {
					out = append(out, u)
				}
				seen++
			}
		}
		if p.NextKey == 0 || (keep == nil && len(out) == count) {
			break
		}
		opt.Start = p.NextKey
	}
	if keep != nil {
		total = seen
	}
	return out, total, nil
}
