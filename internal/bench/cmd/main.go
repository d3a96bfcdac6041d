// Command bench is `make bench`: it builds Gatehouse, starts a real
// redis-server and `gatehouse serve` on free loopback ports, seeds them
// through the admin API, runs the two ceiling servers (a bare JSON answer, one
// HGETALL per request) beside them, loads each endpoint in interleaved rounds
// and prints one table of rates, latencies and ratios to the ceilings, then
// takes a CPU profile of /verify under load.
//
// Run it from the repository's root: go run ./internal/bench/cmd [flags].
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration, warmup time.Duration
	rounds, conns    int
	users, missKeys  int
	out              string
	eg, profile      bool
	profileAdmin     bool
	profileCeiling   bool
	before           bool
	gctrace          bool
	listBaseline     float64
	sameRate         float64
	only             *regexp.Regexp
}

func main() {
	var o options
	mode := flag.String("mode", "", "internal: run as a child server (bare, hgetall, profiled, profiled-hit, profiled-admin)")
	addrFlag := flag.String("redis", "", "internal: the Redis address of a child server")
	profile := flag.String("cpuprofile", "", "internal: where a profiled child writes its profile")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured time per endpoint and round")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each measurement")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds; each row shows the median")
	flag.IntVar(&o.conns, "conns", 32, "keep-alive connections of the load generator")
	flag.IntVar(&o.users, "users", 3000, "users seeded for the list page")
	flag.IntVar(&o.missKeys, "miss-keys", 20000, "distinct keys the key-auth miss row presents in turn")
	flag.Float64Var(&o.listBaseline, "list-baseline", listBaseline, "GET /users?count=100 in pages/s before the speed work, recorded on another machine: the list row's reference when the code before cannot be built (-before)")
	flag.StringVar(&o.out, "out", "", "folder for logs and the CPU profile (default: a new temporary folder)")
	flag.BoolVar(&o.profileCeiling, "profile-ceiling", false, "also profile the HGETALL ceiling under the same load as /verify, to compare with the miss")
	flag.BoolVar(&o.profileAdmin, "profile-admin", false, "also profile POST /users and GET /users/{id} under load (a copy of the admin API)")
	flag.BoolVar(&o.eg, "eg", true, "also measure Express Gateway (adminapi/testdata/eg) on the same Redis")
	flag.BoolVar(&o.before, "before", true, "build the code before the speed work from git history and measure its page of users as the list row's reference (else -list-baseline)")
	flag.BoolVar(&o.gctrace, "gctrace", false, "run the servers with GODEBUG=gctrace=1 and print each row's garbage collections in its measured windows (the serving process's)")
	flag.BoolVar(&o.profile, "profile", true, "profile /verify key-auth (a miss and a hit) after the rounds")
	flag.Float64Var(&o.sameRate, "same-rate", 0, "also measure the bare ceiling and the key-auth hit at this fraction of the hit's rate in the round (an open loop, e.g. 0.6), and their p99s against each other: latency at the same request rate rather than at saturation")
	only := flag.String("only", "", "measure only the rows whose name matches this regular expression (e.g. 'bare|hit')")
	flag.Parse()
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -only:", err)
			os.Exit(2)
		}
		o.only = re
	}
	if o.sameRate < 0 || o.sameRate >= 1 || o.sameRate > 0 && o.only != nil && !o.only.MatchString(hitRow) {
		fmt.Fprintln(os.Stderr, "bench: -same-rate is a fraction below 1 of the hit's rate, and needs the hit's row")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *mode != "" {
		err = child(ctx, *mode, *addrFlag, *profile)
	} else {
		err = run(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// procs are the child processes of a run, killed when it ends.
type procs struct {
	list []*exec.Cmd
	env  []string // added to every process's environment (-gctrace)
	// When each process started, and the file its stderr goes to, by pid:
	// where -gctrace finds a process's collections.
	started map[int]time.Time
	logs    map[int]string
}

func (p *procs) start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // none outlives the run
	if len(p.env) > 0 {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, p.env...)
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	p.list = append(p.list, cmd)
	if p.started == nil {
		p.started, p.logs = map[int]time.Time{}, map[int]string{}
	}
	p.started[cmd.Process.Pid] = started
	if f, ok := cmd.Stderr.(*os.File); ok {
		p.logs[cmd.Process.Pid] = f.Name()
	}
	return nil
}

// lastPid returns the pid of the process started last.
func (p *procs) lastPid() int { return p.list[len(p.list)-1].Process.Pid }

func (p *procs) stopAll() {
	for i := len(p.list) - 1; i >= 0; i-- {
		c := p.list[i]
		if c.Process != nil && c.Process.Pid > 0 && c.ProcessState == nil {
			c.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				c.Process.Kill()
				<-done
			}
		}
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP waits until url answers 200, for at most d.
func waitHTTP(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not answer in %s: %v", url, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startRedis runs a redis-server without persistence on a free loopback port.
func startRedis(ctx context.Context, p *procs, dir string) (string, error) {
	var last error
	for range 5 { // a port found free may be taken before redis binds it
		addr, err := freeAddr()
		if err != nil {
			return "", err
		}
		_, port, _ := net.SplitHostPort(addr)
		log, err := os.Create(filepath.Join(dir, "redis-"+port+".log"))
		if err != nil {
			return "", err
		}
		cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", dir)
		cmd.Stdout, cmd.Stderr = log, log
		if err := p.start(cmd); err != nil {
			return "", fmt.Errorf("redis-server: %w", err)
		}
		if last = pingRedis(ctx, addr, 5*time.Second); last == nil {
			return addr, nil
		}
	}
	return "", fmt.Errorf("redis-server did not start: %w", last)
}

// pingRedis waits until addr answers PING with PONG.
func pingRedis(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprint(c, "PING\r\n")
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "+PONG") {
				return nil
			}
			err = errors.Join(rerr, fmt.Errorf("answer %q", line))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// childProc is a child server: its process, its stdin and its address.
type childProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

// startChild runs this program again as a child server and returns it once
// it printed its address (its first line of output).
func startChild(p *procs, dir, mode, redisAddr string, extra ...string) (*childProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, mode+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{"-mode", mode, "-redis", redisAddr}, extra...)...)
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := p.start(cmd); err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- strings.TrimSpace(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case addr := <-lines:
		if addr == "" {
			return nil, fmt.Errorf("%s server did not start (see %s)", mode, log.Name())
		}
		return &childProc{cmd: cmd, stdin: in, addr: addr}, nil
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s server did not start in 30 s", mode)
	}
}
