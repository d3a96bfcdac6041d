// Command gatehouse is the Gatehouse server and its admin CLI: `gatehouse serve`
// (the default) runs the admin and public listeners; `admin-keys` and `doctor`
// talk to a running instance's admin API; `encryption-key` prints a new key for
// GATEHOUSE_ENCRYPTION_KEYS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usage is the top-level help.
const usage = `Gatehouse: users, applications and credentials for an API gateway.

usage:
  gatehouse [serve] [flags]     run the server (the default command; see serve -h)
  gatehouse admin-keys create --name NAME [--scope admin|read|publicala|gaio|qloud]
  gatehouse admin-keys list
  gatehouse admin-keys revoke ID
  gatehouse clients create NAME | list | new-key ID | revoke-key ID KEY_ID | delete ID
                                GL Connectors clients (tenants) and their keys
  gatehouse doctor [--repair]   find (and remove) leftovers in the store
  gatehouse encryption-key [--id ID]
                                print a new key for GATEHOUSE_ENCRYPTION_KEYS
                                (see encryption-key -h for rotation)
  gatehouse seed --users N [--prefix NAME] [--keys-file FILE] --redis-url URL
                                write N users with a key each into a real Redis
                                (load tests; see seed -h)
  gatehouse export [--sessions] [--output FILE] --redis-url URL
                                write the store's data as JSON lines (backups,
                                moves; see export -h and docs/backup.md)
  gatehouse import [FILE] --redis-url URL
  gatehouse import --from express-gateway --redis URL [--namespace EG] --redis-url URL
                                restore an export, or move an Express Gateway
                                database over (see import -h)
  gatehouse dev fake-providers  run a fake Google and GitHub to try sign-ins locally
  gatehouse version | --version  the version, commit and Go toolchain of this binary
  gatehouse help

serve reads configs/gatehouse.yaml when present (or --config FILE /
GATEHOUSE_CONFIG); every setting can be overridden by a GATEHOUSE_*
environment variable and by a flag (flags win). Secrets come only from the
environment: GATEHOUSE_ADMIN_KEY, GATEHOUSE_ENCRYPTION_KEYS (make one with
gatehouse encryption-key).

admin-keys and doctor call a running instance's admin API at --admin-url
(GATEHOUSE_ADMIN_URL, default http://127.0.0.1:9876) with the admin key in
GATEHOUSE_ADMIN_KEY. Exit status: 0 success, 1 failure, 2 usage error.
`

func main() {
	setLogGlobals()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal during the graceful shutdown kills at once
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command line (without the program name) and returns the exit
// status. stderr is a file so that serve can tell whether it is a terminal.
func run(ctx context.Context, args []string, stdout io.Writer, stderr *os.File) int {
	cmd, rest := "serve", args
	switch {
	case len(args) == 0:
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		cmd = "help"
	case args[0] == "-version" || args[0] == "--version":
		cmd = "version"
	case !strings.HasPrefix(args[0], "-"):
		cmd, rest = args[0], args[1:]
	}
	e := cliEnv{stdout: stdout, stderr: stderr, env: os.LookupEnv}
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stderr, os.LookupEnv)
	case "admin-keys":
		return runAdminKeys(ctx, rest, e)
	case "clients":
		return runClients(ctx, rest, e)
	case "doctor":
		return runDoctor(ctx, rest, e)
	case "encryption-key":
		return runEncryptionKey(rest, e, time.Now)
	case "dev":
		return runDev(ctx, rest, e)
	case "seed":
		return runSeed(ctx, rest, e)
	case "export":
		return runExport(ctx, rest, e)
	case "import":
		return runImport(ctx, rest, e)
	case "version":
		printVersion(stdout, currentBuild())
		return exitOK
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "plugin": // hidden: how serve runs a built-in plugin as its own process
		return runPlugin(rest, stderr)
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// runServe loads the configuration (file < environment < flags), validates it,
// builds the logger and runs the server until ctx ends.
func runServe(ctx context.Context, args []string, stderr *os.File, env lookupEnv) int {
	cfg, code := serveConfig(args, stderr, env)
	if code >= 0 {
		return code
	}
	log := newLogger(cfg, stderr)
	log.Info().Str("config", cfg.File).Str("version", buildVersion()).Msg("starting gatehouse")
	for _, w := range cfg.Warnings() {
		log.Warn().Msg(w)
	}
	if err := serve(ctx, cfg, log, stderr); err != nil {
		log.Error().Err(err).Msg("gatehouse stopped")
		return exitFail
	}
	log.Info().Msg("gatehouse stopped")
	return exitOK
}

// serveConfig parses serve's flags and returns the valid configuration; code is
// -1 when it is usable, else the exit status after a message on stderr.
func serveConfig(args []string, stderr io.Writer, env lookupEnv) (Config, int) {
	fs := flag.NewFlagSet("gatehouse serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: gatehouse [serve] [flags]\n\nEach flag overrides the environment variable in brackets, which overrides the file.\n\n")
		fs.PrintDefaults()
	}
	flags := newConfigFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, exitOK
		}
		return Config{}, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse: serve takes no argument, got %q\n", fs.Arg(0))
		return Config{}, exitUsage
	}
	cfg, err := load(flags.configPath(fs, env), env)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse: %v\n", err)
		return Config{}, exitFail
	}
	flags.apply(&cfg)
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "gatehouse: %v\n", err)
		return Config{}, exitFail
	}
	return cfg, -1
}
