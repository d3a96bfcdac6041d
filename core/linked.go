package core

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// Integration accounts: a user's accounts at third-party services, linked
// through an integration plugin, whose tokens the host keeps sealed with the
// Keyring and hands to the product's backend, refreshed.

// refreshAhead is how long before its expiry an access token is refreshed
// rather than handed out.
const refreshAhead = time.Minute

// LinkStart asks for an account to be linked (POST /users/me/integrations/{name}).
type LinkStart struct {
	UserID      string
	ClientAddr  string
	Connector   string // the integration's name
	CallbackURL string // where the browser goes once the account is linked: an allowed redirect URI
	AppState    string // returned to CallbackURL as "state"; may be empty
	// OwnPage is a callback URL of the surface's own (a page it serves)
	// that is allowed without being on the allow-list; may be empty.
	OwnPage   string
	LoginHint string // passed to the service; may be empty
}

// StartLink begins linking an account of the user's at the integration's
// service and returns the service's authorization URL. The flow is kept like
// a sign-in's (single-use, FlowTTL, bound to the integration), bound to the
// user instead of to a browser cookie: the browser that follows the URL has
// never been to Gatehouse. An encryption key must be configured (the tokens
// are stored sealed): Unavailable naming the setting otherwise.
func (s *Service) StartLink(ctx context.Context, req LinkStart) (string, error) {
	const op = "core.StartLink"
	if len(req.AppState) > maxAppState {
		return "", InvalidFields(op, FieldError{Field: "state", Detail: "is longer than 512 bytes"})
	}
	if s.keyring == nil {
		return "", errNoKeyring(op)
	}
	p, err := s.integration(ctx, op, req.Connector)
	if err != nil {
		return "", err
	}
	if req.OwnPage == "" || req.CallbackURL != req.OwnPage {
		if err := s.checkReturnTo(ctx, op, "callback_url", req.CallbackURL); err != nil {
			return "", err
		}
	}
	if err := s.countFlow(ctx, op, req.ClientAddr); err != nil {
		return "", err
	}
	f := flowRecord{Purpose: flowLink, Provider: req.Connector, ReturnTo: req.CallbackURL, AppState: req.AppState, UserID: req.UserID}
	return s.startFlow(ctx, op, f, req.LoginHint, p.AuthURL)
}

// finishLink redeems a link flow's code through the integration and stores
// the account, its tokens sealed, on the user who started the flow.
func (s *Service) finishLink(ctx context.Context, op string, f flowRecord, xr ExchangeRequest) (LinkedAccount, error) {
	p, err := s.integration(ctx, op, f.Provider)
	if err != nil {
		return LinkedAccount{}, err
	}
	u, err := s.store.GetUser(ctx, f.UserID)
	if err != nil {
		if KindOf(err) == NotFound {
			return LinkedAccount{}, Errorf(Forbidden, op, "the user who started this link is gone")
		}
		return LinkedAccount{}, err
	}
	if !u.IsActive {
		return LinkedAccount{}, Errorf(Forbidden, op, "user %q is deactivated", u.Username)
	}
	acct, tokens, err := p.Exchange(ctx, xr)
	if err != nil {
		return LinkedAccount{}, err
	}
	acct.Connector = f.Provider
	if acct.UserIdentifier == "" || len(acct.UserIdentifier) > 255 {
		return LinkedAccount{}, Errorf(Unavailable, op, "integration %q answered an account without a usable identifier", f.Provider)
	}
	if tokens.AccessToken == "" {
		return LinkedAccount{}, Errorf(Unavailable, op, "integration %q answered no access token", f.Provider)
	}
	return s.storeLinked(ctx, op, u.ID, LinkedAccount{
		Connector: acct.Connector, UserIdentifier: acct.UserIdentifier, DisplayName: truncate(acct.DisplayName, 256),
		Scopes: acct.Scopes, ConnectedAt: s.Now(),
	}, tokens)
}

// linkedAAD binds a sealed token blob to its account, so a blob copied onto
// another account does not open.
func linkedAAD(userID, connector, userIdentifier string) []byte {
	return []byte("linked\x00" + userID + "\x00" + connector + "\x00" + userIdentifier)
}

// storeLinked seals tokens into a and stores it.
func (s *Service) storeLinked(ctx context.Context, op, userID string, a LinkedAccount, tokens IntegrationTokens) (LinkedAccount, error) {
	plain, err := json.Marshal(sealedTokens{Access: tokens.AccessToken, Refresh: tokens.RefreshToken, Type: tokens.TokenType})
	if err != nil {
		return LinkedAccount{}, E(Internal, op, err)
	}
	if a.Tokens, err = s.keyring.Encrypt(plain, linkedAAD(userID, a.Connector, a.UserIdentifier)); err != nil {
		return LinkedAccount{}, err
	}
	a.ExpiresAt = tokens.ExpiresAt
	a.UpdatedAt = s.Now()
	return s.store.PutLinkedAccount(ctx, userID, a)
}

// sealedTokens is what a LinkedAccount's Tokens blob holds.
type sealedTokens struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh,omitempty"`
	Type    string `json:"type,omitempty"`
}

// openTokens unseals a's tokens.
func (s *Service) openTokens(userID string, a LinkedAccount) (IntegrationTokens, error) {
	plain, err := s.keyring.Decrypt(a.Tokens, linkedAAD(userID, a.Connector, a.UserIdentifier))
	if err != nil {
		return IntegrationTokens{}, err
	}
	var t sealedTokens
	if err := json.Unmarshal(plain, &t); err != nil {
		return IntegrationTokens{}, E(Internal, "core.openTokens", err)
	}
	return IntegrationTokens{AccessToken: t.Access, RefreshToken: t.Refresh, TokenType: t.Type, ExpiresAt: a.ExpiresAt}, nil
}

// LinkedAccounts lists a user's integration accounts (tokens stay sealed:
// callers show none).
func (s *Service) LinkedAccounts(ctx context.Context, ref string) ([]LinkedAccount, error) {
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.store.LinkedAccounts(ctx, u.ID)
}

// Unlink removes a user's integration account, revoking its tokens at the
// service first where the integration can. A revocation that fails (the
// service or the plugin is down) does not keep the account: it is removed
// all the same and the failure reported (Options.ReportError).
func (s *Service) Unlink(ctx context.Context, ref, connector, userIdentifier string) error {
	const op = "core.Unlink"
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return err
	}
	a, err := s.store.LinkedAccount(ctx, u.ID, connector, userIdentifier)
	if err != nil {
		return err
	}
	if err := s.revokeLinked(ctx, op, u.ID, a); err != nil && s.reportError != nil {
		s.reportError(E(KindOf(err), op, err))
	}
	return s.store.DeleteLinkedAccount(ctx, u.ID, connector, userIdentifier)
}

// revokeLinked revokes a's tokens at its service.
func (s *Service) revokeLinked(ctx context.Context, op, userID string, a LinkedAccount) error {
	if s.keyring == nil {
		return errNoKeyring(op)
	}
	t, err := s.openTokens(userID, a)
	if err != nil {
		return err
	}
	p, err := s.integration(ctx, op, a.Connector)
	if err != nil {
		return err
	}
	return p.Revoke(ctx, t)
}

// LinkedAccessToken is an integration account's usable access token, for the
// product's backend.
type LinkedAccessToken struct {
	Token     string
	Type      string
	ExpiresAt time.Time // zero: unknown
	Scopes    []string
	Selected  bool // the account is its connector's selected one
}

// LinkedToken returns a usable access token of a user's integration
// account, refreshed through the integration when it has expired or is
// about to; the refreshed tokens are stored (sealed under the current
// primary key, so a refresh also moves an account to a rotated key). An
// expired token that cannot be refreshed is PreconditionFailed: the user
// must link the account again; a refresh the service refuses (access
// revoked) is Unauthorized.
func (s *Service) LinkedToken(ctx context.Context, ref, connector, userIdentifier string) (LinkedAccessToken, error) {
	const op = "core.LinkedToken"
	if s.keyring == nil {
		return LinkedAccessToken{}, errNoKeyring(op)
	}
	u, err := s.ResolveUser(ctx, ref)
	if err != nil {
		return LinkedAccessToken{}, err
	}
	a, err := s.store.LinkedAccount(ctx, u.ID, connector, userIdentifier)
	if err != nil {
		return LinkedAccessToken{}, err
	}
	t, err := s.openTokens(u.ID, a)
	if err != nil {
		return LinkedAccessToken{}, err
	}
	if !t.ExpiresAt.IsZero() && !s.Now().Add(refreshAhead).Before(t.ExpiresAt) {
		if t.RefreshToken == "" {
			return LinkedAccessToken{}, Errorf(PreconditionFailed, op, "the %s access token of %s has expired and cannot be refreshed: link the account again", connector, userIdentifier)
		}
		p, err := s.integration(ctx, op, connector)
		if err != nil {
			return LinkedAccessToken{}, err
		}
		nt, err := p.Refresh(ctx, t.RefreshToken)
		if err != nil {
			return LinkedAccessToken{}, err
		}
		if nt.AccessToken == "" {
			return LinkedAccessToken{}, Errorf(Unavailable, op, "integration %q refreshed no access token", connector)
		}
		if nt.RefreshToken == "" {
			nt.RefreshToken = t.RefreshToken
		}
		selected := a.Selected // a refresh does not change it
		if a, err = s.storeLinked(ctx, op, u.ID, a, nt); err != nil {
			return LinkedAccessToken{}, err
		}
		t, a.Selected = nt, selected
	}
	return LinkedAccessToken{Token: t.AccessToken, Type: strings.TrimSpace(t.TokenType), ExpiresAt: t.ExpiresAt, Scopes: a.Scopes, Selected: a.Selected}, nil
}
