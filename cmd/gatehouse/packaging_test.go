package main

import (
	"context"
	"flag"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// The packaging files, relative to this package.
const (
	dockerfilePath = "../../Dockerfile"
	composePath    = "../../compose.yaml"
	unitPath       = "../../packaging/gatehouse.service"
)

// knownEnv reports whether name is a variable gatehouse reads: a setting's or
// one of the secrets, which have no setting.
func knownEnv(name string) bool {
	if slices.Contains([]string{"GATEHOUSE_ADMIN_KEY", "GATEHOUSE_ENCRYPTION_KEYS", "GATEHOUSE_CONFIG"}, name) {
		return true
	}
	return slices.ContainsFunc(settings(), func(s setting) bool { return s.env == name })
}

// dockerInstruction is one instruction of a Dockerfile, continuation lines joined.
type dockerInstruction struct {
	op, args string
}

// readDockerfile returns the instructions of the Dockerfile at p, by stage
// (each starting with its FROM).
func readDockerfile(t *testing.T, p string) [][]dockerInstruction {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]dockerInstruction
	var cur string
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cur += line
		if strings.HasSuffix(cur, `\`) {
			cur = strings.TrimSuffix(cur, `\`) + " "
			continue
		}
		op, args, _ := strings.Cut(cur, " ")
		cur = ""
		in := dockerInstruction{strings.ToUpper(op), strings.Join(strings.Fields(args), " ")}
		if in.op == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	return stages
}

// dockerEnv parses ENV k=v k2=v2 instructions.
func dockerEnv(stage []dockerInstruction) map[string]string {
	env := map[string]string{}
	for _, in := range stage {
		if in.op != "ENV" {
			continue
		}
		for kv := range strings.FieldsSeq(in.args) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	return env
}

// portOf returns the port of a listen address.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return port
}

// TestDockerfile: the image builds the static binary from ./cmd/gatehouse with
// the version stamped, runs it as its entry point, as a non-root user, exposes
// the ports its listen addresses name, sets only variables gatehouse reads,
// and its admin-key file lies in a folder that user owns.
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t, dockerfilePath)
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final one", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasSuffix(build[0].args, " AS build") {
		t.Errorf("first stage %q is not named build", build[0].args)
	}
	var run string
	for _, in := range build {
		if in.op == "RUN" && strings.Contains(in.args, "./cmd/gatehouse") {
			run = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0 go build", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "-o /out/gatehouse ./cmd/gatehouse"} {
		if !strings.Contains(run, want) {
			t.Errorf("the build stage's go build lacks %q: %q", want, run)
		}
	}
	var user, entry string
	copies := map[string]string{} // destination → instruction
	var expose []string
	for _, in := range final {
		switch in.op {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "COPY":
			f := strings.Fields(in.args)
			copies[f[len(f)-1]] = in.args
		case "EXPOSE":
			expose = append(expose, strings.Fields(in.args)...)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if uid == "" || uid == "0" || uid == "root" {
		t.Errorf("final stage runs as %q: want a non-root user", user)
	}
	bin := "/usr/local/bin/gatehouse"
	if entry != `["`+bin+`"]` {
		t.Errorf("ENTRYPOINT %s, want [%q]", entry, bin)
	}
	if c := copies[bin]; !strings.Contains(c, "--from=build /out/gatehouse ") {
		t.Errorf("%s is not copied from the build stage: %q", bin, c)
	}
	env := dockerEnv(final)
	for k := range env {
		if !knownEnv(k) {
			t.Errorf("ENV %s: gatehouse reads no such variable", k)
		}
	}
	ports := []string{portOf(t, env["GATEHOUSE_ADMIN_ADDR"]), portOf(t, env["GATEHOUSE_PUBLIC_ADDR"])}
	slices.Sort(ports)
	slices.Sort(expose)
	if !slices.Equal(ports, expose) {
		t.Errorf("EXPOSE %v, but the listeners are on %v", expose, ports)
	}
	keyDir := path.Dir(env["GATEHOUSE_ADMIN_KEY_FILE"])
	if c := copies[keyDir]; !strings.Contains(c, "--chown="+user+" ") {
		t.Errorf("the admin key's folder %s is not made for user %s: %q", keyDir, user, c)
	}
	if _, ok := copies[env["GATEHOUSE_PLUGIN_DIR"]+"/gatehouse-plugin-oidc"]; !ok {
		t.Errorf("GATEHOUSE_PLUGIN_DIR %s does not hold the oidc plugin", env["GATEHOUSE_PLUGIN_DIR"])
	}
}

// composeFile is what TestCompose reads of compose.yaml.
type composeFile struct {
	Services map[string]struct {
		Image       string            `json:"image"`
		Command     []string          `json:"command"`
		Environment map[string]string `json:"environment"`
		Ports       []string          `json:"ports"`
		Volumes     []string          `json:"volumes"`
		DependsOn   map[string]any    `json:"depends_on"`
	} `json:"services"`
}

// TestCompose: Redis runs with AOF on; gatehouse reaches it by its service
// name, sets only variables it reads, publishes the ports the image exposes
// (the admin one on loopback only) and keeps its state folder in a volume.
func TestCompose(t *testing.T) {
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	redis, gh := c.Services["redis"], c.Services["gatehouse"]
	if i := slices.Index(redis.Command, "--appendonly"); i < 0 || i+1 >= len(redis.Command) || redis.Command[i+1] != "yes" {
		t.Errorf("redis command %q: want --appendonly yes", redis.Command)
	}
	if _, ok := gh.DependsOn["redis"]; !ok {
		t.Error("gatehouse does not depend on redis")
	}
	for k := range gh.Environment {
		if !knownEnv(k) {
			t.Errorf("environment %s: gatehouse reads no such variable", k)
		}
	}
	u, err := url.Parse(gh.Environment["GATEHOUSE_REDIS_URL"])
	if err != nil || u.Hostname() == "" {
		t.Fatalf("GATEHOUSE_REDIS_URL %q: %v", gh.Environment["GATEHOUSE_REDIS_URL"], err)
	}
	if _, ok := c.Services[u.Hostname()]; !ok {
		t.Errorf("GATEHOUSE_REDIS_URL names host %q, not a service", u.Hostname())
	}
	env := dockerEnv(readDockerfile(t, dockerfilePath)[1])
	admin, public := portOf(t, env["GATEHOUSE_ADMIN_ADDR"]), portOf(t, env["GATEHOUSE_PUBLIC_ADDR"])
	published := map[string]string{} // container port → host address
	for _, p := range gh.Ports {
		i := strings.LastIndex(p, ":")
		published[p[i+1:]] = p[:i]
	}
	if host, ok := published[admin]; !ok || !strings.HasPrefix(host, "127.0.0.1:") {
		t.Errorf("admin port %s published as %q: want on the host's loopback only", admin, host)
	}
	if _, ok := published[public]; !ok {
		t.Errorf("public port %s not published: %q", public, gh.Ports)
	}
	keyDir := path.Dir(env["GATEHOUSE_ADMIN_KEY_FILE"])
	if !slices.ContainsFunc(gh.Volumes, func(v string) bool { return strings.HasSuffix(v, ":"+keyDir) }) {
		t.Errorf("no volume holds %s (the generated admin key, the mail outbox): %q", keyDir, gh.Volumes)
	}
}

// TestSystemdUnit: the unit starts `gatehouse serve` with flags serve has,
// sets only variables gatehouse reads, keeps the admin key in its state
// folder, and runs unprivileged and sandboxed.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string][]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			kv[k] = append(kv[k], v)
		}
	}
	cmdline := strings.Fields(kv["ExecStart"][0])
	if cmdline[0] != "/usr/local/bin/gatehouse" || cmdline[1] != "serve" {
		t.Errorf("ExecStart %q: want /usr/local/bin/gatehouse serve ...", cmdline)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	newConfigFlags(fs)
	if err := fs.Parse(cmdline[2:]); err != nil {
		t.Errorf("ExecStart's flags: %v", err)
	}
	env := map[string]string{}
	for _, e := range kv["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
		if !knownEnv(k) {
			t.Errorf("Environment %s: gatehouse reads no such variable", k)
		}
	}
	if d := "/var/lib/" + kv["StateDirectory"][0]; path.Dir(env["GATEHOUSE_ADMIN_KEY_FILE"]) != d {
		t.Errorf("GATEHOUSE_ADMIN_KEY_FILE %s is not in the state directory %s", env["GATEHOUSE_ADMIN_KEY_FILE"], d)
	}
	for k, want := range map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	} {
		if got := kv[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
}

// TestImage builds the image with podman (or buildah) and runs `gatehouse
// version` and a server in it. Only with GATEHOUSE_IMAGE_TEST=1: building
// needs the base images from a registry, and running needs a container
// runtime, which CI machines and this project's sandboxes may lack.
func TestImage(t *testing.T) {
	if os.Getenv("GATEHOUSE_IMAGE_TEST") != "1" {
		t.Skip("set GATEHOUSE_IMAGE_TEST=1 to build and run the container image with podman or buildah")
	}
	tool := ""
	for _, name := range []string{"podman", "buildah"} {
		if _, err := exec.LookPath(name); err == nil {
			tool = name
			break
		}
	}
	if tool == "" {
		t.Fatal("GATEHOUSE_IMAGE_TEST=1 but neither podman nor buildah is installed")
	}
	tag := "localhost/gatehouse:image-test"
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, tool, "build", "--build-arg", "VERSION=v0.0.0-image-test", "--build-arg", "COMMIT=imagetest", "-t", tag, "../..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s build: %v\n%s", tool, err, out)
	}
	t.Cleanup(func() { _ = exec.Command(tool, "rmi", "-f", tag).Run() })
	if tool != "podman" {
		t.Skip("built with buildah; running the image needs podman")
	}
	out, err := exec.CommandContext(ctx, "podman", "run", "--rm", tag, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("podman run %s version: %v\n%s", tag, err, out)
	}
	if !strings.HasPrefix(string(out), "gatehouse v0.0.0-image-test\ncommit: imagetest\n") {
		t.Errorf("gatehouse version in the image:\n%s", out)
	}
	out, err = exec.CommandContext(ctx, "podman", "run", "--rm", "--entrypoint", "/usr/local/bin/gatehouse", tag, "serve", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-redis-url") {
		t.Errorf("gatehouse serve --help in the image: %v\n%s", err, out)
	}
}
