package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// egDir holds the pinned Express Gateway that adminapi's CLI test installs.
const egDir = "adminapi/testdata/eg"

// egServer is a running Express Gateway: its admin API and a user it holds.
type egServer struct {
	adminAddr string
	user      string
}

// startEG runs Express Gateway's admin API on the run's Redis (its own
// namespace), when node and the pinned package are installed.
func startEG(ctx context.Context, p *procs, dir, redisAddr string) (*egServer, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node is not installed")
	}
	pkg, err := filepath.Abs(filepath.Join(egDir, "node_modules", "express-gateway"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(pkg, "lib", "index.js")); err != nil {
		return nil, fmt.Errorf("%s is not installed (npm ci in %s)", pkg, egDir)
	}
	conf := filepath.Join(dir, "eg-config")
	if err := os.CopyFS(filepath.Join(conf, "models"), os.DirFS(filepath.Join(pkg, "lib", "config", "models"))); err != nil {
		return nil, err
	}
	rhost, rport, _ := net.SplitHostPort(redisAddr)
	var last error
	for range 3 { // ports found free may be taken before node binds them
		adminAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		httpAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		_, aport, _ := net.SplitHostPort(adminAddr)
		_, hport, _ := net.SplitHostPort(httpAddr)
		system := fmt.Sprintf(`db:
  redis:
    emulate: false
    host: %s
    port: %s
    namespace: EGBENCH
crypto:
  cipherKey: sensitiveKey
  algorithm: aes256
  saltRounds: 10
session:
  secret: keyboard cat
  resave: false
  saveUninitialized: false
accessTokens:
  timeToExpiry: 7200000
refreshTokens:
  timeToExpiry: 7200000
authorizationCodes:
  timeToExpiry: 300000
`, rhost, rport)
		gateway := fmt.Sprintf("http:\n  port: %s\nadmin:\n  port: %s\n  host: 127.0.0.1\napiEndpoints: {}\nserviceEndpoints: {}\npolicies: []\npipelines: {}\n", hport, aport)
		if err := os.WriteFile(filepath.Join(conf, "system.config.yml"), []byte(system), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(conf, "gateway.config.yml"), []byte(gateway), 0o644); err != nil {
			return nil, err
		}
		log, err := os.Create(filepath.Join(dir, "express-gateway.log"))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(node, "-e", fmt.Sprintf("require(%q)().load(%q).run()", pkg, conf))
		cmd.Env = append(os.Environ(), "NODE_ENV=production", "LOG_LEVEL=error")
		cmd.Stdout, cmd.Stderr = log, log
		if err := p.start(cmd); err != nil {
			return nil, err
		}
		if last = waitHTTP(ctx, "http://"+adminAddr+"/users", 20*time.Second); last != nil {
			continue
		}
		eg := &egServer{adminAddr: adminAddr, user: "egbench"}
		a := admin{base: "http://" + adminAddr, client: &http.Client{Timeout: 10 * time.Second}}
		if err := a.do(ctx, "POST", "/users", map[string]string{"username": eg.user, "firstname": "E", "lastname": "G"}, 200, nil); err != nil {
			return nil, err
		}
		return eg, nil
	}
	return nil, fmt.Errorf("express gateway did not start (see %s/express-gateway.log): %w", dir, last)
}
