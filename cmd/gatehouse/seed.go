package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/backup"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// seedUsage is the help of `gatehouse seed`.
const seedUsage = `usage: gatehouse seed --users N [--prefix NAME] [--workers W] [--keys-file FILE] --redis-url URL

Writes N users, NAME-1 to NAME-N (default prefix "seed"; firstname "Seed",
lastname the username, as the default model requires), each with one
key-auth credential, for load tests and capacity planning. They are written by
the same service and store code as POST /users and POST /credentials (the
same claims, numbers, indexes and checks), by W concurrent workers (default
64), so the data is exactly what the server writes. A user that already
exists is skipped, so an interrupted seed can be run again.

The keys are not printed: --keys-file FILE writes "USERNAME<TAB>USERID<TAB>KEYID:SECRET"
lines (the last field is what a gateway sends as the apikey) to a new file of
mode 0600 (an existing file is refused).

seed needs a real Redis (--redis-url or GATEHOUSE_REDIS_URL, with the
server's --redis-prefix): the embedded default lives inside the server
process, where nothing else can reach it.

Flags also read by serve (--config, --redis-prefix, --models-path, ...) are
accepted and mean the same.
`

// seedOptions are what seedUsers writes.
type seedOptions struct {
	users   int
	prefix  string // usernames are prefix-1 ... prefix-users
	workers int
	keys    io.Writer // "username\tuserId\tkeyId:keySecret" lines; nil: not kept
}

// seedResult counts what seedUsers did.
type seedResult struct {
	created, existed int64
	took             time.Duration
}

// seedDefaults of the flags.
const (
	seedDefaultPrefix  = "seed"
	seedDefaultWorkers = 64
	seedMaxWorkers     = 1024
)

// runSeed runs `gatehouse seed`.
func runSeed(ctx context.Context, args []string, e cliEnv) int {
	fs, flags := newStoreVerbFlags("seed", seedUsage, e)
	users := fs.Int("users", 0, "how many users to write, `N` (required)")
	prefix := fs.String("prefix", seedDefaultPrefix, "usernames are `NAME`-1 ... NAME-N")
	workers := fs.Int("workers", seedDefaultWorkers, "concurrent writers, `W`")
	keysFile := fs.String("keys-file", "", "new `FILE` (mode 0600) receiving each user's key; none by default")
	pos, code := parseCLIArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		return usageError(fs, fmt.Sprintf("seed takes no argument, got %q", pos[0]))
	}
	switch {
	case *users < 1:
		return usageError(fs, "--users must be at least 1")
	case *workers < 1 || *workers > seedMaxWorkers:
		return usageError(fs, fmt.Sprintf("--workers must be 1 to %d", seedMaxWorkers))
	}
	if err := core.ValidateUsername(*prefix + "-1"); err != nil {
		return usageError(fs, fmt.Sprintf("--prefix %q does not make valid usernames: %v", *prefix, err))
	}
	svc, done, code := openCLIService(ctx, "seed", flags, fs, e, *workers)
	if code >= 0 {
		return code
	}
	defer done()

	o := seedOptions{users: *users, prefix: *prefix, workers: *workers}
	if *keysFile != "" {
		f, err := os.OpenFile(*keysFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			fmt.Fprintf(e.stderr, "gatehouse: --keys-file: %v\n", err)
			return exitFail
		}
		w := bufio.NewWriterSize(f, 1<<16)
		defer func() {
			if err := errors.Join(w.Flush(), f.Close()); err != nil {
				fmt.Fprintf(e.stderr, "gatehouse: --keys-file: %v\n", err)
			}
		}()
		o.keys = w
	}
	res, err := seedUsers(ctx, svc, o, func(done int64) {
		fmt.Fprintf(e.stderr, "seed: %d of %d users\n", done, o.users)
	})
	fmt.Fprintf(e.stderr, "seed: %d users created, %d existed already, in %v (%.0f users/s)\n",
		res.created, res.existed, res.took.Round(time.Millisecond), float64(res.created)/max(res.took.Seconds(), 1e-9))
	if err != nil {
		return reportError(e.stderr, err)
	}
	return exitOK
}

// seedProgressEvery is how often seedUsers reports progress.
const seedProgressEvery = 5 * time.Second

// seedUsers writes o.users users with one key-auth credential each through
// svc, as the admin API would, from o.workers goroutines. A user whose
// username is taken is counted as existing and gets no new key. The first
// other error (after backup.Retry's tries) stops the workers and is returned. progress (if not nil) is
// called every few seconds with the number of users done.
func seedUsers(ctx context.Context, svc *core.Service, o seedOptions, progress func(done int64)) (seedResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next, created, existed atomic.Int64
		keysMu                 sync.Mutex
		keysErr                error
		wg                     sync.WaitGroup
	)
	start := time.Now()
	for range min(o.workers, o.users) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > int64(o.users) {
					return
				}
				name := o.prefix + "-" + strconv.FormatInt(i, 10)
				var u core.User
				err := backup.Retry(ctx, func() (err error) {
					u, err = svc.CreateUser(ctx, core.Fields{"username": name, "firstname": "Seed", "lastname": name}, core.NativeUsers)
					return err
				})
				if core.KindOf(err) == core.Conflict {
					existed.Add(1)
					continue
				}
				if err != nil {
					cancel(fmt.Errorf("user %s: %w", name, err))
					return
				}
				var nc core.NewCredential
				err = backup.Retry(ctx, func() (err error) {
					nc, err = svc.CreateCredential(ctx, core.CredentialRequest{ConsumerID: u.ID, Type: string(core.KeyAuth)})
					return err
				})
				if err != nil {
					cancel(fmt.Errorf("key-auth credential of %s: %w", name, err))
					return
				}
				created.Add(1)
				if o.keys != nil {
					keysMu.Lock()
					if keysErr == nil {
						_, keysErr = fmt.Fprintf(o.keys, "%s\t%s\t%s:%s\n", name, u.ID, nc.ID, nc.KeySecret)
						if keysErr != nil {
							cancel(fmt.Errorf("keys file: %w", keysErr))
						}
					}
					keysMu.Unlock()
				}
			}
		})
	}
	stop := make(chan struct{})
	var ticker sync.WaitGroup
	if progress != nil {
		ticker.Go(func() {
			t := time.NewTicker(seedProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					progress(created.Load() + existed.Load())
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	ticker.Wait()
	res := seedResult{created: created.Load(), existed: existed.Load(), took: time.Since(start)}
	if err := context.Cause(ctx); err != nil {
		return res, fmt.Errorf("seeding stopped: %w", err)
	}
	return res, nil
}

// newStoreVerbFlags returns the FlagSet of a verb that opens the store itself
// (seed, export, import), with serve's configuration flags and help text as
// its usage.
func newStoreVerbFlags(verb, help string, e cliEnv) (*flag.FlagSet, *configFlags) {
	fs := flag.NewFlagSet("gatehouse "+verb, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help+"\n")
		fs.PrintDefaults()
	}
	return fs, newConfigFlags(fs)
}

// openCLIService opens the store a CLI verb (seed, export, import) works on
// directly, with a connection pool of at least workers, and the service over
// it, as serve builds it (models, hasher, keyring). code is -1 when they are
// usable, else the exit status after a message on stderr; done closes the
// store.
func openCLIService(ctx context.Context, verb string, flags *configFlags, fs *flag.FlagSet, e cliEnv, workers int) (svc *core.Service, done func(), code int) {
	cfg, err := load(flags.configPath(fs, e.env), e.env)
	if err != nil {
		fmt.Fprintf(e.stderr, "gatehouse: %v\n", err)
		return nil, nil, exitFail
	}
	flags.apply(&cfg) // not Validate: it checks serve's settings (listeners, key file), which these verbs do not use
	if cfg.Redis.Target() == "" {
		fmt.Fprintf(e.stderr, "gatehouse: %s needs a real Redis: set --redis-url or GATEHOUSE_REDIS_URL (the embedded default lives inside the server process)\n", verb)
		return nil, nil, exitUsage
	}
	for _, ch := range cfg.Redis.waitChecks() {
		if ch.bad {
			fmt.Fprintf(e.stderr, "gatehouse: %s\n", ch.msg)
			return nil, nil, exitUsage
		}
	}
	opts, err := redisstore.ParseURL(cfg.Redis.Target())
	if err != nil {
		fmt.Fprintf(e.stderr, "gatehouse: redis.url: %v\n", err)
		return nil, nil, exitFail
	}
	opts.PoolSize = max(opts.PoolSize, workers)
	store := redisstore.New(redisstore.NewClient(opts), cfg.Redis.StoreOptions())
	if err := pingUntil(ctx, store, startupPing); err != nil {
		store.Close()
		fmt.Fprintf(e.stderr, "gatehouse: redis at %s does not answer: %v\n", redisstore.RedactURL(cfg.Redis.Target()), err)
		return nil, nil, exitFail
	}
	svc, err = newService(cfg, store, store.Limiter(), nil, false, zerolog.Nop())
	if err != nil {
		store.Close()
		fmt.Fprintf(e.stderr, "gatehouse: %v\n", err)
		return nil, nil, exitFail
	}
	return svc, func() { store.Close() }, -1
}
