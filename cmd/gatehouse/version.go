package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are set at link time by `make build` and the Dockerfile:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)"
//
// Left empty, they come from the build information the go command records
// (the module version, and vcs.revision when it builds in a git checkout with
// -buildvcs); a build with neither says "devel".
var version, commit string

// buildStamp is what a binary knows of its own build.
type buildStamp struct {
	Version  string // v1.2.3, a pseudo-version, a git describe, or "devel"
	Commit   string // the full vcs revision; "" when unknown
	Time     string // the commit's time (RFC 3339); "" when unknown
	Modified bool   // built from a work tree with uncommitted changes
	Go       string // the Go version and platform
}

// readBuildStamp combines the link-time values with bi (nil when the binary
// carries no build information): the link-time values win.
func readBuildStamp(linkVersion, linkCommit string, bi *debug.BuildInfo) buildStamp {
	st := buildStamp{Version: linkVersion, Commit: linkCommit, Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		if st.Version == "" {
			st.Version = "devel"
		}
		return st
	}
	if st.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		st.Version = bi.Main.Version
	}
	if st.Version == "" {
		st.Version = "devel"
	}
	var rev string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			st.Time = s.Value
		case "vcs.modified":
			st.Modified = s.Value == "true"
		}
	}
	if st.Commit == "" {
		st.Commit = rev
	} else if rev != st.Commit {
		// The linked commit says nothing of the recorded time or state.
		st.Time, st.Modified = "", false
	}
	return st
}

// currentBuild is this binary's stamp.
func currentBuild() buildStamp {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return readBuildStamp(version, commit, bi)
}

// buildVersion is the version the logs and /healthz-style answers name.
func buildVersion() string { return currentBuild().Version }

// printVersion writes `gatehouse version`'s answer: the version on the first
// line (what scripts read), then the commit and the Go toolchain.
func printVersion(w io.Writer, st buildStamp) {
	fmt.Fprintf(w, "gatehouse %s\n", st.Version)
	c := st.Commit
	if c == "" {
		c = "unknown"
	}
	if st.Time != "" {
		c += " (" + st.Time + ")"
	}
	if st.Modified {
		c += ", with uncommitted changes"
	}
	fmt.Fprintf(w, "commit: %s\ngo: %s\n", c, st.Go)
}
