package sdk

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
	pluginv1 "github.com/gatehouse/gatehouse/proto/gatehouse/plugin/v1"
)

// The host services (KV and Log) run on the host and are reached by the
// plugin over the go-plugin broker: the host's Configure serves them under a
// fresh broker id and sends the id; the plugin's Configure dials it.

// configure serves host on the broker and calls the plugin's Configure with
// the broker id; call is the generated client's Configure.
func configure(ctx context.Context, broker *plugin.GRPCBroker,
	call func(context.Context, *pluginv1.ConfigureRequest, ...grpc.CallOption) (*pluginv1.Empty, error),
	cfg Config, host Host) error {
	if host.KV == nil || host.Log == nil {
		return errs.Errorf(errs.Internal, "sdk.Configure", "the host services need a KV and a Log")
	}
	id := broker.NextId()
	go broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pluginv1.RegisterKVServer(s, &kvServer{kv: host.KV})
		pluginv1.RegisterLogServer(s, &logServer{log: host.Log})
		return s
	})
	_, err := call(ctx, &pluginv1.ConfigureRequest{Name: cfg.Name, Config: cfg.Raw, Secrets: cfg.Secrets, HostBrokerId: id})
	return fromStatus(err)
}

// kvServer serves the host's KV to the plugin.
type kvServer struct {
	pluginv1.UnimplementedKVServer
	kv KV
}

func (s *kvServer) Get(ctx context.Context, r *pluginv1.KVGetRequest) (*pluginv1.KVGetResponse, error) {
	v, found, err := s.kv.Get(ctx, r.Key)
	return answer(&pluginv1.KVGetResponse{Value: v, Found: found}, err)
}

func (s *kvServer) Set(ctx context.Context, r *pluginv1.KVSetRequest) (*pluginv1.Empty, error) {
	return answer(&pluginv1.Empty{}, s.kv.Set(ctx, r.Key, r.Value, duration(r.TtlMicros)))
}

func (s *kvServer) Delete(ctx context.Context, r *pluginv1.KVDeleteRequest) (*pluginv1.KVDeleteResponse, error) {
	existed, err := s.kv.Delete(ctx, r.Key)
	return answer(&pluginv1.KVDeleteResponse{Existed: existed}, err)
}

func (s *kvServer) CompareAndSet(ctx context.Context, r *pluginv1.KVCompareAndSetRequest) (*pluginv1.KVCompareAndSetResponse, error) {
	old := r.Old
	switch {
	case r.Absent:
		old = nil
	case old == nil:
		old = []byte{} // present and empty, not absent
	}
	swapped, err := s.kv.CompareAndSet(ctx, r.Key, old, r.Value, duration(r.TtlMicros))
	return answer(&pluginv1.KVCompareAndSetResponse{Swapped: swapped}, err)
}

// logServer serves the host's log to the plugin.
type logServer struct {
	pluginv1.UnimplementedLogServer
	log HostLogger
}

func (s *logServer) Write(ctx context.Context, r *pluginv1.LogRequest) (*pluginv1.Empty, error) {
	s.log.Log(ctx, r.Level, r.Message, r.Fields)
	return &pluginv1.Empty{}, nil
}

// hostConn is the plugin's side of the host services: Configure dials them.
type hostConn struct {
	broker *plugin.GRPCBroker
	mu     sync.Mutex
	conn   *grpc.ClientConn
}

// dial connects to the host services served under id and returns them as a
// Host, closing an earlier connection.
func (h *hostConn) dial(id uint32) (Host, error) {
	conn, err := h.broker.Dial(id)
	if err != nil {
		return Host{}, errs.E(errs.Unavailable, "sdk.Configure", err)
	}
	h.mu.Lock()
	old := h.conn
	h.conn = conn
	h.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return Host{KV: kvClient{pluginv1.NewKVClient(conn)}, Log: logClient{pluginv1.NewLogClient(conn)}}, nil
}

// kvClient is the host's KV as the plugin sees it.
type kvClient struct{ c pluginv1.KVClient }

func (k kvClient) Get(ctx context.Context, key string) ([]byte, bool, error) {
	r, err := k.c.Get(ctx, &pluginv1.KVGetRequest{Key: key})
	if err != nil {
		return nil, false, fromStatus(err)
	}
	return r.Value, r.Found, nil
}

func (k kvClient) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return errs.Errorf(errs.Invalid, "sdk.KV.Set", "negative ttl")
	}
	_, err := k.c.Set(ctx, &pluginv1.KVSetRequest{Key: key, Value: value, TtlMicros: micros(ttl)})
	return fromStatus(err)
}

func (k kvClient) Delete(ctx context.Context, key string) (bool, error) {
	r, err := k.c.Delete(ctx, &pluginv1.KVDeleteRequest{Key: key})
	if err != nil {
		return false, fromStatus(err)
	}
	return r.Existed, nil
}

func (k kvClient) CompareAndSet(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if ttl < 0 {
		return false, errs.Errorf(errs.Invalid, "sdk.KV.CompareAndSet", "negative ttl")
	}
	r, err := k.c.CompareAndSet(ctx, &pluginv1.KVCompareAndSetRequest{
		Key: key, Old: old, Absent: old == nil, Value: value, TtlMicros: micros(ttl),
	})
	if err != nil {
		return false, fromStatus(err)
	}
	return r.Swapped, nil
}

// logClient is the host's log as the plugin sees it.
type logClient struct{ c pluginv1.LogClient }

// Log sends the line even if ctx is done (a plugin often logs why it gave
// up), and writes it to stderr if the host cannot be reached.
func (l logClient) Log(ctx context.Context, level, msg string, fields map[string]string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := l.c.Write(ctx, &pluginv1.LogRequest{Level: level, Message: msg, Fields: fields})
	if err != nil {
		lvl, perr := zerolog.ParseLevel(level)
		if perr != nil || lvl == zerolog.NoLevel {
			lvl = zerolog.InfoLevel
		}
		e := Logger().WithLevel(lvl)
		for k, v := range fields {
			e = e.Str(k, v)
		}
		e.Str("logError", err.Error()).Msg(msg)
	}
}

// duration converts the wire's microseconds to a duration.
func duration(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
