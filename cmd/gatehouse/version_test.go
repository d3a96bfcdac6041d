package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBuildStamp: the link-time values win; else the module version and the
// VCS settings the go command records; else "devel".
func TestBuildStamp(t *testing.T) {
	vcs := &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-12-06T18:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	devel := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
	tests := []struct {
		name                string
		linkVer, linkCommit string
		bi                  *debug.BuildInfo
		want                buildStamp
	}{
		{"build info only", "", "", vcs, buildStamp{Version: "v1.4.0", Commit: "0123456789abcdef", Time: "2026-12-06T18:00:00Z", Modified: true}},
		{"nothing known", "", "", devel, buildStamp{Version: "devel"}},
		{"no build info", "", "", nil, buildStamp{Version: "devel"}},
		{"stamped, no vcs", "v2.0.0", "fedcba", devel, buildStamp{Version: "v2.0.0", Commit: "fedcba"}},
		{"stamped over another revision", "v2.0.0", "fedcba", vcs, buildStamp{Version: "v2.0.0", Commit: "fedcba"}},
		{"stamped, same revision", "v2.0.0", "0123456789abcdef", vcs, buildStamp{Version: "v2.0.0", Commit: "0123456789abcdef", Time: "2026-12-06T18:00:00Z", Modified: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readBuildStamp(tt.linkVer, tt.linkCommit, tt.bi)
			got.Go = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("stamp (-want +got):\n%s", diff)
			}
		})
	}
	var b bytes.Buffer
	printVersion(&b, buildStamp{Version: "v1.4.0", Commit: "0123", Time: "2026-12-06T18:00:00Z", Modified: true, Go: "go1.26 linux/amd64"})
	want := "gatehouse v1.4.0\ncommit: 0123 (2026-12-06T18:00:00Z), with uncommitted changes\ngo: go1.26 linux/amd64\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("version text (-want +got):\n%s", diff)
	}
}

// TestVersionStamped builds the binary as `make build` does (-ldflags -X) and
// asks it: `gatehouse version` and `gatehouse --version` print what was stamped.
func TestVersionStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	args := []string{"build", "-ldflags", "-X main.version=v9.8.7-test -X main.commit=c0ffee1234", "-o", bin}
	if raceOn {
		// As the test binary was built: its packages are in the build cache
		// then, where a clean CI clone (make test) has no others, and a build
		// without -race compiled every one again (a minute on a loaded machine).
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, arg := range []string{"version", "--version", "-version"} {
		out, err := exec.Command(bin, arg).CombinedOutput()
		if err != nil {
			t.Fatalf("gatehouse %s: %v\n%s", arg, err, out)
		}
		if !strings.HasPrefix(string(out), "gatehouse v9.8.7-test\ncommit: c0ffee1234\ngo: go") {
			t.Errorf("gatehouse %s printed:\n%s", arg, out)
		}
	}
}
