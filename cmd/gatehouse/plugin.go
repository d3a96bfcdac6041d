package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatehouse/gatehouse/plugins/email"
	"github.com/gatehouse/gatehouse/plugins/sdk"
)

// builtins are the plugins compiled into this binary, served by the hidden
// `gatehouse plugin NAME` as their own processes (SPEC §4).
var builtins = map[string]func() sdk.Plugins{
	"email": func() sdk.Plugins { return sdk.Plugins{IdentityProvider: email.New()} },
}

// runPlugin serves a built-in plugin until its host goes away. It writes nothing
// to stdout, which carries go-plugin's handshake.
func runPlugin(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: gatehouse plugin NAME (started by gatehouse serve, not by hand)")
		return exitUsage
	}
	p, ok := builtins[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gatehouse: no built-in plugin %q\n", args[0])
		return exitUsage
	}
	// The host stops its plugins itself, after draining their calls: a SIGTERM
	// sent to the whole process group must not cut them first. (A host that
	// dies still takes its plugins along: Pdeathsig and the SDK's parent watch.)
	signal.Ignore(syscall.SIGTERM, os.Interrupt)
	sdk.Serve(p())
	return exitOK
}
