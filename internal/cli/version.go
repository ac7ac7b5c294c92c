package cli

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
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

// Build is what a binary knows about its own build.
type Build struct {
	Version   string // v1.2.3, or dev-<commit>, or "dev" without VCS information
	Revision  string // the commit, shortened, "-dirty" when modified; "" unknown
	GoVersion string
}

// BuildInfo returns this binary's Build.
func BuildInfo() Build {
	bi, _ := debug.ReadBuildInfo()
	return build(version, bi)
}

func build(stamped string, bi *debug.BuildInfo) Build {
	b := Build{Version: stamped, GoVersion: runtime.Version()}
	dirty := false
	if bi != nil {
		b.GoVersion = bi.GoVersion
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if len(b.Revision) > 12 {
		b.Revision = b.Revision[:12]
	}
	if dirty && b.Revision != "" {
		b.Revision += "-dirty"
	}
	switch {
	case b.Version == "" && b.Revision != "":
		b.Version = "dev-" + b.Revision
	case b.Version == "":
		b.Version = "dev"
	}
	return b
}

func describe(stamped string, bi *debug.BuildInfo) string {
	b := build(stamped, bi)
	v := b.Version
	if v == "dev" {
		v = "dev (built without version or VCS information)"
	}
	detail := b.GoVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
	if b.Revision != "" {
		detail = "commit " + b.Revision + ", " + detail
	}
	return v + " (" + detail + ")"
}

// BuildInfoCollector is the gauge moat_build_info, always 1, labelled
// with this binary's version, revision and Go version; every moat
// binary that serves metrics registers it.
func BuildInfoCollector() prometheus.Collector {
	b := BuildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "moat_build_info",
		Help: "Always 1; the labels say which build of moat is running.",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion,
		},
	})
	g.Set(1)
	return g
}
