package fleet

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseShare reads "5%" (a share) or "3" (a count) for --canary, --step and
// --max-failures.
func ParseShare(s string) (Share, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || !(f >= 0 && f <= 100) {
			return Share{}, fmt.Errorf("%q: a share is 0%% to 100%%", s)
		}
		return Share{Percent: f}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return Share{}, fmt.Errorf("%q: give a share (5%%) or a number of gateways (3)", s)
	}
	return Share{Count: n, IsCount: true}, nil
}

// Share is a part of a set of gateways: a percentage or a count.
type Share struct {
	Percent float64 `json:"percent,omitempty"`
	Count   int     `json:"count,omitempty"`
	IsCount bool    `json:"is_count,omitempty"`
}

// Of is how many of n gateways the share is: a percentage rounds up, so
// 5 % of 4 gateways is 1.
func (s Share) Of(n int) int {
	if s.IsCount {
		return min(s.Count, n)
	}
	k := int(math.Ceil(float64(n)*s.Percent/100 - 1e-9)) // 7% of 100 is 7, not 7.000000000000001
	return min(k, n)
}

func (s Share) String() string {
	if s.IsCount {
		return strconv.Itoa(s.Count)
	}
	return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
}

// Allowed is how many failures of n gateways the share allows before a
// step halts: a percentage rounds down, so 2 % of a canary of 1 is 0 and
// its one failure halts the rollout.
func (s Share) Allowed(n int) int {
	if s.IsCount {
		return s.Count
	}
	return int(math.Floor(float64(n)*s.Percent/100 + 1e-9))
}
