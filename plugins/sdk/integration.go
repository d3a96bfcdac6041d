package sdk

import (
	"context"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/gatehouse/gatehouse/proto/gatehouse/plugin/v1"
)

// IntegrationPlugin is the go-plugin plugin of kind KindIntegration.
// Impl is set in the plugin process only.
type IntegrationPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Integration
}

// GRPCServer registers Impl on the plugin's gRPC server.
func (p *IntegrationPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterIntegrationServer(s, &integrationServer{impl: p.Impl, host: hostConn{broker: broker}})
	return nil
}

// GRPCClient returns the host's *IntegrationClient.
func (p *IntegrationPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &IntegrationClient{broker: broker, c: pluginv1.NewIntegrationClient(cc)}, nil
}

// IntegrationClient is an integration plugin as the host uses it, over gRPC.
// Errors come back as *errs.Error with the plugin's kind and message; a
// plugin that cannot be reached answers Unavailable.
type IntegrationClient struct {
	broker *plugin.GRPCBroker
	c      pluginv1.IntegrationClient
}

var _ Integration = (*IntegrationClient)(nil)

// Configure serves host's KV and Log to the plugin over the go-plugin broker
// and sends the plugin cfg: its name, configuration block and secrets. Call
// it once after every start, before any other method.
func (c *IntegrationClient) Configure(ctx context.Context, cfg Config, host Host) error {
	return configure(ctx, c.broker, c.c.Configure, cfg, host)
}

// Describe asks the plugin what it is.
func (c *IntegrationClient) Describe(ctx context.Context) (PluginInfo, error) {
	r, err := c.c.Describe(ctx, &pluginv1.Empty{})
	if err != nil {
		return PluginInfo{}, fromStatus(err)
	}
	return pluginInfo(r), nil
}

// AuthURL asks the plugin for its authorization URL.
func (c *IntegrationClient) AuthURL(ctx context.Context, req AuthURLRequest) (string, error) {
	r, err := c.c.AuthURL(ctx, toAuthURLRequest(req))
	if err != nil {
		return "", fromStatus(err)
	}
	return r.Url, nil
}

// Exchange asks the plugin to redeem an authorization code.
func (c *IntegrationClient) Exchange(ctx context.Context, req ExchangeRequest) (IntegrationAccount, IntegrationTokens, error) {
	r, err := c.c.Exchange(ctx, toExchangeRequest(req))
	if err != nil {
		return IntegrationAccount{}, IntegrationTokens{}, fromStatus(err)
	}
	a := r.GetAccount()
	return IntegrationAccount{
		Connector: a.GetConnector(), UserIdentifier: a.GetUserIdentifier(),
		DisplayName: a.GetDisplayName(), Scopes: a.GetScopes(),
	}, tokens(r.GetTokens()), nil
}

// Refresh asks the plugin for fresh tokens.
func (c *IntegrationClient) Refresh(ctx context.Context, refreshToken string) (IntegrationTokens, error) {
	r, err := c.c.Refresh(ctx, &pluginv1.RefreshRequest{RefreshToken: refreshToken})
	if err != nil {
		return IntegrationTokens{}, fromStatus(err)
	}
	return tokens(r), nil
}

// Revoke asks the plugin to revoke tokens.
func (c *IntegrationClient) Revoke(ctx context.Context, t IntegrationTokens) error {
	_, err := c.c.Revoke(ctx, toTokens(t))
	return fromStatus(err)
}

// integrationServer serves an Integration in the plugin process.
type integrationServer struct {
	pluginv1.UnimplementedIntegrationServer
	impl Integration
	host hostConn
}

func (s *integrationServer) Configure(ctx context.Context, r *pluginv1.ConfigureRequest) (*pluginv1.Empty, error) {
	host, err := s.host.dial(r.HostBrokerId)
	if err == nil {
		err = s.impl.Configure(ctx, Config{Name: r.Name, Raw: r.Config, Secrets: r.Secrets}, host)
	}
	return answer(&pluginv1.Empty{}, err)
}

func (s *integrationServer) Describe(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.PluginInfo, error) {
	info, err := s.impl.Describe(ctx)
	return answer(toPluginInfo(info), err)
}

func (s *integrationServer) AuthURL(ctx context.Context, r *pluginv1.AuthURLRequest) (*pluginv1.AuthURLResponse, error) {
	u, err := s.impl.AuthURL(ctx, authURLRequest(r))
	return answer(&pluginv1.AuthURLResponse{Url: u}, err)
}

func (s *integrationServer) Exchange(ctx context.Context, r *pluginv1.ExchangeRequest) (*pluginv1.IntegrationExchangeResponse, error) {
	a, t, err := s.impl.Exchange(ctx, exchangeRequest(r))
	return answer(&pluginv1.IntegrationExchangeResponse{
		Account: &pluginv1.IntegrationAccount{
			Connector: a.Connector, UserIdentifier: a.UserIdentifier, DisplayName: a.DisplayName, Scopes: a.Scopes,
		},
		Tokens: toTokens(t),
	}, err)
}

func (s *integrationServer) Refresh(ctx context.Context, r *pluginv1.RefreshRequest) (*pluginv1.IntegrationTokens, error) {
	t, err := s.impl.Refresh(ctx, r.RefreshToken)
	return answer(toTokens(t), err)
}

func (s *integrationServer) Revoke(ctx context.Context, r *pluginv1.IntegrationTokens) (*pluginv1.Empty, error) {
	return answer(&pluginv1.Empty{}, s.impl.Revoke(ctx, tokens(r)))
}

func toTokens(t IntegrationTokens) *pluginv1.IntegrationTokens {
	var exp int64
	if !t.ExpiresAt.IsZero() {
		exp = t.ExpiresAt.UnixMicro()
	}
	return &pluginv1.IntegrationTokens{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, ExpiresAtMicros: exp}
}

func tokens(r *pluginv1.IntegrationTokens) IntegrationTokens {
	t := IntegrationTokens{AccessToken: r.GetAccessToken(), RefreshToken: r.GetRefreshToken(), TokenType: r.GetTokenType()}
	if us := r.GetExpiresAtMicros(); us != 0 {
		t.ExpiresAt = time.UnixMicro(us).UTC()
	}
	return t
}
