package bench

import (
	"regexp"
	"strconv"
	"strings"
)

// Share is one part of a CPU profile: its name and the share of the samples
// spent in it or below it.
type Share struct {
	Name    string
	Percent float64
}

// profileParts are the parts of /verify's time the run reports, each the
// cumulative share of the first function matching its pattern.
var profileParts = []struct{ name, pattern string }{
	{"HTTP server: the whole request (net/http conn.serve)", `^net/http\.\(\*conn\)\.serve$`},
	{"  reading and parsing the request", `^net/http\.\(\*conn\)\.readRequest$`},
	{"  Gatehouse's outer handler (id, access log, metrics, handler)", `\(\*Site\)\.wrap\.func\d+$`},
	{"    routing and the handler (httprouter)", `^github\.com/julienschmidt/httprouter\.\(\*Router\)\.ServeHTTP$`},
	{"    the access line and the latency metric", `web\.\(\*Site\)\.access$`},
	{"    /verify's handler (adminapi)", `adminapi\.\(\*Server\)\.verify$`},
	{"      core.Service.Verify", `core\.\(\*Service\)\.Verify$`},
	{"        the Redis pipeline (go-redis)", `^github\.com/redis/go-redis/v9\.\(\*Pipeline\)\.Exec$`},
	{"        a Redis command sent alone (go-redis)", `^github\.com/redis/go-redis/v9\.\(\*baseClient\)\.process$`},
	{"        JSON decoding (encoding/json.Unmarshal)", `^encoding/json\.Unmarshal$`},
	{"        the user's record decoded (redisstore)", `redisstore\.decodeUser$`},
	{"        the credential's record decoded (redisstore)", `redisstore\.decodeCredential$`},
	{"  writing the answer (net/http finishRequest)", `^net/http\.\(\*response\)\.finishRequest$`},
	{"allocation (runtime.mallocgc)", `^runtime\.mallocgc$`},
	{"garbage collection (runtime.gcBgMarkWorker)", `^runtime\.gcBgMarkWorker$`},
	{"write syscalls (syscall.Write)", `^syscall\.Write$`},
}

// The indexes in profileParts of the outer handler and of what it wraps.
const outerPart, routerPart = 2, 3

// pprofRow is a row of `go tool pprof -top -cum`: flat, flat%, sum%, cum, cum%, name.
var pprofRow = regexp.MustCompile(`^\s*\S+\s+\S+%\s+\S+%\s+\S+\s+([\d.]+)%\s+(.+?)(?: \(inline\)| \(partial-inline\))?$`)

// SummariseProfile picks profileParts out of the output of `go tool pprof
// -top -cum` with every node shown. A part no function matches is left out.
func SummariseProfile(top string) []Share {
	cum := map[string]float64{}
	var names []string
	for l := range strings.SplitSeq(top, "\n") {
		m := pprofRow.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		p, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		if _, seen := cum[m[2]]; !seen {
			names = append(names, m[2])
		}
		cum[m[2]] = max(cum[m[2]], p)
	}
	var out []Share
	var outer, inner float64
	for i, part := range profileParts {
		re := regexp.MustCompile(part.pattern)
		best, found := 0.0, false
		for _, n := range names {
			if re.MatchString(n) && cum[n] > best {
				best, found = cum[n], true
			}
		}
		if !found {
			continue
		}
		out = append(out, Share{Name: part.name, Percent: best})
		switch i {
		case outerPart:
			outer = best
		case routerPart:
			inner = best
			if outer > 0 {
				// The outer handler's share holds everything below it: its own
				// cost is what the router and handler do not account for.
				out = append(out, Share{Name: "    the outer handler's own time (outer − routing and handler)", Percent: outer - inner})
			}
		}
	}
	return out
}
