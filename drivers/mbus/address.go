package mbus

import (
	"fmt"
	"strconv"
	"strings"
)

// Link-layer addresses with a special meaning (EN 13757-2).
const (
	addrMaxPrimary = 250
	addrSelected   = 0xFD // the slave selected by secondary address
	addrBroadcast  = 0xFF // all slaves, none answers
)

// Address is how a meter is reached: a primary address 0–250, or a
// secondary address of 16 hex digits (ID, manufacturer, version, medium)
// in which F matches any digit.
type Address struct {
	Primary   int    // used when Secondary is ""
	Secondary string // 16 upper-case hex digits, or ""
}

// ParseAddress reads "5" (primary), "12345678" (8-digit ID, the rest
// wildcards) or "12345678A5110407" / "1234FFFFFFFFFFFF" (secondary).
func ParseAddress(s string) (Address, error) {
	s = strings.TrimSpace(s)
	if len(s) == 8 || len(s) == 16 {
		sec := strings.ToUpper(s)
		if len(sec) == 8 {
			sec += "FFFFFFFF"
		}
		for i := 0; i < len(sec); i++ {
			c := sec[i]
			if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
				return Address{}, fmt.Errorf("secondary address %q: %q is not a hex digit", s, c)
			}
		}
		for i := 0; i < 8; i++ {
			if c := sec[i]; c >= 'A' && c <= 'E' {
				return Address{}, fmt.Errorf("secondary address %q: the ID (first 8 digits) takes 0-9 and F (wildcard), not %q", s, c)
			}
		}
		return Address{Secondary: sec}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > addrMaxPrimary {
		return Address{}, fmt.Errorf("address %q: want a primary address 0-%d, an 8-digit ID or a 16-digit secondary address", s, addrMaxPrimary)
	}
	return Address{Primary: n}, nil
}

func (a Address) String() string {
	if a.Secondary != "" {
		return a.Secondary
	}
	return strconv.Itoa(a.Primary)
}

// selectData is the 8 data bytes of a selection (SND_UD, CI 0x52) for a
// secondary address: ID as BCD, least significant byte first, then
// manufacturer (2 bytes in the order sent: the address shows them that
// way, as libmbus does), version, medium; F nibbles and FF bytes are
// wildcards.
func selectData(sec string) [8]byte {
	var d [8]byte
	hexByte := func(i int) byte {
		v, _ := strconv.ParseUint(sec[i:i+2], 16, 8)
		return byte(v)
	}
	for i := 0; i < 4; i++ {
		d[3-i] = hexByte(2 * i)
	}
	d[4], d[5] = hexByte(8), hexByte(10)
	d[6], d[7] = hexByte(12), hexByte(14)
	return d
}
