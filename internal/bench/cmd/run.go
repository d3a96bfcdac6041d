package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/bench"
)

// prefix is the Redis key prefix of the measured Gatehouse (serve's default).
const prefix = "gh:"

// beforePrefix is the Redis key prefix of the code before the speed work.
const beforePrefix = "ghbefore:"

// listRow is the name of the list row.
const listRow = "GET /users?count=100"

// hitRow is the name of the key-auth hit's row.
const hitRow = "/verify key-auth, one key (hit)"

// benchAdminKey is the measured server's GATEHOUSE_ADMIN_KEY: it opens only
// the throwaway store of this run.
const benchAdminKey = "bench-admin-key-0123456789"

// Recorded figures, printed when they cannot be measured in the run.
const (
	// egPostRecorded is Express Gateway 1.16.11's POST /users on Redis, on a
	// 2-core machine of this kind (the middle of 4.0–5.5 k/s).
	egPostRecorded = 4750.0
	// listBaseline is GET /users?count=100 in pages/s before this work, measured
	// by this program on the machine of docs/performance.md.
	listBaseline = 1200.0
)

// row is one line of the table: a load, and what its rate is compared with.
type row struct {
	name       string
	load       func(round int) bench.Load
	unit       string                            // "req/s", or "pages/s" for the list page
	compare    func() (string, float64, float64) // the reference's name, its rate, and the target ratio (0: none)
	against    **row                             // the reference when it is a row of the run (nil or *nil: none)
	p99Against *row                              // a row whose p99 this row's is held to (≤ 1.2 ×), or nil
	note       func(bench.Result) string         // a line printed under the table, or ""
	results    []bench.Result
	pid        int // the process serving it (0: unknown)
}

func (r *row) median() bench.Result {
	if len(r.results) == 0 {
		return bench.Result{}
	}
	med := func(get func(bench.Result) float64) float64 {
		v := make([]float64, len(r.results))
		for i, x := range r.results {
			v[i] = get(x)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rate := med(bench.Result.Rate)
	return bench.Result{
		Requests: int(rate * 1000), Elapsed: 1000 * time.Second, // a rate of rate
		P50:    time.Duration(med(func(x bench.Result) float64 { return float64(x.P50) })),
		P99:    time.Duration(med(func(x bench.Result) float64 { return float64(x.P99) })),
		Errors: int(med(func(x bench.Result) float64 { return float64(x.Errors) })),
	}
}

func run(ctx context.Context, o options) error {
	began := time.Now()
	if o.out == "" {
		var err error
		if o.out, err = os.MkdirTemp("", "gatehouse-bench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	var p procs
	defer p.stopAll()
	if o.gctrace {
		p.env = []string{"GODEBUG=" + strings.TrimPrefix(os.Getenv("GODEBUG")+",gctrace=1", ",")}
	}

	step := func(s string) { fmt.Fprintf(os.Stderr, "[%5.1fs] %s\n", time.Since(began).Seconds(), s) }
	// The code before the speed work builds meanwhile: the list row's reference.
	type built struct {
		bin string
		err error
	}
	beforeBuilt := make(chan built, 1)
	if o.before && (o.only == nil || o.only.MatchString(listRow)) {
		go func() {
			bin, err := buildBefore(ctx, o.out)
			beforeBuilt <- built{bin, err}
		}()
	} else {
		beforeBuilt <- built{err: errors.New("not asked for")}
	}
	step("building gatehouse")
	bin := filepath.Join(o.out, "gatehouse")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gatehouse").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/gatehouse (run from the repository's root): %v\n%s", err, out)
	}
	redisAddr, err := startRedis(ctx, &p, o.out)
	if err != nil {
		return err
	}
	redisPid := p.lastPid()
	// The process serving each address, whose CPU time a row reports.
	pidOf := map[string]int{}
	step("redis-server on " + redisAddr)

	adminAddr, publicAddr, err := startGatehouse(ctx, &p, bin, o.out, redisAddr, "gatehouse")
	if err != nil {
		return err
	}
	pidOf[adminAddr], pidOf[publicAddr] = p.lastPid(), p.lastPid()
	step("gatehouse serve: admin " + adminAddr + ", public " + publicAddr)
	// A second instance on the same Redis with its /verify cache off: every
	// verification there is a miss, whatever the key's turn.
	_, uncachedAddr, err := startGatehouse(ctx, &p, bin, o.out, redisAddr, "gatehouse-uncached", "GATEHOUSE_VERIFY_CACHE_SIZE=0")
	if err != nil {
		return err
	}
	pidOf[uncachedAddr] = p.lastPid()
	step("gatehouse serve without its /verify cache: public " + uncachedAddr)
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	if err := rdb.HSet(ctx, bench.CeilingKey, bench.CeilingRecord).Err(); err != nil {
		return err
	}
	a := admin{base: "http://" + adminAddr, key: benchAdminKey, client: &http.Client{Timeout: 30 * time.Second}}
	step(fmt.Sprintf("seeding %d users and %d keys through the admin API", o.users, o.missKeys))
	s, err := seed(ctx, a, "http://"+publicAddr, o.users, o.missKeys)
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	var beforeAddr string
	if b := <-beforeBuilt; b.err != nil {
		step("the code before the speed work not measured: " + b.err.Error())
	} else {
		beforeAdmin, _, err := startGatehouse(ctx, &p, b.bin, o.out, redisAddr, "gatehouse-before", "GATEHOUSE_REDIS_PREFIX="+beforePrefix)
		if err != nil {
			return err
		}
		pidOf[beforeAdmin] = p.lastPid()
		step(fmt.Sprintf("gatehouse serve at %.12s (before the speed work): admin %s; seeding %d users", beforeCommit, beforeAdmin, o.users))
		if err := seedUsers(ctx, admin{base: "http://" + beforeAdmin, key: benchAdminKey, client: a.client}, o.users); err != nil {
			return fmt.Errorf("seeding the code before: %w", err)
		}
		beforeAddr = beforeAdmin
	}
	// A running instance has located the owners of the keys it sees (a
	// keyId's owner is remembered after its first use): the miss row
	// measures that steady state, not first uses.
	step(fmt.Sprintf("presenting each of the %d keys once to the instance without the cache", len(s.missKeys)))
	if err := presentOnce(ctx, "http://"+uncachedAddr+"/verify", s.missKeys); err != nil {
		return err
	}
	bare, err := startChild(&p, o.out, "bare", redisAddr)
	if err != nil {
		return err
	}
	hget, err := startChild(&p, o.out, "hgetall", redisAddr)
	if err != nil {
		return err
	}
	pidOf[bare.addr], pidOf[hget.addr] = bare.cmd.Process.Pid, hget.cmd.Process.Pid
	var eg *egServer
	if o.eg {
		step("starting Express Gateway on the same Redis")
		if eg, err = startEG(ctx, &p, o.out, redisAddr); err != nil {
			step("Express Gateway not measured: " + err.Error())
			eg = nil
		} else {
			pidOf[eg.adminAddr] = p.lastPid()
		}
	}

	rows := buildRows(o, s, bare.addr, hget.addr, publicAddr, uncachedAddr, adminAddr, beforeAddr, eg)
	if o.only != nil {
		rows = slices.DeleteFunc(rows, func(r *row) bool { return !o.only.MatchString(r.name) })
	}
	for round := range o.rounds {
		for _, r := range rows {
			step(fmt.Sprintf("round %d/%d: %s", round+1, o.rounds, r.name))
			l := r.load(round)
			l.CPU = bench.ProcessCPU(pidOf[l.Addr], redisPid, os.Getpid())
			r.pid = pidOf[l.Addr]
			res, err := bench.Run(ctx, l)
			if err != nil {
				return err
			}
			if res.Errors > 0 {
				step(fmt.Sprintf("  %d errors, first: %s", res.Errors, res.FirstError))
			}
			r.results = append(r.results, res)
		}
	}
	printTable(os.Stdout, o, rows)
	printCPU(os.Stdout, rows)
	if o.gctrace {
		printGC(os.Stdout, &p, rows)
	}

	verify := bench.Load{Conns: o.conns, Warmup: o.warmup, Duration: 2 * o.duration,
		Request: bench.Get("bench", "/verify", "x-api-key: "+s.key), Status: 200}
	type profile struct{ mode, what, how, file string }
	const copied = "a copy of the public API on the same Redis"
	profiles := []profile{
		{"profiled", "a miss: the cache off", copied, "verify-miss.cpu.pprof"},
		{"profiled-hit", "a hit: the cache on", copied, "verify-hit.cpu.pprof"},
	}
	if o.profileCeiling {
		profiles = append(profiles, profile{"hgetall", "the HGETALL ceiling", "one more, on the same Redis", "hgetall.cpu.pprof"})
	}
	if !o.profile {
		profiles = nil
	}
	for _, pr := range profiles {
		step("profiling /verify key-auth under load, " + pr.what + " (" + pr.how + ")")
		prof := filepath.Join(o.out, pr.file)
		if err := profileLoad(ctx, &p, o, pr.mode, redisAddr, prof, verify); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		cumTop, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=100000", prof).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof: %v\n%s", err, cumTop)
		}
		fmt.Printf("\nCPU profile of /verify key-auth under load, %s (%s): share of the samples in each part and below it\n\n", pr.what, prof)
		for _, sh := range bench.SummariseProfile(string(cumTop)) {
			fmt.Printf("    %-66s %5.1f %%\n", sh.Name, sh.Percent)
		}
		if err := printFlatTop(ctx, prof); err != nil {
			return err
		}
	}
	if o.profileAdmin {
		if err := profileAdmin(ctx, &p, o, redisAddr, s); err != nil {
			return err
		}
	}
	fmt.Printf("\nLogs and the profile are in %s. Total time %.0f s.\n", o.out, time.Since(began).Seconds())
	return nil
}

// presentOnce verifies each key once at url, 16 at a time.
func presentOnce(ctx context.Context, url string, keys []string) error {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	next := make(chan string)
	errc := make(chan error, 16)
	for range 16 {
		go func() {
			var first error
			for k := range next {
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				req.Header.Set("x-api-key", k)
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("GET /verify: %s", resp.Status)
					}
				}
				if first == nil {
					first = err
				}
			}
			errc <- first
		}()
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	var err error
	for range 16 {
		err = cmp(err, <-errc)
	}
	return err
}

// startGatehouse runs `gatehouse serve` on redisAddr with the default
// settings (argon2id included) on free loopback ports, and env besides;
// its log is dir/NAME.log.
func startGatehouse(ctx context.Context, p *procs, bin, dir, redisAddr, name string, env ...string) (string, string, error) {
	var last error
	for range 3 { // ports found free may be taken before gatehouse binds them
		adminAddr, err := freeAddr()
		if err != nil {
			return "", "", err
		}
		publicAddr, err := freeAddr()
		if err != nil {
			return "", "", err
		}
		log, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			return "", "", err
		}
		cmd := exec.Command(bin, "serve")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"GATEHOUSE_ADMIN_KEY="+benchAdminKey,
			"GATEHOUSE_REDIS_URL=redis://"+redisAddr+"/0",
			"GATEHOUSE_REDIS_PREFIX="+prefix,
			"GATEHOUSE_ADMIN_ADDR="+adminAddr,
			"GATEHOUSE_PUBLIC_ADDR="+publicAddr,
			"GATEHOUSE_LOG_FORMAT=json",
			"GATEHOUSE_ADMIN_KEY_FILE="+filepath.Join(dir, name+"-admin-key"),
		)
		cmd.Env = append(cmd.Env, env...)
		cmd.Stdout, cmd.Stderr = log, log
		if err := p.start(cmd); err != nil {
			return "", "", err
		}
		if last = waitHTTP(ctx, "http://"+publicAddr+"/readyz", 20*time.Second); last == nil {
			return adminAddr, publicAddr, nil
		}
		p.stopAll()
	}
	return "", "", fmt.Errorf("gatehouse did not start (see %s/%s.log): %w", dir, name, last)
}

func buildRows(o options, s seeded, bareAddr, hgetAddr, publicAddr, uncachedAddr, adminAddr, beforeAddr string, eg *egServer) []*row {
	const host = "bench"
	load := func(addr string, req bench.Request, status int) func(int) bench.Load {
		return func(int) bench.Load {
			return bench.Load{Addr: addr, Conns: o.conns, Warmup: o.warmup, Duration: o.duration, Request: req, Status: status}
		}
	}
	adminHdr := "X-Api-Key: " + benchAdminKey
	var bare, hget, keyHit, egPost *row
	rate := func(r **row) func() float64 { return func() float64 { return (*r).median().Rate() } }
	ref := func(name string, r **row, target float64) func() (string, float64, float64) {
		return func() (string, float64, float64) { return name, rate(r)(), target }
	}
	bare = &row{name: "bare ceiling (fixed JSON)", unit: "req/s", load: load(bareAddr, bench.Get(host, "/verify"), 200)}
	hget = &row{name: "HGETALL ceiling", unit: "req/s", load: load(hgetAddr, bench.Get(host, "/verify"), 200)}
	hitReq := bench.Get(host, "/verify", "x-api-key: "+s.key)
	keyHit = &row{name: hitRow, unit: "req/s", load: load(publicAddr, hitReq, 200),
		compare: ref("bare", &bare, 0.8), against: &bare, p99Against: bare}
	miss := s.missKeys
	keyMiss := &row{name: fmt.Sprintf("/verify key-auth, cache off, %d keys (miss)", len(miss)), unit: "req/s",
		load: func(round int) bench.Load {
			// Each round goes on where the last stopped: a key comes back only
			// after every other key has been presented.
			start := uint64(round) * 1_000_003
			heads := make([][]byte, len(miss))
			for i, k := range miss {
				heads[i] = []byte("GET /verify HTTP/1.1\r\nHost: " + host + "\r\nx-api-key: " + k + "\r\n\r\n")
			}
			req := func(buf []byte, n uint64) []byte { return append(buf, heads[(start+n)%uint64(len(heads))]...) }
			return load(uncachedAddr, req, 200)(round)
		},
		compare: ref("HGETALL", &hget, 0.8), against: &hget}
	basic := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("bench:"+s.basicPass))
	ids := s.firstUsers
	var before *row
	if beforeAddr != "" {
		before = &row{name: fmt.Sprintf("%s at %.7s (before)", listRow, beforeCommit), unit: "pages/s",
			load: load(beforeAddr, bench.Get(host, "/users?count=100", adminHdr), 200)}
	}
	rows := []*row{bare, hget, keyHit}
	if o.sameRate > 0 {
		// The same request rate for both, a fraction of what the hit served
		// in this round's closed loop (measured just before): the bare
		// server runs further below its capacity, as it would behind the
		// same gateway traffic.
		atRate := func(addr string, req bench.Request) func(int) bench.Load {
			return func(round int) bench.Load {
				l := load(addr, req, 200)(round)
				l.Rate = o.sameRate * keyHit.results[round].Rate()
				return l
			}
		}
		at := fmt.Sprintf(" at %.2g × the hit's rate", o.sameRate)
		sameBare := &row{name: "bare ceiling" + at, unit: "req/s", load: atRate(bareAddr, bench.Get(host, "/verify"))}
		rows = append(rows, sameBare, &row{name: "/verify key-auth hit" + at, unit: "req/s", load: atRate(publicAddr, hitReq), p99Against: sameBare})
	}
	rows = append(rows, []*row{keyMiss,
		{name: "/verify session bearer", unit: "req/s", load: load(publicAddr, bench.Get(host, "/verify", "Authorization: Bearer "+s.session), 200),
			compare: ref("key-auth hit", &keyHit, 0.9), against: &keyHit},
		{name: "/verify Basic (remembered)", unit: "req/s", load: load(publicAddr, bench.Get(host, "/verify", basic), 200),
			compare: ref("key-auth hit", &keyHit, 0.9), against: &keyHit},
		{name: "GET /users/{id}", unit: "req/s", load: func(round int) bench.Load {
			heads := make([][]byte, len(ids))
			for i, id := range ids {
				heads[i] = []byte("GET /users/" + id + " HTTP/1.1\r\nHost: " + host + "\r\n" + adminHdr + "\r\n\r\n")
			}
			return load(adminAddr, func(buf []byte, n uint64) []byte { return append(buf, heads[n%uint64(len(heads))]...) }, 200)(round)
		}, compare: ref("HGETALL", &hget, 0.8), against: &hget},
		{name: "POST /users", unit: "req/s", load: func(round int) bench.Load {
			body := func(n uint64) []byte {
				return fmt.Appendf(nil, `{"username":"p%d-%d","firstname":"P","lastname":"U","email":"p%d-%d@example.com"}`, round, n, round, n)
			}
			return load(adminAddr, bench.Post(host, "/users", body, adminHdr), 200)(round)
		}, against: &egPost, compare: func() (string, float64, float64) {
			if egPost != nil {
				return "Express Gateway", rate(&egPost)(), 2
			}
			return "Express Gateway (recorded figure)", egPostRecorded, 2
		}},
		{name: listRow, unit: "pages/s", load: load(adminAddr, bench.Get(host, "/users?count=100", adminHdr), 200), against: &before,
			compare: func() (string, float64, float64) {
				if before != nil {
					return fmt.Sprintf("%.7s, same run", beforeCommit), rate(&before)(), 3
				}
				return "recorded before (another machine)", o.listBaseline, 3
			}},
		{name: "POST /auth/tokens (argon2id m=19 MiB, t=2)", unit: "req/s", load: func(round int) bench.Load {
			l := load(publicAddr, bench.Post(host, "/auth/tokens", func(uint64) []byte {
				return fmt.Appendf(nil, `{"provider":"email","identifier":%q,"secret":%q}`, loginUser, s.password)
			}), 200)(round)
			// Hashes run one per CPU at most: more connections only queue.
			l.Conns = min(l.Conns, 2*runtime.NumCPU())
			return l
		}},
	}...)
	if before != nil { // measured right before the list row, in each round
		i := slices.IndexFunc(rows, func(r *row) bool { return r.name == listRow })
		rows = slices.Insert(rows, i, before)
	}
	if eg != nil {
		egPost = &row{name: "Express Gateway POST /users", unit: "req/s", load: func(round int) bench.Load {
			body := func(n uint64) []byte {
				return fmt.Appendf(nil, `{"username":"e%d-%d","firstname":"E","lastname":"G"}`, round, n)
			}
			return load(eg.adminAddr, bench.Post(host, "/users", body), 200)(round)
		}}
		rows = append(rows, egPost,
			&row{name: "Express Gateway GET /users/{username}", unit: "req/s", load: load(eg.adminAddr, bench.Get(host, "/users/"+eg.user), 200)})
	}
	return rows
}

// printTable writes the run's table: each row's median over the rounds, its
// reference and the ratio against its target.
func printTable(w *os.File, o options, rows []*row) {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if name, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	fmt.Fprintf(w, "\n%s × %d, %s, %s/%s; %d connections, %s warm-up + %s per endpoint, median of %d interleaved rounds\n\n",
		cpu, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, o.conns, o.warmup, o.duration, o.rounds)
	fmt.Fprintf(w, "| %-44s | %10s | %8s | %8s | %-34s | %6s | %-8s |\n", "endpoint", "rate", "p50", "p99", "reference", "ratio", "target")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 46), strings.Repeat("-", 12), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 36), strings.Repeat("-", 8), strings.Repeat("-", 10))
	var notes []string
	for _, r := range rows {
		m := r.median()
		refText, ratio, target := "", "", ""
		if r.compare != nil {
			name, refRate, t := r.compare()
			refText = fmt.Sprintf("%s %s", name, human(refRate))
			if refRate > 0 {
				ratio = fmt.Sprintf("%.2f", m.Rate()/refRate)
				target = fmt.Sprintf("≥ %.1f %s", t, verdict(m.Rate()/refRate >= t))
			}
		}
		unit := ""
		if r.unit != "req/s" {
			unit = " " + strings.TrimSuffix(r.unit, "/s") + "/s"
		}
		errs := ""
		if m.Errors > 0 {
			errs = fmt.Sprintf(" (%d errors)", m.Errors)
		}
		fmt.Fprintf(w, "| %-44s | %10s | %8s | %8s | %-34s | %6s | %-8s |\n", r.name+errs, human(m.Rate())+unit, ms(m.P50), ms(m.P99), refText, ratio, target)
		if r.note != nil {
			if n := r.note(m); n != "" {
				notes = append(notes, n)
			}
		}
		if ref := r.p99Against; ref != nil {
			if refP99 := ref.median().P99; refP99 > 0 {
				q := float64(m.P99) / float64(refP99)
				fmt.Fprintf(w, "| %-44s | %10s | %8s | %8s | %-34s | %6.2f | %-8s |\n", "  p99 against the bare ceiling's p99", "", "", "", "bare p99 "+ms(refP99), q, "≤ 1.2 "+verdict(q <= 1.2))
			}
		}
	}
	for _, n := range notes {
		fmt.Fprintf(w, "\n%s\n", n)
	}
}

// printCPU writes each row's CPU time per answer in its measured window (the
// median over the rounds): of the process serving it, of redis-server and of
// the load generator, and the ratio they predict against the row's reference
// when it is a row of the run. Unlike the rates, these hardly depend on what
// else the machine runs: with the generator on the same cores, a row's rate
// is about the CPU it gets divided by its CPU per answer, all three
// processes together, so the CPU ratio is what the rate ratio comes to when
// both rows get the same share of the machine.
func printCPU(w *os.File, rows []*row) {
	fmt.Fprintf(w, "\nCPU time per answer in the measured window (/proc/PID/stat, user + system; median of the rounds):\n\n")
	fmt.Fprintf(w, "| %-44s | %10s | %12s | %14s | %-12s |\n", "endpoint", "server", "redis-server", "load generator", "CPU ratio")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 46), strings.Repeat("-", 12), strings.Repeat("-", 14), strings.Repeat("-", 16), strings.Repeat("-", 14))
	for _, r := range rows {
		per := r.cpuPerAnswer()
		var cells [3]string
		for i, v := range per {
			cells[i] = "-"
			if v > 0 {
				cells[i] = us(v)
			}
		}
		ratio := ""
		if r.against != nil && *r.against != nil {
			ref, own := sum((*r.against).cpuPerAnswer()), sum(per)
			if ref > 0 && own > 0 {
				q := float64(ref) / float64(own)
				ratio = fmt.Sprintf("%.2f", q)
				if _, _, target := r.compare(); target > 0 {
					ratio += " " + verdict(q >= target)
				}
			}
		}
		fmt.Fprintf(w, "| %-44s | %10s | %12s | %14s | %-12s |\n", r.name, cells[0], cells[1], cells[2], ratio)
	}
}

// printGC writes, for each row, the garbage collections of the process
// serving it that began in the row's measured windows (all rounds), from
// the gctrace lines of its log (-gctrace): collections a second, the
// medians of a cycle's mark phase (wall), of its stop-the-world pauses and
// of its mark work (CPU: assists and background workers), the share of the
// windows' time spent marking, and the median live heap.
func printGC(w *os.File, p *procs, rows []*row) {
	fmt.Fprintf(w, "\nGarbage collection of the serving process in the measured windows (GODEBUG=gctrace=1; medians per cycle):\n\n")
	fmt.Fprintf(w, "| %-44s | %6s | %10s | %8s | %18s | %10s | %9s |\n", "endpoint", "GCs/s", "mark, wall", "marking", "STW (max)", "mark CPU", "live heap")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 46), strings.Repeat("-", 8), strings.Repeat("-", 12), strings.Repeat("-", 10), strings.Repeat("-", 20), strings.Repeat("-", 12), strings.Repeat("-", 11))
	for _, r := range rows {
		log, ok := p.logs[r.pid]
		if !ok {
			continue
		}
		f, err := os.Open(log)
		if err != nil {
			continue
		}
		cycles := bench.ParseGCTrace(f)
		f.Close()
		if len(cycles) == 0 { // not a Go process (Express Gateway): nothing traced
			continue
		}
		var windows []bench.Window
		for _, res := range r.results {
			windows = append(windows, bench.Window{From: res.Start, To: res.Start.Add(res.Elapsed)})
		}
		s := bench.SummariseGC(cycles, p.started[r.pid], windows)
		if s.Cycles == 0 {
			fmt.Fprintf(w, "| %-44s | %6s | %10s | %8s | %18s | %10s | %9s |\n", r.name, "0", "-", "-", "-", "-", "-")
			continue
		}
		fmt.Fprintf(w, "| %-44s | %6.2f | %10s | %7.1f%% | %18s | %10s | %6.1f MB |\n", r.name, s.PerSecond(), ms(s.Mark), 100*s.MarkShare(),
			ms(s.STW)+" ("+ms(s.MaxSTW)+")", ms(s.MarkCPU), float64(s.Live)/(1<<20))
	}
}

// cpuPerAnswer returns the median over the rounds of the CPU time per
// answer of the server, redis-server and the load generator (0: unknown).
func (r *row) cpuPerAnswer() [3]time.Duration {
	var out [3]time.Duration
	for i := range out {
		var v []float64
		for _, res := range r.results {
			if i < len(res.CPU) && res.Requests > 0 {
				v = append(v, float64(res.CPU[i])/float64(res.Requests))
			}
		}
		if len(v) > 0 {
			slices.Sort(v)
			out[i] = time.Duration(v[len(v)/2])
		}
	}
	return out
}

// sum adds a row's CPU times per answer.
func sum(d [3]time.Duration) time.Duration { return d[0] + d[1] + d[2] }

// us writes a duration in microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond)) }

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

// human writes a rate as 12.3k or 68.
func human(r float64) string {
	if r >= 1000 {
		return fmt.Sprintf("%.1fk", r/1000)
	}
	return fmt.Sprintf("%.0f", r)
}

func ms(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// profileLoad profiles a copy of Gatehouse (the child mode) while l is run on
// it: the parent starts the profile once the warm-up is over.
func profileLoad(ctx context.Context, p *procs, o options, mode, redisAddr, file string, l bench.Load) error {
	c, err := startChild(p, o.out, mode, redisAddr, "-cpuprofile", file)
	if err != nil {
		return err
	}
	in := c.stdin
	l.Addr = c.addr
	errc := make(chan error, 1)
	go func() {
		_, err := bench.Run(ctx, l)
		errc <- err
	}()
	select {
	case <-time.After(o.warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Fprintln(in, "start")
	err = <-errc
	fmt.Fprintln(in, "stop")
	waited := make(chan error, 1)
	go func() { waited <- c.cmd.Wait() }()
	select {
	case werr := <-waited:
		return cmp(err, werr)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("the profiled server did not write its profile in 10 s")
	}
}

// profileAdmin profiles POST /users and GET /users/{id} under load, each on a
// copy of the admin API on the same Redis (-profile-admin), and prints each
// profile's top functions, by their own time and with what they call.
func profileAdmin(ctx context.Context, p *procs, o options, redisAddr string, s seeded) error {
	adminHdr := "x-api-key: " + benchAdminKey
	loads := []struct {
		what, file string
		load       bench.Load
	}{
		{"POST /users", "create-user.cpu.pprof", bench.Load{Request: bench.Post("bench", "/users", func(n uint64) []byte {
			return fmt.Appendf(nil, `{"username":"prof%d","firstname":"P","lastname":"U","email":"prof%d@example.com"}`, n, n)
		}, adminHdr), Status: 200}},
		{"GET /users/{id}", "get-user.cpu.pprof", bench.Load{Request: func(buf []byte, n uint64) []byte {
			id := s.firstUsers[n%uint64(len(s.firstUsers))]
			return append(buf, "GET /users/"+id+" HTTP/1.1\r\nHost: bench\r\n"+adminHdr+"\r\n\r\n"...)
		}, Status: 200}},
	}
	for _, l := range loads {
		fmt.Fprintf(os.Stderr, "profiling %s under load (a copy of the admin API on the same Redis)\n", l.what)
		prof := filepath.Join(o.out, l.file)
		l.load.Conns, l.load.Warmup, l.load.Duration = o.conns, o.warmup, 2*o.duration
		if err := profileLoad(ctx, p, o, "profiled-admin", redisAddr, prof, l.load); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		fmt.Printf("\nCPU profile of %s under load (%s)\n", l.what, prof)
		if err := printFlatTop(ctx, prof); err != nil {
			return err
		}
		cumTop, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=40", "-focus=gatehouse", prof).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof: %v\n%s", err, cumTop)
		}
		fmt.Printf("\nGatehouse's functions and what they call (cumulative):\n\n%s\n", trimPprof(string(cumTop)))
	}
	return nil
}

// printFlatTop prints a profile's top functions by their own time.
func printFlatTop(ctx context.Context, prof string) error {
	flatTop, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=12", prof).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof: %v\n%s", err, flatTop)
	}
	fmt.Printf("\nTop functions by their own time:\n\n%s\n", trimPprof(string(flatTop)))
	return nil
}

func cmp(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// trimPprof keeps pprof's header and its rows.
func trimPprof(s string) string {
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		out = append(out, "    "+l)
	}
	return strings.Join(out, "\n")
}
