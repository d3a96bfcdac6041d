package adminapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// The fault tests run a bounded mixed load (user creates, reads of users
// created before) on Gatehouse over a real Redis, break Redis under it, repair
// it, and check what users notice: while Redis is down every answer is a fast
// 503, Gatehouse recovers by itself, no acknowledged create is lost, the
// /verify cache's change feed is followed again, and doctor finds nothing it
// cannot tidy once claims are past their grace. Each prints its figures on a
// FAULT line (docs/faults.md).

const (
	faultWorkers = 4
	faultPause   = 2 * time.Millisecond // between two requests of a worker: a bounded load
	faultFast    = 3 * time.Second      // the slowest answer allowed while Redis is down
	faultRecover = 30 * time.Second     // bound on the recovery after the repair
)

// faultLoad is a running load and what it saw.
type faultLoad struct {
	e      *env
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu        sync.Mutex
	acked     []string // usernames whose create answered 200
	ackedIDs  []string // and their ids
	phase     string   // "before", "down", "repaired", "after"
	requests  map[string]int
	statuses  map[string]map[int]int
	slowest   map[string]time.Duration
	firstFail time.Time         // first write that failed
	lastFail  time.Time         // last write that failed
	lastAck   time.Time         // last write acknowledged
	recovered time.Time         // first write acknowledged after the last that failed
	unknown   []string          // creates that answered 503: written or not, nobody was told
	failure   map[string]string // phase → the body of its last failure
}

// startFaultLoad starts the load's workers.
func startFaultLoad(e *env) *faultLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &faultLoad{e: e, cancel: cancel, phase: "before",
		requests: map[string]int{}, statuses: map[string]map[int]int{}, slowest: map[string]time.Duration{}, failure: map[string]string{}}
	for w := range faultWorkers {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("load-%d-%d", w, i)
				t0, p0 := time.Now(), l.current()
				rec := e.do("POST", "/users", `{"username":"`+name+`","firstname":"F","lastname":"L"}`)
				l.record(p0, name, true, rec.Code, time.Since(t0), rec.Body.String())
				if rec.Code == http.StatusOK {
					var u struct{ ID string }
					_ = json.Unmarshal(rec.Body.Bytes(), &u)
					l.mu.Lock()
					l.ackedIDs = append(l.ackedIDs, u.ID)
					l.mu.Unlock()
				}
				if known := l.someAcked(); known != "" {
					t0, p0 = time.Now(), l.current()
					rec = e.do("GET", "/users/"+known, "")
					l.record(p0, known, false, rec.Code, time.Since(t0), rec.Body.String())
				}
				time.Sleep(faultPause)
			}
		}()
	}
	return l
}

func (l *faultLoad) someAcked() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.acked) == 0 {
		return ""
	}
	return l.acked[rand.IntN(len(l.acked))]
}

// current is the phase a request starting now belongs to.
func (l *faultLoad) current() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phase
}

// record counts an answer in the phase its request started in; a request
// that spanned a change of phase (it started before a kill and was answered
// after it) counts in "transition", where either answer is right.
func (l *faultLoad) record(started, name string, create bool, code int, took time.Duration, body string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := started
	if p != l.phase {
		p = "transition"
	}
	if code != http.StatusOK {
		l.failure[p] = body
	}
	l.requests[p]++
	if l.statuses[p] == nil {
		l.statuses[p] = map[int]int{}
	}
	l.statuses[p][code]++
	l.slowest[p] = max(l.slowest[p], took)
	if !create {
		return
	}
	now := time.Now()
	switch code {
	case http.StatusOK:
		l.acked = append(l.acked, name)
		if !l.lastFail.IsZero() && !l.lastAck.After(l.lastFail) {
			l.recovered = now
		}
		l.lastAck = now
	default:
		if l.firstFail.IsZero() {
			l.firstFail = now
		}
		l.lastFail = now
		l.unknown = append(l.unknown, name)
	}
}

// enter starts a phase of the load.
func (l *faultLoad) enter(phase string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase = phase
	return time.Now()
}

// waitRecovered waits until a create is acknowledged after since.
func (l *faultLoad) waitRecovered(t *testing.T, since time.Time) {
	t.Helper()
	for deadline := time.Now().Add(faultRecover); ; time.Sleep(20 * time.Millisecond) {
		l.mu.Lock()
		ok := l.lastAck.After(since)
		l.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no create acknowledged %v after the repair; answers: %v; the last errors logged:\n%s", faultRecover, l.statuses, l.lastErrors())
		}
	}
}

// lastErrors returns the last error lines of Gatehouse's log.
func (l *faultLoad) lastErrors() string {
	var errs []string
	for ln := range strings.SplitSeq(l.e.logs.String(), "\n") {
		if strings.Contains(ln, `"level":"error"`) {
			errs = append(errs, ln)
		}
	}
	return strings.Join(errs[max(0, len(errs)-10):], "\n")
}

// stop ends the load and waits for its workers.
func (l *faultLoad) stop() {
	l.cancel()
	l.done.Wait()
}

// faultEnv is Gatehouse with its /verify cache on, over the Redis at url, its
// store telling claim times by the env's clock and waiting for wait replicas
// after each write (redis.waitReplicas), with the product's read and write
// bounds: what a user sees while Redis is down depends on them.
func faultEnv(t *testing.T, url string, wait int) *env {
	t.Helper()
	opts, err := redisstore.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redisstore.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	return newEnvClocked(t, client, nil, core.VerifyCacheOptions{Size: 1000, TTL: 2 * time.Second, NegativeTTL: time.Second}, true, redisstore.Options{WaitReplicas: wait})
}

// faultFigures are what a fault test prints.
type faultFigures struct {
	outageRequests int           // requests answered while Redis was broken (or failing over), before the repair
	outageSlowest  time.Duration // the slowest of them
	recover        time.Duration // from the repair to the first acknowledged create
	writesFailed   time.Duration // from the first failed create to the last
	acked, lost    int
	indexLost      int // doctor's findings about acknowledged users: list-index entries lost, say
	unknown        int // creates answered 503
	doctor         core.DoctorReport
}

// checkFault checks what the load saw and the data left, and prints the
// figures. Outside the fault every answer was 200; while Redis was down only
// 503s, fast; during a failover and after the repair 200 or 503. The time to
// recover counts from broken.
func checkFault(t *testing.T, name string, l *faultLoad, broken time.Time) faultFigures {
	t.Helper()
	e := l.e
	f := faultFigures{outageRequests: l.requests["down"] + l.requests["partial"] + l.requests["failover"],
		outageSlowest: max(l.slowest["down"], l.slowest["partial"], l.slowest["failover"]),
		recover:       l.recovered.Sub(broken), acked: len(l.acked), unknown: len(l.unknown)}
	if !l.firstFail.IsZero() {
		f.writesFailed = l.lastFail.Sub(l.firstFail)
	}
	for phase, want := range map[string][]int{"before": {200}, "transition": {200, 503}, "killing": {200, 503}, "down": {503}, "partial": {200, 503}, "failover": {200, 503}, "repaired": {200, 503}, "after": {200}} {
		for code, n := range l.statuses[phase] {
			if !slices.Contains(want, code) {
				t.Errorf("%s: %d answers %d in phase %q, want only %v (all: %v); the last failure: %s", name, n, code, phase, want, l.statuses, l.failure[phase])
			}
		}
	}
	if l.requests["before"] == 0 || l.requests["after"] == 0 {
		t.Errorf("%s: no load before or after the fault: %v", name, l.requests)
	}
	if down := max(l.slowest["down"], l.slowest["partial"]); down > faultFast {
		t.Errorf("%s: slowest answer while Redis was down %v, want under %v", name, down, faultFast)
	}

	// Every acknowledged create is there.
	for _, u := range l.acked {
		if rec := e.do("GET", "/users/"+u, ""); rec.Code != http.StatusOK {
			f.lost++
			if f.lost <= 5 {
				t.Errorf("%s: acknowledged user %s: GET answers %d %s", name, u, rec.Code, rec.Body)
			}
		}
	}

	// The change feed is followed again: the /verify cache is back in use.
	for deadline := time.Now().Add(10 * time.Second); !e.svc.VerifyCacheLive(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%s: the /verify cache is not in use 10 s after the recovery: the change feed was not followed again", name)
			break
		}
	}

	// Past the claims' grace, doctor finds only what unacknowledged creates
	// left (stale claims, records missing from their index), tidies it, and
	// then finds nothing.
	e.clock.Advance(2 * redisstore.DefaultClaimStaleAfter)
	var rep core.DoctorReport
	decodeInto(t, e.must(200, "GET", "/doctor", ""), &rep)
	f.doctor = rep
	for _, line := range slices.Concat(rep.StaleClaims, rep.DanglingIndex, rep.StaleGrants) {
		for i, u := range l.acked {
			if !strings.Contains(line, ":"+u+" ") && !strings.HasSuffix(line, ":"+u) && !strings.Contains(line, l.ackedIDs[i]) {
				continue
			}
			f.indexLost++
			t.Errorf("%s: doctor reports %q, about the acknowledged user %s", name, line, u)
		}
	}
	e.must(200, "POST", "/doctor/repair", "")
	decodeInto(t, e.must(200, "GET", "/doctor", ""), &rep)
	if n := len(rep.StaleClaims) + len(rep.DanglingIndex) + len(rep.StaleGrants); n != 0 {
		t.Errorf("%s: doctor after its repair still finds %+v", name, rep)
	}
	outage := map[int]int{}
	for _, p := range []string{"down", "partial", "failover"} {
		for code, n := range l.statuses[p] {
			outage[code] += n
		}
	}
	if t.Failed() {
		t.Logf("%s: the last errors logged:\n%s", name, l.lastErrors())
	}
	t.Logf("FAULT %s: %d requests during the outage (%v), slowest %v; time to recover %v; writes failed for %v; "+
		"%d creates acknowledged, %d lost, %d of their list entries lost; %d answered 503; doctor past the grace: %d stale claims, %d index entries, tidied",
		name, f.outageRequests, outage, f.outageSlowest.Round(time.Millisecond), f.recover.Round(time.Millisecond),
		f.writesFailed.Round(time.Millisecond), f.acked, f.lost, f.indexLost, f.unknown, len(f.doctor.StaleClaims), len(f.doctor.DanglingIndex))
	return f
}

// decodeInto decodes a JSON body already decoded into a map into v.
func decodeInto(t *testing.T, m map[string]any, v any) {
	t.Helper()
	b, err := json.Marshal(m)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// runFault runs the load on Gatehouse over the Redis at url for a second,
// then fault, which breaks Redis, repairs it (or lets it repair itself),
// waits for the load to recover and returns when the fault began; then the
// load runs two more seconds (the last in phase "after") and checkFault checks
// it all.
func runFault(t *testing.T, name, url string, wait int, fault func(l *faultLoad) time.Time) {
	t.Helper()
	l := startFaultLoad(faultEnv(t, url, wait))
	defer l.stop()
	time.Sleep(time.Second)
	broken := fault(l)
	time.Sleep(time.Second)
	l.enter("after")
	time.Sleep(time.Second)
	l.stop()
	checkFault(t, name, l, broken)
}

// TestFaultRedisKilled kills -9 a redis-server that writes every change to its
// append-only file (appendfsync always) under the load, restarts it on the
// same port and directory, and checks Gatehouse rides it out.
func TestFaultRedisKilled(t *testing.T) {
	t.Parallel()
	n := redistest.StartNode(t, redistest.Persistence...) // skips under -short
	runFault(t, "redis kill -9", "redis://"+n.Addr, 0, func(l *faultLoad) time.Time {
		// Requests that start while the server dies may see it either way;
		// every request that starts once it is dead must get a 503.
		l.enter("killing")
		n.Kill()
		l.enter("down")
		time.Sleep(2 * time.Second)
		if l.e.svc.VerifyCacheLive() {
			t.Error("the /verify cache is still in use 2 s after Redis died: a lost change feed must bypass it")
		}
		repaired := l.enter("repaired")
		n.Restart()
		l.waitRecovered(t, repaired)
		return repaired // recovery counts from the restart
	})
}

// TestFaultClusterMasterKilled kills -9 one master of a Redis Cluster with a
// replica per master under the load; the replica is promoted, Gatehouse finds
// the new slot map by itself, and the old master comes back as a replica.
func TestFaultClusterMasterKilled(t *testing.T) {
	t.Parallel()
	c := redistest.StartClusterReplicas(t, redistest.Persistence...) // skips under -short
	runFault(t, "cluster master kill -9", c.URL, 0, func(l *faultLoad) time.Time {
		victim := c.Node(c.Addrs[0])
		// Until the cluster marks the master failed (the node timeout), the
		// other masters still answer for their slots: some requests succeed.
		killed := l.enter("partial")
		victim.Kill()
		time.Sleep(time.Second)
		l.enter("repaired") // the cluster repairs itself: the replica takes over
		c.WaitPromoted(t, victim.Addr)
		l.waitRecovered(t, time.Now())
		victim.Restart() // back as a replica of its replacement
		c.WaitReplicas(t)
		return killed // recovery counts from the kill
	})
}

// TestFaultSentinelFailover runs SENTINEL FAILOVER under the load, each write
// waiting for the replica (redis.waitReplicas 1, the default with Sentinel):
// writes resume on the new primary without a restart, and none acknowledged
// is lost, not even a list-index entry, the last step of a create.
func TestFaultSentinelFailover(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t) // skips under -short
	runFault(t, "sentinel failover", s.URL, 1, func(l *faultLoad) time.Time {
		asked := l.enter("failover") // no phase "down": answers may be 200 or 503 throughout
		s.Failover(t)
		l.waitRecovered(t, l.enter("repaired"))
		return asked // recovery counts from SENTINEL FAILOVER
	})
}
