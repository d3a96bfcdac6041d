// Package sdk is what a Gatehouse plugin author imports, with its errs
// package for error kinds, and nothing of the server: the plugin contract
// (IdentityProvider, Integration and the values they exchange, the host
// services KV and HostLogger), Serve for a plugin's main, and TestProvider /
// TestIntegration, which run a plugin over a real in-process gRPC connection.
// It depends on go-plugin, gRPC, zerolog and the generated protocol code, never
// on the server's core, so a change inside the server is no change to plugins.
//
// The host (core/pluginhost) uses its go-plugin side: Handshake,
// VersionedPlugins and the client types, which implement the same interfaces
// a plugin does.
//
// Errors keep their errs.Kind and client-safe message across the process
// boundary, both ways (see toStatus). The protocol is proto/gatehouse/plugin/v1;
// docs/plugins.md describes it.
package sdk

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// Config is a plugin's configuration, sent by the host in Configure.
type Config struct {
	Name string          // the plugin's name in the host's configuration
	Raw  json.RawMessage // the plugin's configuration block, JSON, for the plugin to decode
	// Secrets are the block's "...Env" settings, resolved by the host from its
	// own environment and keyed by the setting's dotted path without "Env":
	// {"smtp":{"passwordEnv":"SMTP_PASSWORD"}} gives Secrets["smtp.password"].
	Secrets map[string]string
}

// Host is what the host serves to a plugin: its key-value namespace in the
// host's store and its log. Calls reach the host over gRPC and keep the
// caller's context.
type Host struct {
	KV  KV
	Log HostLogger
}

// Plugins are what a plugin binary serves: either kind, or both.
type Plugins struct {
	IdentityProvider IdentityProvider
	Integration      Integration
}

// Handshake is the go-plugin handshake of Gatehouse plugins. The magic cookie
// only keeps a plugin from being started by hand; it is no security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "GATEHOUSE_PLUGIN",
	MagicCookieValue: "3b0c5e1f9d7a4c28a6e2f04b71d93c5e",
}

// ProtocolVersion is the plugin protocol version this SDK speaks
// (proto/gatehouse/plugin/v1).
const ProtocolVersion = 1

// VersionedPlugins is the host's plugin set, by protocol version, for
// plugin.ClientConfig; the keys are KindIdentityProvider and
// KindIntegration. go-plugin refuses a plugin that speaks no version in it.
var VersionedPlugins = map[int]plugin.PluginSet{
	ProtocolVersion: {
		KindIdentityProvider: &IdentityProviderPlugin{},
		KindIntegration:      &IntegrationPlugin{},
	},
}

// Serve serves p to the host that started this process and returns only when
// the host is done with it. Call it from main, and write nothing to stdout
// before: stdout carries go-plugin's handshake. Serve exits the process when
// the host goes away, even if it was killed without a word.
func Serve(p Plugins) {
	log := Logger() // before plugin.Serve, which swaps os.Stderr for a pipe
	set := plugin.PluginSet{}
	if p.IdentityProvider != nil {
		set[KindIdentityProvider] = &IdentityProviderPlugin{Impl: p.IdentityProvider}
	}
	if p.Integration != nil {
		set[KindIntegration] = &IntegrationPlugin{Impl: p.Integration}
	}
	if len(set) == 0 {
		log.Error().Msg("sdk.Serve: no plugin to serve")
		os.Exit(1)
	}
	go watchParent(500*time.Millisecond, os.Getppid, func() {
		log.Warn().Msg("the host process is gone; exiting")
		os.Exit(0)
	})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: set},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}

// watchParent calls gone once the parent process id changes: a host killed
// with SIGKILL leaves its plugins to PID 1 (or a subreaper).
func watchParent(interval time.Duration, ppid func() int, gone func()) {
	parent := ppid()
	for range time.Tick(interval) {
		if ppid() != parent {
			gone()
			return
		}
	}
}

// hclogTime is the timestamp layout go-plugin parses in a plugin's JSON log lines.
const hclogTime = "2006-01-02T15:04:05.000000Z07:00"

var stderrLogger = sync.OnceValue(func() *zerolog.Logger {
	l := newLogger(os.Stderr)
	return &l
})

// Logger returns the plugin process's logger: JSON lines on stderr under
// hclog's keys ("@level", "@message", "@timestamp"), which go-plugin on the
// host re-logs at their level. It sets zerolog's global field names, so it
// belongs in a plugin process only, never in the host's. Prefer Host.Log, which
// lands in the host's log directly; this logger is for before Configure.
func Logger() *zerolog.Logger { return stderrLogger() }

func newLogger(w io.Writer) zerolog.Logger {
	zerolog.LevelFieldName = "@level"
	zerolog.MessageFieldName = "@message"
	zerolog.TimestampFieldName = "@timestamp"
	zerolog.TimeFieldFormat = hclogTime
	return zerolog.New(w).With().Timestamp().Logger()
}

// Unsupported answers NotFound ("not supported by this plugin") to every
// method of IdentityProvider and Integration but Describe and Configure. Embed
// it and implement only what the plugin supports. An Integration must still
// implement Exchange: its signature differs from IdentityProvider's.
type Unsupported struct{}

func unsupported(method string) error {
	return errs.Errorf(errs.NotFound, "sdk."+method, "%s is not supported by this plugin", method)
}

// SendVerification answers NotFound.
func (Unsupported) SendVerification(context.Context, MailRequest) error {
	return unsupported("SendVerification")
}

// ConfirmVerification answers NotFound.
func (Unsupported) ConfirmVerification(context.Context, string) (MailSubject, error) {
	return MailSubject{}, unsupported("ConfirmVerification")
}

// SendPasswordReset answers NotFound.
func (Unsupported) SendPasswordReset(context.Context, MailRequest) error {
	return unsupported("SendPasswordReset")
}

// ConfirmPasswordReset answers NotFound.
func (Unsupported) ConfirmPasswordReset(context.Context, string) (MailSubject, error) {
	return MailSubject{}, unsupported("ConfirmPasswordReset")
}

// CheckPassword answers NotFound.
func (Unsupported) CheckPassword(context.Context, string, string) (Identity, error) {
	return Identity{}, unsupported("CheckPassword")
}

// AuthURL answers NotFound.
func (Unsupported) AuthURL(context.Context, AuthURLRequest) (string, error) {
	return "", unsupported("AuthURL")
}

// Exchange answers NotFound (IdentityProvider's Exchange).
func (Unsupported) Exchange(context.Context, ExchangeRequest) (Identity, error) {
	return Identity{}, unsupported("Exchange")
}

// Refresh answers NotFound.
func (Unsupported) Refresh(context.Context, string) (IntegrationTokens, error) {
	return IntegrationTokens{}, unsupported("Refresh")
}

// Revoke answers NotFound.
func (Unsupported) Revoke(context.Context, IntegrationTokens) error {
	return unsupported("Revoke")
}
