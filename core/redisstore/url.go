package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// ParseURL parses a Redis URL into options for NewClient, keeping
// go-redis' own grammar:
//
//	redis://[user:password@]host:port[/db][?options]    one server (go-redis ParseURL;
//	rediss://...                                        rediss for TLS; unix:// too)
//	redis://[suser:spass@]host:port?master_name=NAME&addr=host2:port2&password=PASS
//	                                                    Sentinel (ParseFailoverURL): the
//	                                                    userinfo authenticates to Sentinel,
//	                                                    ?username= / ?password= to Redis
//	redis+cluster://[user:password@]host:port?addr=host2:port2
//	                                                    Redis Cluster (ParseClusterURL after
//	                                                    rewriting the scheme to redis://;
//	                                                    rediss+cluster:// for TLS)
//
// A cluster URL gives a ClusterClient even with one address. Errors never include
// a password.
func ParseURL(rawURL string) (*redis.UniversalOptions, error) {
	bad := func(reason string) error {
		return fmt.Errorf("redisstore: invalid Redis URL %q: %s", RedactURL(rawURL), reason)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return nil, bad(safeReason(rawURL, err))
	}
	switch u.Scheme {
	case "redis+cluster", "rediss+cluster":
		if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
			return nil, bad("a cluster has no database number")
		}
		u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
		u.Path = ""
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, bad(safeReason(rawURL, err))
		}
		return fromCluster(o), nil
	case "redis", "rediss", "unix":
		if u.Scheme != "unix" && u.Query().Has("master_name") {
			o, err := redis.ParseFailoverURL(rawURL)
			if err != nil {
				return nil, bad(safeReason(rawURL, err))
			}
			if o.MasterName == "" {
				return nil, bad("master_name is empty")
			}
			return fromFailover(o), nil
		}
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, bad(safeReason(rawURL, err))
		}
		return fromSimple(o), nil
	case "":
		return nil, bad("no scheme (want redis://, rediss:// or redis+cluster://)")
	default:
		return nil, bad(fmt.Sprintf("unsupported scheme %q (want redis://, rediss:// or redis+cluster://)", u.Scheme))
	}
}

// safeReason returns err's text, or a generic one if it would show a secret.
func safeReason(rawURL string, err error) string {
	msg := err.Error()
	u, perr := url.Parse(rawURL)
	var secrets []string
	if perr == nil {
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				secrets = append(secrets, p)
			}
		}
		for _, k := range []string{"password", "sentinel_password"} {
			secrets = append(secrets, u.Query()[k]...)
		}
	} else if i := strings.Index(rawURL, "://"); i >= 0 {
		// Unparsable: anything between the scheme and the last '@' may be secret.
		if j := strings.LastIndexByte(rawURL, '@'); j > i {
			secrets = append(secrets, rawURL[i+3:j])
			if _, p, ok := strings.Cut(rawURL[i+3:j], ":"); ok {
				secrets = append(secrets, p)
			}
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			return "malformed URL"
		}
	}
	return msg
}

// redacted is what RedactURL writes in place of a password.
const redacted = "xxxxx"

// RedactURL returns rawURL with the userinfo password and the password and
// sentinel_password query values replaced by "xxxxx", for logs. A URL that does
// not parse is redacted as text: everything between "://" and the last '@'.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		s := rawURL
		if i := strings.Index(s, "://"); i >= 0 {
			if j := strings.LastIndexByte(s, '@'); j > i {
				s = s[:i+3] + redacted + s[j:]
			}
		}
		return redactQuery(s)
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
	}
	u.RawQuery = redactQuery(u.RawQuery)
	return u.String()
}

// redactQuery replaces the values of password parameters in s, which is a raw
// query or a whole URL.
func redactQuery(s string) string {
	head, q, hasQ := strings.Cut(s, "?")
	if !hasQ {
		if strings.Contains(s, "://") {
			return s
		}
		head, q = "", s
	}
	q, frag, hasFrag := strings.Cut(q, "#")
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		if name, err := url.QueryUnescape(k); err == nil && (name == "password" || name == "sentinel_password") {
			parts[i] = k + "=" + redacted
		}
	}
	out := strings.Join(parts, "&")
	if hasFrag {
		out += "#" + frag
	}
	if hasQ {
		return head + "?" + out
	}
	return out
}

// Fail-fast defaults: Gatehouse sits on a gateway's request path, where a quick
// 503 beats a slow one. go-redis' own (5 dial attempts, 3 retries) hold a request
// for about 2 s while Redis is unreachable.
const (
	defaultDialTimeout   = 2 * time.Second
	defaultDialerRetries = 1
	defaultMaxRetries    = 1
)

// NewClient returns the client the options describe: a ClusterClient for a cluster
// URL (even with one address), a Sentinel-backed client with master_name, else a
// client of one server. Dial timeout, dial attempts and command retries the URL
// leaves unset get fail-fast defaults (2 s, 1, 1). Context deadlines are always
// honoured (ContextTimeoutEnabled, whatever the URL says): they are how a Store
// bounds its calls, so that a stalled Redis frees its callers.
func NewClient(opts *redis.UniversalOptions) redis.UniversalClient {
	o := *opts
	o.ContextTimeoutEnabled = true
	if o.DialTimeout == 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = defaultDialerRetries
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = defaultMaxRetries
	}
	c := redis.NewUniversalClient(&o)
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.AddHook(slotMapReload{cc})
	}
	return c
}

// slotMapReload is a go-redis hook that reloads a ClusterClient's slot map as
// soon as a node answers that it no longer serves what the map says: after a
// replica took over a failed master, a node that was down and came back, or a
// resharding. go-redis follows MOVED by itself, but CLUSTERDOWN, READONLY and
// MASTERDOWN only make it retry the same node, and it reloads the map on its
// own only every 10 s: so long a Gatehouse would answer 503 for the slots of a
// master that was replaced. A node that cannot be reached triggers a reload
// too: the map may still name a master that was replaced. The reload is lazy (in the background, one at a
// time), so a burst of errors costs one CLUSTER SLOTS.
type slotMapReload struct{ c *redis.ClusterClient }

func (h slotMapReload) check(ctx context.Context, cmds ...redis.Cmder) {
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && staleSlotMap(err) {
			h.c.ReloadState(ctx)
			return
		}
	}
}

// staleSlotMap reports whether err says that the node asked does not serve the
// slot as a master (any more), or could not be reached: a map loaded while a
// master was failing still names it after its replica took over.
func staleSlotMap(err error) bool {
	if _, ok := errors.AsType[net.Error](err); ok || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"CLUSTERDOWN", "READONLY", "MASTERDOWN"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func (h slotMapReload) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h slotMapReload) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, cmd)
		return err
	}
}

func (h slotMapReload) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(ctx, cmds...)
		return err
	}
}

func fromSimple(o *redis.Options) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: []string{o.Addr}, ClientName: o.ClientName, DB: o.DB,
		Protocol: o.Protocol, Username: o.Username, Password: o.Password,
		MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, DialerRetries: o.DialerRetries, DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		ReadBufferSize: o.ReadBufferSize, WriteBufferSize: o.WriteBufferSize,
		PipelineReadBufferSize: o.PipelineReadBufferSize, PipelineWriteBufferSize: o.PipelineWriteBufferSize,
		PipelinePoolSize: o.PipelinePoolSize,
		PoolFIFO:         o.PoolFIFO, PoolSize: o.PoolSize, MaxConcurrentDials: o.MaxConcurrentDials,
		PoolTimeout: o.PoolTimeout, MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns,
		MaxActiveConns: o.MaxActiveConns, ConnMaxIdleTime: o.ConnMaxIdleTime,
		ConnMaxLifetime: o.ConnMaxLifetime, ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter,
		TLSConfig: o.TLSConfig, DisableIdentity: o.DisableIdentity, IdentitySuffix: o.IdentitySuffix,
	}
}

func fromFailover(o *redis.FailoverOptions) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: o.SentinelAddrs, MasterName: o.MasterName, ClientName: o.ClientName, DB: o.DB,
		Protocol: o.Protocol, Username: o.Username, Password: o.Password,
		SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
		RouteByLatency: o.RouteByLatency, RouteByLatencyTolerance: o.RouteByLatencyTolerance,
		RouteRandomly: o.RouteRandomly, ReadOnly: o.ReplicaOnly,
		MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, DialerRetries: o.DialerRetries, DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		ReadBufferSize: o.ReadBufferSize, WriteBufferSize: o.WriteBufferSize,
		PipelineReadBufferSize: o.PipelineReadBufferSize, PipelineWriteBufferSize: o.PipelineWriteBufferSize,
		PipelinePoolSize: o.PipelinePoolSize,
		PoolFIFO:         o.PoolFIFO, PoolSize: o.PoolSize, MaxConcurrentDials: o.MaxConcurrentDials,
		PoolTimeout: o.PoolTimeout, MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns,
		MaxActiveConns: o.MaxActiveConns, ConnMaxIdleTime: o.ConnMaxIdleTime,
		ConnMaxLifetime: o.ConnMaxLifetime, ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter,
		TLSConfig: o.TLSConfig, DisableIdentity: o.DisableIdentity, IdentitySuffix: o.IdentitySuffix,
	}
}

func fromCluster(o *redis.ClusterOptions) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: o.Addrs, IsClusterMode: true, ClientName: o.ClientName,
		Protocol: o.Protocol, Username: o.Username, Password: o.Password,
		MaxRedirects: o.MaxRedirects, ReadOnly: o.ReadOnly, RouteByLatency: o.RouteByLatency,
		RouteByLatencyTolerance: o.RouteByLatencyTolerance, RouteRandomly: o.RouteRandomly,
		MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, DialerRetries: o.DialerRetries, DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PipelineReadBufferSize: o.PipelineReadBufferSize, PipelineWriteBufferSize: o.PipelineWriteBufferSize,
		PipelinePoolSize: o.PipelinePoolSize,
		PoolFIFO:         o.PoolFIFO, PoolSize: o.PoolSize, MaxConcurrentDials: o.MaxConcurrentDials,
		PoolTimeout: o.PoolTimeout, MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns,
		MaxActiveConns: o.MaxActiveConns, ConnMaxIdleTime: o.ConnMaxIdleTime,
		ConnMaxLifetime: o.ConnMaxLifetime, ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter,
		TLSConfig: o.TLSConfig, FailingTimeoutSeconds: o.FailingTimeoutSeconds,
	}
}
