package core

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Providers gives the core its identity providers by name; pluginhost
// implements it over the running plugins.
type Providers interface {
	// IdentityProvider returns the provider configured under name.
	IdentityProvider(name string) (IdentityProvider, bool)
	// Integration returns the integration configured under name.
	Integration(name string) (Integration, bool)
	// IntegrationNames lists the integrations, in configuration order.
	IntegrationNames() []string
}

// mailProvider returns the named provider if it sends verification mails.
func (s *Service) mailProvider(ctx context.Context, op, name string) (IdentityProvider, error) {
	return s.providerWith(ctx, op, name, CapMailVerification, "does not sign users up by mail")
}

// mailLink is the public page a mail links to, up to and including "token=".
func (s *Service) mailLink(provider, page string) string {
	return s.publicURL + "/auth/providers/" + url.PathEscape(provider) + "/" + page + "?token="
}

// SignupRequest is a self-service sign-up with an email and a password.
type SignupRequest struct {
	Provider   string
	Fields     Fields // email, password, and the user model's "x-signup" properties
	ClientAddr string
}

// signupPolicy is public sign-up's UserPolicy: email (required) and the user
// model's properties marked "x-signup", all optional whatever the model
// requires; the username is the email; strings bounded tighter than an admin's.
func (s *Service) signupPolicy() UserPolicy {
	writable := []string{"email"}
	if s.models != nil {
		writable = append(writable, s.models.Users.SignupProperties()...)
	}
	return UserPolicy{Writable: writable, Require: []string{"email"}, Username: UsernameEmail, MaxString: SignupMaxString}
}

// Signup creates a user from a public sign-up, through the one user write path
// under signupPolicy, with its password. The user starts with its email
// unverified and is deleted after Policy.UnverifiedTTL unless it verifies. The
// provider mails the verification link; if it cannot, the user is removed
// again and the answer is Unavailable, so a plugin failure never leaves a
// half-made user. Conflict when the email is taken; RateLimited beyond
// Policy.SignupPerAddress.
func (s *Service) Signup(ctx context.Context, req SignupRequest) (User, error) {
	const op = "core.Signup"
	if err := s.checkRates(ctx, op, []string{"signup:addr:" + req.ClientAddr}, []Rate{s.policy.SignupPerAddress}, 1); err != nil {
		return User{}, err
	}
	f := cloneFields(req.Fields)
	var c, pc checker // the user's fields, then the password
	password := readPassword(&pc, f)
	u := s.buildUser(&c, f, s.signupPolicy())
	c.errs = append(c.errs, pc.errs...)
	if err := c.err(op); err != nil {
		return User{}, err
	}
	u.Identities = []Identity{{Provider: req.Provider, Subject: u.Email, Email: u.Email, LinkedAt: u.CreatedAt}}
	u.ExpiresAt = u.CreatedAt.Add(s.policy.UnverifiedTTL)
	p, err := s.mailProvider(ctx, op, req.Provider)
	if err != nil {
		return User{}, err
	}
	phc, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, err
	}
	if err := s.createSignup(ctx, &u); err != nil {
		return User{}, err
	}
	err = s.store.SetPassword(ctx, u.ID, phc)
	if err == nil {
		err = p.SendVerification(ctx, MailRequest{UserID: u.ID, Email: u.Email, DisplayName: displayName(u), Link: s.mailLink(req.Provider, "verify")})
	}
	if err != nil {
		// Undo: the sign-up did not happen. (A crash here leaves an unverified
		// user that expires with UnverifiedTTL.)
		_ = s.store.DeleteUser(context.WithoutCancel(ctx), u.ID)
		return User{}, err
	}
	return u, nil
}

// createSignup stores a sign-up; an email held by an expired, never verified
// sign-up is freed first (the sweeper may not have passed yet).
func (s *Service) createSignup(ctx context.Context, u *User) error {
	err := s.store.CreateUser(ctx, u)
	if KindOf(err) != Conflict {
		return err
	}
	old, lerr := s.store.UserByName(ctx, NameEmail, u.Email)
	if lerr != nil || !s.expired(old) {
		return Errorf(Conflict, "core.Signup", "email %s is taken", u.Email)
	}
	if derr := s.store.DeleteUser(ctx, old.ID); derr != nil && KindOf(derr) != NotFound {
		return derr
	}
	return s.store.CreateUser(ctx, u)
}

// expired reports whether u is a never-verified sign-up past its ExpiresAt.
func (s *Service) expired(u User) bool {
	return !u.ExpiresAt.IsZero() && !s.now().Before(u.ExpiresAt) && !u.EmailVerified
}

// displayName is how a mail greets u.
func displayName(u User) string {
	var parts []string
	for _, k := range []string{"firstname", "lastname"} {
		if v, ok := u.Props[k].(string); ok && v != "" {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, " ")
}

// ConfirmEmail redeems a verification token: the user's email becomes verified
// and the user no longer expires. NotFound for an unknown, used or expired token,
// or when the user changed its email since the mail.
func (s *Service) ConfirmEmail(ctx context.Context, provider, token string) (User, error) {
	const op = "core.ConfirmEmail"
	p, err := s.mailProvider(ctx, op, provider)
	if err != nil {
		return User{}, err
	}
	subj, err := p.ConfirmVerification(ctx, token)
	if err != nil {
		return User{}, err
	}
	return s.markVerified(ctx, op, provider, subj)
}

// markVerified records that subj's user proved it receives mail at subj.Email.
func (s *Service) markVerified(ctx context.Context, op, provider string, subj MailSubject) (User, error) {
	u, err := s.store.UpdateUser(ctx, subj.UserID, func(u *User) error {
		if u.Email == "" || EmailKey(u.Email) != EmailKey(subj.Email) {
			return Errorf(NotFound, op, "link is invalid or has expired")
		}
		u.EmailVerified = true
		u.ExpiresAt = time.Time{}
		ids := slices.Clone(u.Identities)
		for i := range ids {
			if ids[i].Provider == provider && EmailKey(ids[i].Email) == EmailKey(subj.Email) {
				ids[i].EmailVerified = true
			}
		}
		u.Identities = ids
		u.UpdatedAt = s.Now()
		return nil
	})
	if KindOf(err) == NotFound {
		return User{}, Errorf(NotFound, op, "link is invalid or has expired")
	}
	return u, err
}

// MailAsk is a request for a mail by address: a new verification link or a
// password reset.
type MailAsk struct {
	Provider   string
	Email      string
	ClientAddr string
}

// ResendVerification mails a new verification link to an unverified address.
// The answer is the same, and comes as fast, whether or not the address is
// known: the user is looked up and the mail sent off the request path (a mail
// that cannot be sent goes to Options.ReportError). RateLimited beyond
// Policy.MailPerAddress or MailPerEmail, Unavailable when the provider is down.
func (s *Service) ResendVerification(ctx context.Context, req MailAsk) error {
	return s.mailByAddress(ctx, "core.ResendVerification", req, func(ctx context.Context, p IdentityProvider, u User) error {
		if u.EmailVerified {
			return nil
		}
		return p.SendVerification(ctx, MailRequest{UserID: u.ID, Email: u.Email, DisplayName: displayName(u), Link: s.mailLink(req.Provider, "verify")})
	})
}

// RequestPasswordReset mails a password-reset link, answering the same whether
// or not the address is known, as ResendVerification does.
func (s *Service) RequestPasswordReset(ctx context.Context, req MailAsk) error {
	return s.mailByAddress(ctx, "core.RequestPasswordReset", req, func(ctx context.Context, p IdentityProvider, u User) error {
		return p.SendPasswordReset(ctx, MailRequest{UserID: u.ID, Email: u.Email, DisplayName: displayName(u), Link: s.mailLink(req.Provider, "password-reset")})
	})
}

// mailByAddress is the common part of resend and reset: validation, rate limits
// (counted whether or not the address is known) and the provider on the request
// path; then, off it, the lookup of the address and send for a known, active,
// unexpired user, bounded by the mail timeout. Nothing on the request path
// depends on whether the address has an account, so neither the answer nor its
// time tells.
func (s *Service) mailByAddress(ctx context.Context, op string, req MailAsk, send func(context.Context, IdentityProvider, User) error) error {
	norm, err := NormalizeEmail(req.Email)
	if err != nil {
		return err
	}
	keys := []string{"mail:addr:" + req.ClientAddr, "mail:email:" + EmailKey(norm)}
	if err := s.checkRates(ctx, op, keys, []Rate{s.policy.MailPerAddress, s.policy.MailPerEmail}, 1); err != nil {
		return err
	}
	p, err := s.mailProvider(ctx, op, req.Provider)
	if err != nil {
		return err
	}
	select {
	case s.mailSlots <- struct{}{}:
	default:
		s.reportError(Errorf(Unavailable, op, "too many mails in flight: one was dropped"))
		return nil
	}
	s.background.Go(func() {
		defer func() { <-s.mailSlots }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.mailTimeout)
		defer cancel()
		u, err := s.store.UserByName(ctx, NameEmail, norm)
		switch {
		case KindOf(err) == NotFound:
			return
		case err == nil && (!u.IsActive || s.expired(u)):
			return
		case err == nil:
			err = send(ctx, p, u)
		}
		if err != nil {
			s.reportError(&Error{Kind: KindOf(err), Op: op, Msg: "mail not sent", Err: err})
		}
	})
	return nil
}

// ResetPassword redeems a password-reset token and sets the new password, which
// ends every session of the user; the mail also proved the address, so the email
// becomes verified. The password is checked before the token is spent.
func (s *Service) ResetPassword(ctx context.Context, provider, token, password string) error {
	const op = "core.ResetPassword"
	prepared, err := ValidatePassword(password)
	if err != nil {
		return err
	}
	if token == "" {
		return InvalidFields(op, FieldError{Field: "token", Detail: "is required"})
	}
	p, err := s.mailProvider(ctx, op, provider)
	if err != nil {
		return err
	}
	phc, err := s.hasher.Hash(ctx, prepared)
	if err != nil {
		return err
	}
	subj, err := p.ConfirmPasswordReset(ctx, token)
	if err != nil {
		return err
	}
	u, err := s.markVerified(ctx, op, provider, subj)
	if err != nil {
		return err
	}
	return s.store.SetPassword(ctx, u.ID, phc)
}

// SweepExpiredUsers deletes never-verified sign-ups past their ExpiresAt, at
// most limit at a time, and returns how many it deleted. Every instance may
// run it; deleting twice is harmless.
func (s *Service) SweepExpiredUsers(ctx context.Context, limit int) (int, error) {
	ids, err := s.store.ExpiredUsers(ctx, s.now(), limit)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		u, err := s.store.GetUser(ctx, id)
		if err != nil || !s.expired(u) {
			continue
		}
		if err := s.store.DeleteUser(ctx, id); err == nil {
			n++
		} else if KindOf(err) != NotFound {
			return n, err
		}
	}
	return n, nil
}

// Identities returns a user's identities (GET /users/{id}/identities).
func (s *Service) Identities(ctx context.Context, ref string) ([]Identity, error) {
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return nil, err
	}
	return slices.Clone(u.Identities), nil
}
