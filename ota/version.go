package ota

import (
	"strconv"
	"strings"
)

// compareVersions orders two versions like v1.4.0: numeric components
// first (missing ones count as 0), then a release above any of its
// pre-releases (v1.4.0-rc1 < v1.4.0), pre-releases by text. ok is false
// when either is not a version (a "dev" build).
func compareVersions(a, b string) (c int, ok bool) {
	if !versionRe.MatchString(a) || !versionRe.MatchString(b) {
		return 0, false
	}
	na, pa := splitVersion(a)
	nb, pb := splitVersion(b)
	for i := range 3 {
		if na[i] != nb[i] {
			if na[i] < nb[i] {
				return -1, true
			}
			return 1, true
		}
	}
	switch {
	case pa == pb:
		return 0, true
	case pa == "":
		return 1, true
	case pb == "":
		return -1, true
	case pa < pb:
		return -1, true
	}
	return 1, true
}

func splitVersion(v string) ([3]uint64, string) {
	v = strings.TrimPrefix(v, "v")
	v, pre, _ := strings.Cut(v, "-")
	var n [3]uint64
	for i, s := range strings.SplitN(v, ".", 3) {
		n[i], _ = strconv.ParseUint(s, 10, 64) // a huge number saturates at the maximum: still ordered
	}
	return n, pre
}
