package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/plugins/email"
	"github.com/gatehouse/gatehouse/plugins/github"
	"github.com/gatehouse/gatehouse/plugins/google"
	"github.com/gatehouse/gatehouse/plugins/sdk"
)

// builtinPlugin is a plugin compiled into this binary, which the hidden
// `gatehouse plugin NAME` serves as its own process. Adding one is one row of
// builtins.
type builtinPlugin struct {
	name string
	// kinds are what serve serves (core.KindIdentityProvider,
	// core.KindIntegration): an entry may narrow the plugin to one of them.
	kinds []string
	// serve returns what `gatehouse plugin NAME` serves.
	serve func() sdk.Plugins
	// callTimeout is the deadline of each call when the configuration gives none.
	callTimeout time.Duration
	// config is the configuration block of its entry in the default plugins
	// list; nil keeps it out of that list (it needs settings of the operator's).
	config json.RawMessage
	// prepare completes a configuration block with defaults only the host
	// knows (folders); nil changes nothing.
	prepare func(raw json.RawMessage, cfg Config) (json.RawMessage, error)
}

// redirectCallTimeout bounds a call to a redirect provider's plugin: a code
// exchange makes up to three requests to the provider, which the plugin
// bounds itself (its "timeout" setting, 4 s by default) below this.
const redirectCallTimeout = 10 * time.Second

// builtins are the built-in plugins, in the order of the default plugins list.
var builtins = []builtinPlugin{
	{
		name: "email", kinds: []string{core.KindIdentityProvider},
		serve: func() sdk.Plugins { return sdk.Plugins{IdentityProvider: email.New()} },
		// Above the SMTP conversation's own limit, so that a slow mail server is
		// reported by the plugin, not cut off by the host.
		callTimeout: email.DefaultSMTPTimeout + 5*time.Second,
		config:      json.RawMessage(`{"from":"Gatehouse <no-reply@localhost>"}`),
		prepare: func(raw json.RawMessage, cfg Config) (json.RawMessage, error) {
			return withDefaultOutbox(raw, filepath.Join(filepath.Dir(cfg.AdminKeyFile), "outbox"))
		},
	},
	{
		// Sign-in with GitHub and GitHub integrations; it needs the operator's
		// OAuth app, so it is in no default list. Its own timeout (4 s for
		// all the requests of one call) stays below the host's.
		name: "github", kinds: []string{core.KindIdentityProvider, core.KindIntegration},
		serve: github.New, callTimeout: redirectCallTimeout,
	},
	{
		// Sign-in with Google and Google integrations (OpenID Connect), like
		// github in no default list.
		name: "google", kinds: []string{core.KindIdentityProvider, core.KindIntegration},
		serve: google.New, callTimeout: redirectCallTimeout,
	},
}

// builtinNamed returns the built-in plugin called name.
func builtinNamed(name string) (builtinPlugin, bool) {
	for _, b := range builtins {
		if b.name == name {
			return b, true
		}
	}
	return builtinPlugin{}, false
}

// builtinNames lists every built-in plugin.
func builtinNames() []string {
	names := make([]string, len(builtins))
	for i, b := range builtins {
		names[i] = b.name
	}
	return names
}

// defaultPlugins is the plugins list when the configuration gives none: each
// built-in with a default configuration block, named after itself, serving
// every kind it serves.
func defaultPlugins() []PluginConfig {
	var list []PluginConfig
	for _, b := range builtins {
		if b.config != nil {
			list = append(list, PluginConfig{Name: b.name, Builtin: b.name, Config: b.config})
		}
	}
	return list
}

// withDefaultOutbox gives the built-in email provider an outbox folder when it
// has neither an SMTP server nor an outbox: mail then goes to .eml files.
func withDefaultOutbox(raw json.RawMessage, outbox string) (json.RawMessage, error) {
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("config is not a JSON object: %w", err)
		}
	}
	if m == nil {
		m = map[string]any{}
	}
	smtp, _ := m["smtp"].(map[string]any)
	if host, _ := smtp["host"].(string); host != "" || m["outbox"] != nil {
		return raw, nil
	}
	m["outbox"] = outbox
	return json.Marshal(m)
}

// runPlugin serves a built-in plugin until its host goes away. It writes nothing
// to stdout, which carries go-plugin's handshake.
func runPlugin(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: gatehouse plugin NAME (started by gatehouse serve, not by hand)")
		return exitUsage
	}
	b, ok := builtinNamed(args[0])
	if !ok {
		fmt.Fprintf(stderr, "gatehouse: no built-in plugin %q\n", args[0])
		return exitUsage
	}
	// The host stops its plugins itself, after draining their calls: a SIGTERM
	// sent to the whole process group must not cut them first. (A host that
	// dies still takes its plugins along: Pdeathsig and the SDK's parent watch.)
	signal.Ignore(syscall.SIGTERM, os.Interrupt)
	sdk.Serve(b.serve())
	return exitOK
}

// noEmailLink names the plugins whose entry says linkByEmail: false.
func (c Config) noEmailLink() []string {
	var names []string
	for _, p := range c.Plugins {
		if p.LinkByEmail != nil && !*p.LinkByEmail {
			names = append(names, p.Name)
		}
	}
	return names
}
