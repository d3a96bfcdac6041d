package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// kvCASScript is KV.CompareAndSet on the one key KEYS[1]: if ARGV[1] is "0" the
// key must be absent, else it must hold exactly ARGV[2]; then it is set to
// ARGV[3], with an expiry of ARGV[4] milliseconds unless that is "0". Returns 1 if
// it set the key.
var kvCASScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
if ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1`)

// PluginKV returns the key-value namespace of a plugin: key k of namespace ns is
// P kv:<ns>:<k>, each key in its own slot, so every operation is one command or
// one script on one key. A namespace must be non-empty and free of ':', so that
// no two namespaces share a key; with any other, every call answers Invalid.
// Keys are any non-empty string.
func (s *Store) PluginKV(namespace string) core.KV {
	kv := &pluginKV{s: s, prefix: s.k.kv(namespace)}
	if namespace == "" || strings.Contains(namespace, ":") {
		kv.err = core.Errorf(core.Invalid, "redisstore.PluginKV", "plugin namespace %q is not valid", namespace)
	}
	return kv
}

// pluginKV is a core.KV on one namespace of a Store.
type pluginKV struct {
	s      *Store
	prefix string // P kv:<namespace>:
	err    error  // set for an invalid namespace
}

var _ core.KV = (*pluginKV)(nil)

// key returns the Redis key of k: Invalid for an empty key or a bad namespace.
func (kv *pluginKV) key(op, k string) (string, error) {
	if kv.err != nil {
		return "", kv.err
	}
	if k == "" {
		return "", core.Errorf(core.Invalid, op, "empty key")
	}
	return kv.prefix + k, nil
}

// ttlMillis converts a TTL to whole milliseconds, rounding up so that a positive
// TTL never means "no expiry"; 0 is no expiry, a negative TTL Invalid.
func ttlMillis(op string, ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, core.Errorf(core.Invalid, op, "negative ttl %v", ttl)
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond), nil
}

// Get returns the value of key and whether it exists (GET).
func (kv *pluginKV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	const op = "redisstore.KV.Get"
	ctx, cancel := kv.s.bounds.reading(ctx)
	defer cancel()
	k, err := kv.key(op, key)
	if err != nil {
		return nil, false, err
	}
	v, err := kv.s.rdb.Get(ctx, k).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fail(ctx, op, err)
	}
	return v, true, nil
}

// Set stores value under key (SET, with PX when ttl > 0; ttl 0 removes an
// earlier expiry).
func (kv *pluginKV) Set(ctx context.Context, key string, value []byte, ttl time.Duration) (err error) {
	const op = "redisstore.KV.Set"
	defer kv.s.replicated(ctx, op, &err)
	ctx, cancel := kv.s.bounds.writing(ctx)
	defer cancel()
	k, err := kv.key(op, key)
	if err != nil {
		return err
	}
	ms, err := ttlMillis(op, ttl)
	if err != nil {
		return err
	}
	return fail(ctx, op, kv.s.rdb.Set(ctx, k, value, time.Duration(ms)*time.Millisecond).Err())
}

// Delete removes key and reports whether it existed (DEL): of concurrent
// deletes of one key, exactly one sees true.
func (kv *pluginKV) Delete(ctx context.Context, key string) (_ bool, err error) {
	const op = "redisstore.KV.Delete"
	defer kv.s.replicated(ctx, op, &err)
	ctx, cancel := kv.s.bounds.writing(ctx)
	defer cancel()
	k, err := kv.key(op, key)
	if err != nil {
		return false, err
	}
	n, err := kv.s.rdb.Del(ctx, k).Result()
	if err != nil {
		return false, fail(ctx, op, err)
	}
	return n == 1, nil
}

// CompareAndSet stores value under key only if the key holds exactly old (nil
// old: only if it is absent; an empty non-nil old matches an empty value), in
// one script, and reports whether it did. ttl as for Set.
func (kv *pluginKV) CompareAndSet(ctx context.Context, key string, old, value []byte, ttl time.Duration) (_ bool, err error) {
	const op = "redisstore.KV.CompareAndSet"
	defer kv.s.replicated(ctx, op, &err)
	ctx, cancel := kv.s.bounds.writing(ctx)
	defer cancel()
	k, err := kv.key(op, key)
	if err != nil {
		return false, err
	}
	ms, err := ttlMillis(op, ttl)
	if err != nil {
		return false, err
	}
	present := "1"
	if old == nil {
		present, old = "0", []byte{}
	}
	n, err := kvCASScript.Run(ctx, kv.s.rdb, []string{k}, present, old, value, strconv.FormatInt(ms, 10)).Int()
	if err != nil {
		return false, fail(ctx, op, err)
	}
	return n == 1, nil
}
