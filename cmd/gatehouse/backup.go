package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/backup"
	"github.com/gatehouse/gatehouse/core/backup/expressgateway"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// exportUsage is the help of `gatehouse export`.
const exportUsage = `usage: gatehouse export [--sessions] [--output FILE] --redis-url URL

Writes the store's data as JSON lines (docs/backup.md): the scope registry,
admin keys (hashes), clients and their keys (hashes), then every user in
number order with its identities, password and secret hashes, apps,
credentials (hashes; jwt secrets still sealed), integration accounts (tokens
still sealed) and, with --sessions, its live login sessions (hashes). The
export streams: memory stays flat whatever the store's size. Output goes to
stdout unless --output names a new file (mode 0600; an existing file is
refused). On a terminal, a progress line goes to stderr.

Flags also read by serve (--config, --redis-url, --redis-prefix, ...) are
accepted and mean the same.
`

// importUsage is the help of `gatehouse import`.
const importUsage = `usage: gatehouse import [--workers W] [FILE] --redis-url URL
       gatehouse import --from express-gateway --redis URL [--namespace EG] --redis-url URL

Restores the JSON lines of gatehouse export from FILE (stdin when absent or
"-"): every line is validated and written whole or not at all; a refused line
is reported with its number and the import goes on (exit status 1 at the end
if any was refused). Ids, numbers, hashes and sealed secrets are kept, and the
number counters are raised above every imported number. Importing the same
file again changes nothing. Sealed jwt secrets and integration tokens need the
exporting instance's GATEHOUSE_ENCRYPTION_KEYS to be used.

With --from express-gateway, reads an Express Gateway (1.x) Redis database
instead, at --redis (its key namespace --namespace, default EG): its scopes,
users, apps and credentials with their scopes, keeping ids and keyIds.
key-auth secrets, which Express Gateway keeps in clear, are hashed on the way
in (jwt secrets are sealed with GATEHOUSE_ENCRYPTION_KEYS); basic-auth
passwords and oauth2 secrets keep their bcrypt hashes, which /verify and the
token endpoint accept.

Flags also read by serve (--config, --redis-url, --redis-prefix, ...) are
accepted and mean the same: --redis-url is Gatehouse's store.
`

// runExport runs `gatehouse export`.
func runExport(ctx context.Context, args []string, e cliEnv) int {
	fs, flags := newStoreVerbFlags("export", exportUsage, e)
	sessions := fs.Bool("sessions", false, "also export live login sessions (their hashes)")
	output := fs.String("output", "", "write to a new `FILE` (mode 0600) instead of stdout")
	workers := fs.Int("workers", 16, "users read at once, `W`")
	pos, code := parseCLIArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		return usageError(fs, fmt.Sprintf("export takes no argument, got %q", pos[0]))
	}
	if *workers < 1 || *workers > seedMaxWorkers {
		return usageError(fs, fmt.Sprintf("--workers must be 1 to %d", seedMaxWorkers))
	}
	svc, done, code := openCLIService(ctx, "export", flags, fs, e, *workers)
	if code >= 0 {
		return code
	}
	defer done()
	out := e.stdout
	var file *os.File
	if *output != "" {
		f, err := os.OpenFile(*output, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			fmt.Fprintf(e.stderr, "gatehouse: --output: %v\n", err)
			return exitFail
		}
		file, out = f, f
	}
	start := time.Now()
	p := newProgress(e.stderr, "export")
	counts, err := backup.Export(ctx, svc, out, backup.Options{Sessions: *sessions, Workers: *workers, Progress: p.show})
	p.end()
	if file != nil {
		err = errors.Join(err, file.Close())
	}
	fmt.Fprintf(e.stderr, "export: %s in %v\n", describeCounts(counts), time.Since(start).Round(time.Millisecond))
	if err != nil {
		return reportError(e.stderr, err)
	}
	return exitOK
}

// runImport runs `gatehouse import`.
func runImport(ctx context.Context, args []string, e cliEnv) int {
	fs, flags := newStoreVerbFlags("import", importUsage, e)
	from := fs.String("from", "", "import from another system's database: express-gateway")
	egRedis := fs.String("redis", "", "with --from express-gateway: its Redis `URL`")
	namespace := fs.String("namespace", "EG", "with --from express-gateway: its key namespace")
	workers := fs.Int("workers", 16, "users written at once, `W`")
	pos, code := parseCLIArgs(fs, args)
	if code >= 0 {
		return code
	}
	switch {
	case len(pos) > 1:
		return usageError(fs, "import takes at most one FILE")
	case *workers < 1 || *workers > seedMaxWorkers:
		return usageError(fs, fmt.Sprintf("--workers must be 1 to %d", seedMaxWorkers))
	case *from != "" && *from != "express-gateway":
		return usageError(fs, fmt.Sprintf("--from %q: only express-gateway is known", *from))
	case *from != "" && len(pos) > 0:
		return usageError(fs, "--from reads a database, not a FILE")
	case *from != "" && *egRedis == "":
		return usageError(fs, "--from express-gateway needs --redis URL (Express Gateway's Redis)")
	case *from == "" && *egRedis != "":
		return usageError(fs, "--redis is for --from express-gateway; Gatehouse's store is --redis-url")
	}
	svc, done, code := openCLIService(ctx, "import", flags, fs, e, *workers)
	if code >= 0 {
		return code
	}
	defer done()
	opt := backup.Options{Workers: *workers}
	start := time.Now()
	p := newProgress(e.stderr, "import")
	opt.Progress = p.show
	var rep backup.Report
	var err error
	if *from != "" {
		rep, err = importExpressGateway(ctx, svc, *egRedis, *namespace, opt)
	} else {
		in := io.Reader(os.Stdin)
		if len(pos) == 1 && pos[0] != "-" {
			f, ferr := os.Open(pos[0])
			if ferr != nil {
				fmt.Fprintf(e.stderr, "gatehouse: %v\n", ferr)
				return exitFail
			}
			defer f.Close()
			in = f
		}
		rep, err = backup.Import(ctx, svc, bufio.NewReaderSize(in, 1<<16), opt)
	}
	p.end()
	for _, b := range rep.Bad {
		fmt.Fprintf(e.stderr, "import: refused %v\n", b)
	}
	fmt.Fprintf(e.stderr, "import: created %s; already there %s; refused %d lines; in %v\n",
		describeCounts(rep.Created), describeCounts(rep.Unchanged), len(rep.Bad), time.Since(start).Round(time.Millisecond))
	if err != nil {
		return reportError(e.stderr, err)
	}
	if len(rep.Bad) > 0 {
		return exitFail
	}
	return exitOK
}

// describeCounts is "3 users, 2 scopes" (kinds in a fixed order), or "nothing".
func describeCounts(c backup.Counts) string {
	var parts []string
	kinds := make([]string, 0, len(c))
	for k := range c {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// progress shows one line on stderr, rewritten in place, when stderr is a
// terminal; elsewhere (a log, a pipe) it stays silent.
type progress struct {
	w     io.Writer
	verb  string
	on    bool
	last  time.Time
	shown bool
}

func newProgress(w io.Writer, verb string) *progress {
	return &progress{w: w, verb: verb, on: isTerminal(w)}
}

// show rewrites the line, at most 5 times a second.
func (p *progress) show(c backup.Counts) {
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r%s: %s\x1b[K", p.verb, describeCounts(c))
	p.shown = true
}

// end ends the progress line, so what follows starts on its own.
func (p *progress) end() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

// importExpressGateway imports the Express Gateway database at url.
func importExpressGateway(ctx context.Context, svc *core.Service, url, namespace string, opt backup.Options) (backup.Report, error) {
	opts, err := redisstore.ParseURL(url)
	if err != nil {
		return backup.Report{}, fmt.Errorf("--redis: %w", err)
	}
	rdb := redisstore.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return backup.Report{}, fmt.Errorf("express gateway's redis at %s does not answer: %w", redisstore.RedactURL(url), err)
	}
	return expressgateway.Import(ctx, svc, rdb, namespace, opt)
}
