package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const module = "github.com/gatehouse/gatehouse"

// goList runs `go list -json=ImportPath,Deps,Standard args...` and returns the
// packages it lists. It skips the test when the go tool is not installed.
func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go tool is not installed (%v): cannot list the SDK's dependencies", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gotool, append([]string{"list", "-json=ImportPath,Deps,Standard"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list's output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %s listed no package", strings.Join(args, " "))
	}
	return pkgs
}

type listedPackage struct {
	ImportPath string
	Deps       []string
	Standard   bool
}

// TestPluginsImportNothingOfCore: a plugin links the SDK and nothing of the
// server's core, so an outside plugin does not link the core's libraries and
// a change inside the core is no change to the plugin contract. Every package
// under plugins/, tests included, is checked.
func TestPluginsImportNothingOfCore(t *testing.T) {
	for _, p := range goList(t, "-test", module+"/plugins/...") {
		for _, d := range p.Deps {
			if d == module+"/core" || strings.HasPrefix(d, module+"/core/") {
				t.Errorf("%s depends on %s: nothing under plugins/ may import the core", p.ImportPath, d)
			}
		}
	}
}

// TestErrsIsStandardLibraryOnly: the core imports plugins/sdk/errs for its
// error kinds, so errs must stay a leaf that needs nothing but the standard
// library.
func TestErrsIsStandardLibraryOnly(t *testing.T) {
	for _, p := range goList(t, "-deps", module+"/plugins/sdk/errs") {
		if !p.Standard && p.ImportPath != module+"/plugins/sdk/errs" {
			t.Errorf("plugins/sdk/errs depends on %s, outside the standard library", p.ImportPath)
		}
	}
}
