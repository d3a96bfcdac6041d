package core

import (
	"context"
	"slices"
	"strings"
)

// The user of an identity a provider vouches for (a redirect sign-in, a
// password checked elsewhere): one rule for every provider.

// userForIdentity returns the user holding id at provider, linking it to the
// user of its verified email (when the provider's configuration allows it)
// or creating a user for it. The answer is Forbidden for a deactivated user.
// A provider's answer without a subject is Unavailable: the plugin is broken.
//
// Linking by email needs the provider to say the address is verified: an
// unverified address never links to an existing user (anyone can claim an
// address at some provider). A user who signed up by email and never
// verified it is not linked either, since whoever made it never proved the
// address: that pending sign-up is replaced by the new user, so its password
// cannot be used to take over the account.
//
// A new user gets the provider's login as username when it is free and
// valid, else the email, else "<provider>-<subject>"; the email (when
// verified and free), marked verified; and the given and family names when
// the user model lets sign-ups write them.
func (s *Service) userForIdentity(ctx context.Context, op, provider string, id Identity) (User, error) {
	if id.Subject == "" || len(id.Subject) > 255 {
		return User{}, Errorf(Unavailable, op, "identity provider %q answered an identity without a usable subject", provider)
	}
	id.Provider = provider
	id.LinkedAt = s.Now()
	if id.Email != "" {
		if norm, err := NormalizeEmail(id.Email); err == nil {
			id.Email = norm
		} else {
			id.Email, id.EmailVerified = "", false
		}
	}
	var u User
	var err error
	// A race (two first sign-ins of one person, a name taken meanwhile) makes
	// a step answer Conflict; the next round sees what the other one wrote.
	for range 3 {
		if u, err = s.resolveIdentity(ctx, op, id); KindOf(err) != Conflict {
			break
		}
	}
	if err != nil {
		return User{}, err
	}
	if !u.IsActive {
		return User{}, Errorf(Forbidden, op, "user %q is deactivated", u.Username)
	}
	return u, nil
}

// resolveIdentity is one round of userForIdentity.
func (s *Service) resolveIdentity(ctx context.Context, op string, id Identity) (User, error) {
	u, err := s.store.UserByIdentity(ctx, id.Provider, id.Subject)
	if err == nil {
		return s.refreshIdentity(ctx, u, id)
	}
	if KindOf(err) != NotFound {
		return User{}, err
	}
	emailFree := id.Email != "" && id.EmailVerified
	if emailFree {
		owner, err := s.store.UserByName(ctx, NameEmail, id.Email)
		switch {
		case KindOf(err) == NotFound:
		case err != nil:
			return User{}, err
		case isPendingSignup(owner):
			if err := s.store.DeleteUser(ctx, owner.ID); err != nil && KindOf(err) != NotFound {
				return User{}, err
			}
		case !slices.Contains(s.noEmailLink, id.Provider):
			return s.linkIdentity(ctx, owner.ID, id)
		default:
			emailFree = false // the address stays its owner's; the new user has none
		}
	}
	return s.createForIdentity(ctx, op, id, emailFree)
}

// isPendingSignup reports whether u signed up by email and never verified it.
func isPendingSignup(u User) bool {
	return !u.EmailVerified && len(u.Identities) > 0 && u.Identities[0].Provider == ProviderEmail && !u.Identities[0].EmailVerified
}

// linkIdentity adds id to the user userID; the provider verified the user's
// address too, so it is marked verified.
func (s *Service) linkIdentity(ctx context.Context, userID string, id Identity) (User, error) {
	return s.store.UpdateUser(ctx, userID, func(u *User) error {
		if !slices.ContainsFunc(u.Identities, func(x Identity) bool { return x.Provider == id.Provider && x.Subject == id.Subject }) {
			u.Identities = append(slices.Clone(u.Identities), id)
		}
		if u.Email != "" && EmailKey(u.Email) == EmailKey(id.Email) {
			u.EmailVerified = true
		}
		u.UpdatedAt = s.Now()
		return nil
	})
}

// refreshIdentity updates the stored copy of an identity when the provider
// now says something else of it (a new address, a new name); the link time
// stays.
func (s *Service) refreshIdentity(ctx context.Context, u User, id Identity) (User, error) {
	i := slices.IndexFunc(u.Identities, func(x Identity) bool { return x.Provider == id.Provider && x.Subject == id.Subject })
	if i < 0 {
		return u, nil // a leftover claim: the record is the truth
	}
	old := u.Identities[i]
	id.LinkedAt = old.LinkedAt
	if old.Email == id.Email && old.EmailVerified == id.EmailVerified && old.Username == id.Username &&
		old.DisplayName == id.DisplayName && old.AvatarURL == id.AvatarURL {
		return u, nil
	}
	return s.store.UpdateUser(ctx, u.ID, func(u *User) error {
		ids := slices.Clone(u.Identities)
		for j := range ids {
			if ids[j].Provider == id.Provider && ids[j].Subject == id.Subject {
				id.LinkedAt = ids[j].LinkedAt
				ids[j] = id
			}
		}
		u.Identities = ids
		u.UpdatedAt = s.Now()
		return nil
	})
}

// createForIdentity creates a user for id, with its email when withEmail.
func (s *Service) createForIdentity(ctx context.Context, op string, id Identity, withEmail bool) (User, error) {
	pol := UserPolicy{Writable: []string{"username", "email"}, Username: UsernameField, MaxString: SignupMaxString}
	f := Fields{}
	if withEmail {
		f["email"] = id.Email
	}
	if s.models != nil {
		signup := s.models.Users.SignupProperties()
		for field, v := range map[string]string{"firstname": id.GivenName, "lastname": id.FamilyName} {
			if v != "" && slices.Contains(signup, field) {
				pol.Writable = append(pol.Writable, field)
				f[field] = truncate(strings.TrimSpace(v), 128)
			}
		}
	}
	candidates := []string{id.Username}
	if withEmail {
		candidates = append(candidates, id.Email)
	}
	name, err := s.freeUsername(ctx, append(candidates, id.Provider+"-"+id.Subject), id.Provider)
	if err != nil {
		return User{}, err
	}
	f["username"] = name
	var c checker
	u := s.buildUser(&c, f, pol)
	if c.err(op) != nil {
		// A name the user model refuses must not keep the person out.
		delete(f, "firstname")
		delete(f, "lastname")
		c = checker{}
		if u = s.buildUser(&c, f, pol); c.err(op) != nil {
			return User{}, E(Unavailable, op, c.err(op))
		}
	}
	u.EmailVerified = withEmail
	u.Identities = []Identity{id}
	if err := s.store.CreateUser(ctx, &u); err != nil {
		return User{}, err
	}
	return u, nil
}

// freeUsername picks a new user's username: the first of candidates that is
// a valid username no one holds, else base and a random suffix.
func (s *Service) freeUsername(ctx context.Context, candidates []string, base string) (string, error) {
	for _, name := range candidates {
		if name == "" || ValidateUsername(name) != nil {
			continue
		}
		_, err := s.store.LocateUser(ctx, NameUsername, name)
		if KindOf(err) == NotFound {
			return name, nil
		}
		if err != nil {
			return "", err
		}
	}
	// Every candidate is taken or invalid: a random one.
	return base + "-" + NewSecret("", 8), nil
}

// SignupIdentity returns the identity u signed up with: its first identity;
// for a user created without one (by an admin or a client), the email
// provider with its email as subject, or its username when it has none.
func (u User) SignupIdentity() Identity {
	if len(u.Identities) > 0 {
		return u.Identities[0]
	}
	subject := u.Email
	if subject == "" {
		subject = u.Username
	}
	return Identity{Provider: ProviderEmail, Subject: subject, Email: u.Email, EmailVerified: u.EmailVerified, LinkedAt: u.CreatedAt}
}

// DisplayName returns how u is named to people: its first and last names,
// else its sign-up identity's display name, else its username.
func (u User) DisplayName() string {
	if n := displayName(u); n != "" {
		return n
	}
	if n := u.SignupIdentity().DisplayName; n != "" {
		return n
	}
	return u.Username
}
