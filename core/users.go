package core

import (
	"context"
	"errors"
	"maps"
)

// Limits of user built-ins (SPEC §9).
const (
	maxSessionsLimit = 999999
	maxExternalIDLen = 256
)

// CreateUser creates a user from a native admin API body (SPEC §9 "Who writes which
// user field"): the model properties (the model's required list binds; username is
// always required), isActive, and the built-ins emailVerified, sessionsLimit and
// externalId. id, number and the timestamps are read-only. Invalid lists every field
// at fault; Conflict names a taken username, email or externalId. Nothing is stored
// when validation fails.
func (s *Service) CreateUser(ctx context.Context, in Fields) (User, error) {
	const op = "core.CreateUser"
	now := s.Now()
	u := User{ID: NewID(), IsActive: true, CreatedAt: now, UpdatedAt: now}
	f := cloneFields(in)
	var c checker
	for _, name := range []string{"id", "number", "createdAt", "updatedAt"} {
		c.readOnly(f, name, nil, false)
	}
	if v, ok := c.boolean(f, "isActive"); ok {
		u.IsActive = v
	}
	s.userBuiltins(&c, f, &u)
	n := len(c.errs)
	if name, present, null := c.str(f, "username"); present && !null {
		if err := ValidateUsername(name); err != nil {
			c.addErr("username", err)
		}
		u.Username = name
	} else if len(c.errs) == n {
		c.fail("username", "is required")
	}
	s.userContact(&c, f, &u)
	u.Props = map[string]any(f)
	if s.models != nil {
		s.models.Users.ApplyDefaults(u.Props)
		c.model(s.models.Users, userInstance(&u))
	}
	if err := c.err(op); err != nil {
		return User{}, err
	}
	if err := s.store.CreateUser(ctx, &u); err != nil {
		return User{}, err
	}
	return u, nil
}

// UpdateUser merges a native admin API body into a user (SPEC §9): absent fields
// stay, null clears an optional one, username is ignored as Express Gateway does,
// read-only fields and isActive are accepted only when equal to the stored value. A
// new email clears emailVerified unless the body sets it.
func (s *Service) UpdateUser(ctx context.Context, ref string, in Fields) (User, error) {
	const op = "core.UpdateUser"
	cur, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return User{}, err
	}
	u, err := s.store.UpdateUser(ctx, cur.ID, func(u *User) error {
		f := cloneFields(in)
		delete(f, "username")
		var c checker
		c.readOnly(f, "id", u.ID, true)
		c.readOnly(f, "number", u.Number, true)
		c.readOnly(f, "createdAt", u.CreatedAt, true)
		c.readOnly(f, "updatedAt", u.UpdatedAt, true)
		if v, ok := f["isActive"]; ok && !sameValue(v, u.IsActive) {
			c.fail("isActive", "changes through PUT /users/{id}/status")
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
			if v == nil {
				delete(props, k)
			} else {
				props[k] = v
			}
		}
		u.Props = props
		if s.models != nil {
			c.model(s.models.Users, userInstance(u))
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
// (SPEC §9 "Email changes"), through the email provider when one is configured.
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
			c.fail("redirectUri", "must be an absolute URI")
		}
		u.RedirectURI = r
	}
}

// model validates a model instance and adds its problems, but for fields the code
// has already reported (a wrong type is said once).
func (c *checker) model(m *Model, instance map[string]any) {
	if m == nil {
		return
	}
	seen := map[string]bool{}
	for _, e := range c.errs {
		seen[e.Field] = true
	}
	for _, e := range m.Validate(instance) {
		if !seen[c.prefix+e.Field] {
			c.errs = append(c.errs, FieldError{Field: c.prefix + e.Field, Detail: e.Detail})
		}
	}
}

// userInstance returns what the user model validates: the core fields and the
// properties.
func userInstance(u *User) map[string]any {
	m := make(map[string]any, len(u.Props)+3)
	maps.Copy(m, u.Props)
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

// ResolveUser finds a user by `{id or username}` (SPEC §9): a UUID is an id,
// anything else a username.
func (s *Service) ResolveUser(ctx context.Context, ref string) (User, error) {
	if IsUUID(ref) {
		return s.store.GetUser(ctx, ref)
	}
	u, err := s.store.UserByName(ctx, NameUsername, ref)
	if KindOf(err) == NotFound || KindOf(err) == Invalid {
		return User{}, Errorf(NotFound, "core.ResolveUser", "user %q not found", ref)
	}
	return u, err
}

// SetUserStatus sets a user's own active flag and reports whether it changed.
// Deactivation is one write: the user's apps, credentials and sessions read as
// inactive through derivation, and come back as they were on reactivation.
func (s *Service) SetUserStatus(ctx context.Context, ref string, active bool) (changed bool, err error) {
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return false, err
	}
	if u.IsActive == active {
		return false, nil
	}
	_, err = s.store.UpdateUser(ctx, u.ID, func(u *User) error {
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
func (s *Service) DeleteUser(ctx context.Context, ref string) error {
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return err
	}
	return s.store.DeleteUser(ctx, u.ID)
}

// ListUsers returns one page of users in creation order.
func (s *Service) ListUsers(ctx context.Context, opt ListOptions) (Page[User], error) {
	if err := checkList("core.ListUsers", &opt); err != nil {
		return Page[User]{}, err
	}
	return s.store.ListUsers(ctx, opt)
}
