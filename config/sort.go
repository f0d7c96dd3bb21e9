package config

import (
	"sort"

	"github.com/osgate/osgate/internal/strict"
)

// sortErrors orders errors by path, array indexes by number, keeping the
// order of problems found at one path.
func sortErrors(es strict.Errors) {
	sort.SliceStable(es, func(i, j int) bool { return naturalLess(es[i].Path, es[j].Path) })
}

// naturalLess compares strings with runs of digits compared as numbers, so
// that "devices[2]" sorts before "devices[10]".
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			na, ra := leadingDigits(a)
			nb, rb := leadingDigits(b)
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// leadingDigits splits s after its leading digits, dropping leading zeros.
func leadingDigits(s string) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	j := 0
	for j < i-1 && s[j] == '0' {
		j++
	}
	return s[j:i], s[i:]
}

func sortStrings(s []string) { sort.Strings(s) }
