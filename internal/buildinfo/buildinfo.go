// Package buildinfo says which build of Quill is running, for --version and
// the ops endpoints. Set the version at build time with
//
//	go build -ldflags "-X github.com/quillpay/quill/internal/buildinfo.version=v1.2.3" ./cmd/...
//
// Without it, the module version or the VCS revision Go embeds is used, and
// "devel" if there is neither.
package buildinfo

import "runtime/debug"

var version = ""

// Version returns the build's version, e.g. "v1.2.3", "devel (4f2a9c1d03be)"
// or "devel"; "+dirty" marks a build from a modified work tree.
func Version() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return or(v, "devel")
	}
	if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	v = or(v, "devel")
	if len(rev) >= 12 {
		v += " (" + rev[:12]
		if dirty {
			v += "+dirty"
		}
		v += ")"
	}
	return v
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
