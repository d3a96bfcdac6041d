package gatehouse_test

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is the module path; packages below are named relative to it.
const module = "github.com/gatehouse/gatehouse"

// rule forbids the packages matching from (a relative path, "x/..." for x and
// everything below it) to import what forbidden reports.
type rule struct {
	from      string
	forbidden func(imp string) bool
	why       string
}

// under reports whether the relative path p is dir or below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// rel returns an import path relative to the module, and whether it is one of
// the module's.
func rel(imp string) (string, bool) {
	if imp == module {
		return "", true
	}
	r, ok := strings.CutPrefix(imp, module+"/")
	return r, ok
}

// std reports whether imp is in the standard library (no dot in its first element).
func std(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}

// rules are the layout's import rules (docs/architecture.md).
var rules = []rule{
	{"core", func(imp string) bool {
		r, ok := rel(imp)
		return ok && (under(r, "adminapi") || under(r, "core/redisstore") || under(r, "core/pluginhost") ||
			under(r, "proto") || under(r, "cmd") || (under(r, "plugins") && r != "plugins/sdk/errs"))
	}, "the domain knows nothing of HTTP, Redis, plugin processes or the wire: it may use only the SDK's error-kind leaf"},
	{"core/backup", func(imp string) bool {
		r, ok := rel(imp)
		return ok && r != "core"
	}, "export and import go through core's services, never around them to a store"},
	{"core/backup/expressgateway", func(imp string) bool {
		r, ok := rel(imp)
		return ok && r != "core" && r != "core/backup"
	}, "the Express Gateway importer reads Express Gateway's Redis and writes only through core (backup.Restore)"},
	{"plugins/...", func(imp string) bool {
		r, ok := rel(imp)
		return ok && (under(r, "core") || under(r, "adminapi") || under(r, "cmd"))
	}, "a plugin author imports plugins/sdk and nothing of the core"},
	{"adminapi/...", func(imp string) bool {
		r, ok := rel(imp)
		return ok && (under(r, "core/redisstore") || under(r, "core/pluginhost") || under(r, "cmd"))
	}, "HTTP surfaces reach data and plugins only through core"},
	{"adminapi/dialect/...", func(imp string) bool {
		if std(imp) {
			return false
		}
		r, ok := rel(imp)
		return !ok || !(r == "core" || r == "adminapi/web" || r == "plugins/sdk/errs")
	}, "a dialect only translates: it may import the standard library, core and adminapi/web"},
	{"cmd/gatehouse-plugin-oidc", func(imp string) bool {
		r, ok := rel(imp)
		return ok && !under(r, "plugins")
	}, "a plugin shipped as its own binary links the plugin and the SDK, nothing of the server"},
	{"examples/...", func(imp string) bool {
		r, ok := rel(imp)
		return ok && !under(r, "plugins/sdk")
	}, "an example plugin is written as an outside author would: against plugins/sdk only"},
	{"...", func(imp string) bool {
		r, ok := rel(imp)
		return ok && under(r, "cmd")
	}, "nothing imports a command"},
	{"...", func(imp string) bool {
		r, ok := rel(imp)
		return ok && r == "internal/proctest"
	}, "internal/proctest is for tests only"},
	{"...", func(imp string) bool {
		r, ok := rel(imp)
		return ok && r == "adminapi/openapi/openapitest"
	}, "adminapi/openapi/openapitest (and its validator) is for tests only"},
}

// matches reports whether the relative package path p matches pattern.
func matches(pattern, p string) bool {
	switch {
	case pattern == "...":
		return true
	case strings.HasSuffix(pattern, "/..."):
		return under(p, strings.TrimSuffix(pattern, "/..."))
	}
	return p == pattern
}

// violations checks every package's imports (relative path → import paths)
// against the rules.
func violations(pkgs map[string][]string) []string {
	var out []string
	for p, imps := range pkgs {
		for _, imp := range imps {
			for _, r := range rules {
				if matches(r.from, p) && r.forbidden(imp) && !(r.from == "..." && under(p, "cmd")) {
					out = append(out, p+" imports "+imp+": "+r.why)
					break // one reason per import is enough
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// modulePackages returns each package of the module with its non-test imports.
func modulePackages(t *testing.T) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		bp, err := build.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		p := filepath.ToSlash(path)
		if p == "." {
			p = ""
		}
		pkgs[p] = bp.Imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestArchitecture: no package imports what the layout forbids (core stays
// free of HTTP, Redis and plugin processes; plugins free of core; HTTP
// surfaces free of the store and the plugin host; dialects only translate).
func TestArchitecture(t *testing.T) {
	pkgs := modulePackages(t)
	for _, must := range []string{"core", "adminapi", "adminapi/web", "plugins/sdk", "plugins/sdk/errs", "plugins/email",
		"adminapi/dialect/glconnectors", "adminapi/dialect/qloud", "adminapi/dialect/gaio", "adminapi/dialect/publicala"} {
		if _, ok := pkgs[must]; !ok {
			t.Errorf("package %s not found: the test walks the wrong tree", must)
		}
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestArchitectureRules: the rules catch what they are meant to.
func TestArchitectureRules(t *testing.T) {
	bad := map[string][]string{
		"core":                       {module + "/core/redisstore"},
		"plugins/email":              {module + "/core"},
		"adminapi":                   {module + "/core/pluginhost"},
		"adminapi/dialect/qloud":     {"github.com/julienschmidt/httprouter"},
		"adminapi/dialect/gaio":      {module + "/adminapi"},
		"plugins/sdk":                {module + "/cmd/gatehouse"},
		"adminapi/dialect/publicala": {"net/http", module + "/core", module + "/adminapi/web"},         // allowed
		"core/pluginhost":            {module + "/plugins/sdk", module + "/proto/gatehouse/plugin/v1"}, // allowed
	}
	got := violations(bad)
	if len(got) != 6 {
		t.Errorf("%d violations, want 6:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, v := range got {
		if strings.HasPrefix(v, "adminapi/dialect/publicala ") || strings.HasPrefix(v, "core/pluginhost ") {
			t.Errorf("allowed import refused: %s", v)
		}
	}
	if _, err := os.Stat("go.mod"); err != nil {
		t.Fatalf("the test must run at the module root: %v", err)
	}
}
