package sdk

import (
	"context"
	"encoding/json"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
	pluginv1 "github.com/gatehouse/gatehouse/proto/gatehouse/plugin/v1"
)

// IdentityProviderPlugin is the go-plugin plugin of kind
// KindIdentityProvider. Impl is set in the plugin process only.
type IdentityProviderPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl IdentityProvider
}

// GRPCServer registers Impl on the plugin's gRPC server.
func (p *IdentityProviderPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterIdentityProviderServer(s, &identityServer{impl: p.Impl, host: hostConn{broker: broker}})
	return nil
}

// GRPCClient returns the host's *IdentityProviderClient.
func (p *IdentityProviderPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &IdentityProviderClient{broker: broker, c: pluginv1.NewIdentityProviderClient(cc)}, nil
}

// IdentityProviderClient is an identity-provider plugin as the host uses it,
// over gRPC. Errors come back as *errs.Error with the plugin's kind and
// message; a plugin that cannot be reached answers Unavailable.
type IdentityProviderClient struct {
	broker *plugin.GRPCBroker
	c      pluginv1.IdentityProviderClient
}

var _ IdentityProvider = (*IdentityProviderClient)(nil)

// Configure serves host's KV and Log to the plugin over the go-plugin broker
// and sends the plugin cfg: its name, configuration block and secrets. Call
// it once after every start, before any other method.
func (c *IdentityProviderClient) Configure(ctx context.Context, cfg Config, host Host) error {
	return configure(ctx, c.broker, c.c.Configure, cfg, host)
}

// Describe asks the plugin what it is.
func (c *IdentityProviderClient) Describe(ctx context.Context) (PluginInfo, error) {
	r, err := c.c.Describe(ctx, &pluginv1.Empty{})
	if err != nil {
		return PluginInfo{}, fromStatus(err)
	}
	return pluginInfo(r), nil
}

// SendVerification asks the plugin to mail a verification link.
func (c *IdentityProviderClient) SendVerification(ctx context.Context, req MailRequest) error {
	_, err := c.c.SendVerification(ctx, toMailRequest(req))
	return fromStatus(err)
}

// ConfirmVerification asks the plugin to redeem a verification token.
func (c *IdentityProviderClient) ConfirmVerification(ctx context.Context, token string) (MailSubject, error) {
	r, err := c.c.ConfirmVerification(ctx, &pluginv1.ConfirmMailRequest{Token: token})
	if err != nil {
		return MailSubject{}, fromStatus(err)
	}
	return MailSubject{UserID: r.UserId, Email: r.Email}, nil
}

// SendPasswordReset asks the plugin to mail a password-reset link.
func (c *IdentityProviderClient) SendPasswordReset(ctx context.Context, req MailRequest) error {
	_, err := c.c.SendPasswordReset(ctx, toMailRequest(req))
	return fromStatus(err)
}

// ConfirmPasswordReset asks the plugin to redeem a password-reset token.
func (c *IdentityProviderClient) ConfirmPasswordReset(ctx context.Context, token string) (MailSubject, error) {
	r, err := c.c.ConfirmPasswordReset(ctx, &pluginv1.ConfirmMailRequest{Token: token})
	if err != nil {
		return MailSubject{}, fromStatus(err)
	}
	return MailSubject{UserID: r.UserId, Email: r.Email}, nil
}

// CheckPassword asks the plugin to check a password.
func (c *IdentityProviderClient) CheckPassword(ctx context.Context, identifier, password string) (Identity, error) {
	r, err := c.c.CheckPassword(ctx, &pluginv1.CheckPasswordRequest{Identifier: identifier, Password: password})
	if err != nil {
		return Identity{}, fromStatus(err)
	}
	return identity(r)
}

// AuthURL asks the plugin for its authorization URL.
func (c *IdentityProviderClient) AuthURL(ctx context.Context, req AuthURLRequest) (string, error) {
	r, err := c.c.AuthURL(ctx, toAuthURLRequest(req))
	if err != nil {
		return "", fromStatus(err)
	}
	return r.Url, nil
}

// Exchange asks the plugin to redeem an authorization code.
func (c *IdentityProviderClient) Exchange(ctx context.Context, req ExchangeRequest) (Identity, error) {
	r, err := c.c.Exchange(ctx, toExchangeRequest(req))
	if err != nil {
		return Identity{}, fromStatus(err)
	}
	return identity(r)
}

// identityServer serves an IdentityProvider in the plugin process.
type identityServer struct {
	pluginv1.UnimplementedIdentityProviderServer
	impl IdentityProvider
	host hostConn
}

func (s *identityServer) Configure(ctx context.Context, r *pluginv1.ConfigureRequest) (*pluginv1.Empty, error) {
	host, err := s.host.dial(r.HostBrokerId)
	if err == nil {
		err = s.impl.Configure(ctx, Config{Name: r.Name, Raw: r.Config, Secrets: r.Secrets}, host)
	}
	return answer(&pluginv1.Empty{}, err)
}

func (s *identityServer) Describe(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.PluginInfo, error) {
	info, err := s.impl.Describe(ctx)
	return answer(toPluginInfo(info), err)
}

func (s *identityServer) SendVerification(ctx context.Context, r *pluginv1.MailRequest) (*pluginv1.Empty, error) {
	return answer(&pluginv1.Empty{}, s.impl.SendVerification(ctx, mailRequest(r)))
}

func (s *identityServer) ConfirmVerification(ctx context.Context, r *pluginv1.ConfirmMailRequest) (*pluginv1.MailSubject, error) {
	sub, err := s.impl.ConfirmVerification(ctx, r.Token)
	return answer(&pluginv1.MailSubject{UserId: sub.UserID, Email: sub.Email}, err)
}

func (s *identityServer) SendPasswordReset(ctx context.Context, r *pluginv1.MailRequest) (*pluginv1.Empty, error) {
	return answer(&pluginv1.Empty{}, s.impl.SendPasswordReset(ctx, mailRequest(r)))
}

func (s *identityServer) ConfirmPasswordReset(ctx context.Context, r *pluginv1.ConfirmMailRequest) (*pluginv1.MailSubject, error) {
	sub, err := s.impl.ConfirmPasswordReset(ctx, r.Token)
	return answer(&pluginv1.MailSubject{UserId: sub.UserID, Email: sub.Email}, err)
}

func (s *identityServer) CheckPassword(ctx context.Context, r *pluginv1.CheckPasswordRequest) (*pluginv1.Identity, error) {
	id, err := s.impl.CheckPassword(ctx, r.Identifier, r.Password)
	if err != nil {
		return nil, toStatus(err)
	}
	return answer(toIdentity(id))
}

func (s *identityServer) AuthURL(ctx context.Context, r *pluginv1.AuthURLRequest) (*pluginv1.AuthURLResponse, error) {
	u, err := s.impl.AuthURL(ctx, authURLRequest(r))
	return answer(&pluginv1.AuthURLResponse{Url: u}, err)
}

func (s *identityServer) Exchange(ctx context.Context, r *pluginv1.ExchangeRequest) (*pluginv1.Identity, error) {
	id, err := s.impl.Exchange(ctx, exchangeRequest(r))
	if err != nil {
		return nil, toStatus(err)
	}
	return answer(toIdentity(id))
}

// Conversions between the SDK's types and the wire's: toX builds a message,
// x reads one.

func toPluginInfo(i PluginInfo) *pluginv1.PluginInfo {
	return &pluginv1.PluginInfo{Name: i.Name, Kind: i.Kind, Version: i.Version, DisplayName: i.DisplayName, Capabilities: i.Capabilities}
}

func pluginInfo(i *pluginv1.PluginInfo) PluginInfo {
	return PluginInfo{Name: i.Name, Kind: i.Kind, Version: i.Version, DisplayName: i.DisplayName, Capabilities: i.Capabilities}
}

func toMailRequest(r MailRequest) *pluginv1.MailRequest {
	return &pluginv1.MailRequest{UserId: r.UserID, Email: r.Email, DisplayName: r.DisplayName, Link: r.Link}
}

func mailRequest(r *pluginv1.MailRequest) MailRequest {
	return MailRequest{UserID: r.UserId, Email: r.Email, DisplayName: r.DisplayName, Link: r.Link}
}

func toAuthURLRequest(r AuthURLRequest) *pluginv1.AuthURLRequest {
	return &pluginv1.AuthURLRequest{State: r.State, CodeChallenge: r.CodeChallenge, RedirectUri: r.RedirectURI, Scopes: r.Scopes, Nonce: r.Nonce, LoginHint: r.LoginHint}
}

func authURLRequest(r *pluginv1.AuthURLRequest) AuthURLRequest {
	return AuthURLRequest{State: r.State, CodeChallenge: r.CodeChallenge, RedirectURI: r.RedirectUri, Scopes: r.Scopes, Nonce: r.Nonce, LoginHint: r.LoginHint}
}

func toExchangeRequest(r ExchangeRequest) *pluginv1.ExchangeRequest {
	return &pluginv1.ExchangeRequest{Code: r.Code, CodeVerifier: r.CodeVerifier, RedirectUri: r.RedirectURI, Nonce: r.Nonce}
}

func exchangeRequest(r *pluginv1.ExchangeRequest) ExchangeRequest {
	return ExchangeRequest{Code: r.Code, CodeVerifier: r.CodeVerifier, RedirectURI: r.RedirectUri, Nonce: r.Nonce}
}

func toIdentity(id Identity) (*pluginv1.Identity, error) {
	var claims []byte
	if id.RawClaims != nil {
		var err error
		if claims, err = json.Marshal(id.RawClaims); err != nil {
			return nil, errs.E(errs.Internal, "sdk.Identity", err)
		}
	}
	return &pluginv1.Identity{
		Provider: id.Provider, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
		Username: id.Username, DisplayName: id.DisplayName, GivenName: id.GivenName,
		FamilyName: id.FamilyName, AvatarUrl: id.AvatarURL, RawClaims: claims,
	}, nil
}

func identity(r *pluginv1.Identity) (Identity, error) {
	id := Identity{
		Provider: r.Provider, Subject: r.Subject, Email: r.Email, EmailVerified: r.EmailVerified,
		Username: r.Username, DisplayName: r.DisplayName, GivenName: r.GivenName,
		FamilyName: r.FamilyName, AvatarURL: r.AvatarUrl,
	}
	if len(r.RawClaims) > 0 {
		if err := json.Unmarshal(r.RawClaims, &id.RawClaims); err != nil {
			return Identity{}, errs.E(errs.Internal, "sdk.Identity", err)
		}
	}
	return id, nil
}
