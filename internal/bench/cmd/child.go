package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/adminapi"
	"github.com/gatehouse/gatehouse/configs"
	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/internal/asynclog"
	"github.com/gatehouse/gatehouse/internal/bench"
)

// child serves one of the run's servers on a free loopback port, printing its
// address on the first line of stdout, until ctx ends or stdin closes.
//
//   - bare: the bare ceiling;
//   - hgetall: the one-HGETALL ceiling on the Redis at redisAddr;
//   - profiled: a copy of Gatehouse's public API, built as `gatehouse serve`
//     builds it, on the same Redis and data, with its /verify cache off (every
//     verification a miss); profiled-hit: the same with the cache on. "start"
//     on stdin starts a CPU profile, "stop" writes it to cpuprofile and exits.
//     Profiling a copy keeps a profiling endpoint out of the product;
//   - profiled-admin: a copy of the admin API, built the same way (its admin
//     key the run's), profiled the same way (-profile-admin).
func child(ctx context.Context, mode, redisAddr, cpuprofile string) error {
	var h http.Handler
	switch mode {
	case "bare":
		h = bench.BareCeiling()
	case "hgetall":
		rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
		defer rdb.Close()
		h = bench.HGETALLCeiling(rdb)
	case "profiled", "profiled-hit", "profiled-admin":
		if _, ok := os.LookupEnv("GOGC"); !ok {
			debug.SetGCPercent(400) // serve's garbage-collection target (cmd/gatehouse, gcPercent)
		}
		store := redisstore.New(redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{redisAddr}}), redisstore.Options{Prefix: prefix})
		defer store.Close()
		models, err := core.LoadModels(configs.Models)
		if err != nil {
			return err
		}
		var cache core.VerifyCacheOptions // "profiled": off, every verification a miss
		if mode == "profiled-hit" {
			cache = core.VerifyCacheOptions{Size: core.DefaultVerifyCacheSize}
		}
		svc := core.NewService(store, core.Options{Models: models, Limiter: store.Limiter(), VerifyCache: cache, AdminKey: benchAdminKey})
		go svc.FollowChanges(ctx) // as serve does, whatever the cache
		// The access log is written as serve writes it (asynchronously, in
		// batches), to a file beside the profile.
		f, err := os.Create(cpuprofile + ".access.log")
		if err != nil {
			return err
		}
		defer f.Close()
		aw := asynclog.New(f, asynclog.Options{})
		defer aw.Close()
		log := zerolog.New(f).Level(zerolog.InfoLevel).With().Timestamp().Logger()
		api := adminapi.New(svc, adminapi.Options{Log: log, AccessLog: aw})
		h = api.Public()
		if mode == "profiled-admin" {
			h = api.Admin()
		}
		// Followed, and for long enough that /verify takes its failure
		// throttles from the process (a few seconds), as in a running one.
		for deadline := time.Now().Add(20 * time.Second); !svc.ChangesFollowed() || !svc.ThrottlesFollowed(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("the change feed not followed, or its throttles not in use, after 20 s")
			}
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Println(ln.Addr().String())

	done := make(chan error, 1)
	go func() { done <- control(os.Stdin, cpuprofile) }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-done:
		return err
	}
}

// control reads the parent's commands until stdin closes or a profile is written.
func control(in io.Reader, cpuprofile string) error {
	sc := bufio.NewScanner(in)
	var f *os.File
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case "start":
			var err error
			if f, err = os.Create(cpuprofile); err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
		case "stop":
			if f == nil {
				return fmt.Errorf("stop before start")
			}
			pprof.StopCPUProfile()
			return f.Close()
		}
	}
	return nil
}
