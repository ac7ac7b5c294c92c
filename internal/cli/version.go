package cli

import (
	"runtime"
	"runtime/debug"
)

// version is stamped by the Makefile:
// -ldflags "-X github.com/moatmesh/moat/internal/cli.version=v1.2.3".
var version string

// Version describes the build: the stamped version, else the module
// version (go install …@v1.2.3), else the VCS revision the build recorded;
// then the commit, Go version and platform.
func Version() string {
	bi, _ := debug.ReadBuildInfo()
	return describe(version, bi)
}

func describe(stamped string, bi *debug.BuildInfo) string {
	v, rev, dirty := stamped, "", false
	goVersion := runtime.Version()
	if bi != nil {
		goVersion = bi.GoVersion
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	short := rev
	if len(short) > 12 {
		short = short[:12]
	}
	if dirty && short != "" {
		short += "-dirty"
	}
	switch {
	case v == "" && short != "":
		v = "dev-" + short
	case v == "":
		v = "dev (built without version or VCS information)"
	}
	detail := goVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
	if short != "" {
		detail = "commit " + short + ", " + detail
	}
	return v + " (" + detail + ")"
}
