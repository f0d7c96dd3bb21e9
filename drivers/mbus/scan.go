package mbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ScanOptions say what a scan looks for.
type ScanOptions struct {
	// Mode is "primary" (addresses First–Last), "secondary" (wildcard
	// search over the 8-digit IDs) or "both" (the default).
	Mode string `json:"mode" doc:"primary, secondary or both (the default)"`
	// First and Last bound the primary scan (default 0–250).
	First int  `json:"first" doc:"the first primary address to try (default 0)"`
	Last  *int `json:"last" doc:"the last primary address to try (default 250)"`
	// Progress, if set, is called after every probe, from the scanning
	// goroutine.
	Progress func(ScanProgress) `json:"-"`
}

// ScanProgress is where a scan is.
type ScanProgress struct {
	Phase string `json:"phase"` // "primary" or "secondary"
	Probe string `json:"probe"` // the address or selection mask just tried
	Done  int    `json:"done"`  // primary: addresses tried; secondary: masks tried
	Total int    `json:"total"` // primary: addresses to try; secondary: 0 (unknown)
	Found int    `json:"found"`
}

// FoundMeter is a meter a scan found.
type FoundMeter struct {
	// Address is what to put into the device's "address": the primary
	// address for the primary scan, the full secondary address for the
	// secondary scan.
	Address      string `json:"address"`
	Primary      *int   `json:"primary,omitempty"`
	Secondary    string `json:"secondary"`
	Manufacturer string `json:"manufacturer"`
	Version      int    `json:"version"`
	Medium       string `json:"medium"`
}

// ConfigDevice is a found meter as a device entry of the connector's
// config, ready to paste (channels are to be added).
type ConfigDevice struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// ScanResult is what a scan found.
type ScanResult struct {
	Meters []FoundMeter `json:"meters"`
	// Collisions are places where meters answered at once and could not be
	// told apart (two meters on one primary address, or two with one ID).
	Collisions []string `json:"collisions,omitempty"`
	// Transactions is how many requests the scan sent.
	Transactions int `json:"transactions"`
	// Devices is Meters as config entries.
	Devices []ConfigDevice `json:"devices"`
}

// Scan looks for meters on the line. It takes the line for one probe at a
// time, so polls of configured meters go on between probes.
func (b *Bus) Scan(ctx context.Context, o ScanOptions) (*ScanResult, error) {
	last := addrMaxPrimary
	if o.Last != nil {
		last = *o.Last
	}
	if o.First < 0 || last > addrMaxPrimary || o.First > last {
		return nil, fmt.Errorf("mbus: scan: primary range %d-%d: want 0 <= first <= last <= %d", o.First, last, addrMaxPrimary)
	}
	s := &scan{bus: b, opts: o, res: &ScanResult{Meters: []FoundMeter{}, Devices: []ConfigDevice{}}}
	var err error
	switch o.Mode {
	case "primary":
		err = s.primary(ctx, o.First, last)
	case "secondary":
		err = s.secondary(ctx)
	case "", "both":
		if err = s.primary(ctx, o.First, last); err == nil {
			err = s.secondary(ctx)
		}
	default:
		return nil, fmt.Errorf("mbus: scan: mode %q: want primary, secondary or both", o.Mode)
	}
	for _, m := range s.res.Meters {
		s.res.Devices = append(s.res.Devices, ConfigDevice{Name: deviceName(m), Address: m.Address})
	}
	if err != nil {
		return s.res, fmt.Errorf("mbus: scan %s: %w", b.cfg.Path, err)
	}
	return s.res, nil
}

func deviceName(m FoundMeter) string {
	id := m.Secondary
	if len(id) >= 8 {
		id = id[:8]
	}
	return strings.ToLower(m.Manufacturer) + "-" + id
}

type scan struct {
	bus  *Bus
	opts ScanOptions
	res  *ScanResult
	done int
	seen map[string]bool // secondary addresses found
}

func (s *scan) progress(phase, probe string, total int) {
	s.done++
	if s.opts.Progress != nil {
		s.opts.Progress(ScanProgress{Phase: phase, Probe: probe, Done: s.done, Total: total, Found: len(s.res.Meters)})
	}
}

// step runs one probe holding the line and counts its transactions.
func (s *scan) step(ctx context.Context, fn func() error) error {
	err := s.bus.with(ctx, func() error {
		before := s.bus.requests
		defer func() { s.res.Transactions += s.bus.requests - before }()
		return fn()
	})
	return err
}

func (s *scan) add(m FoundMeter) {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	if s.seen[m.Secondary] && m.Primary == nil {
		return // found by the primary scan already
	}
	s.seen[m.Secondary] = true
	s.res.Meters = append(s.res.Meters, m)
}

func found(tg *Telegram) FoundMeter {
	return FoundMeter{
		Secondary:    tg.Header.SecondaryAddress(),
		Manufacturer: tg.Header.Manufacturer,
		Version:      tg.Header.Version,
		Medium:       tg.Header.Medium,
	}
}

// primary probes each address with SND_NKE; a meter that acknowledges is
// asked for one telegram to learn its identity. Silence is not repeated:
// at 2400 baud every probe of an empty address costs the full timeout.
func (s *scan) primary(ctx context.Context, first, last int) error {
	total := last - first + 1
	s.done = 0
	for a := first; a <= last; a++ {
		var tg *Telegram
		var probeErr error
		err := s.step(ctx, func() error {
			if probeErr = s.bus.sndNKE(ctx, byte(a), retryDamaged); probeErr != nil {
				return probeErr
			}
			tgs, err := s.bus.readout(ctx, byte(a), 1)
			if len(tgs) > 0 {
				tg = tgs[0]
			}
			return err
		})
		switch {
		case err == nil:
			m := found(tg)
			m.Address, m.Primary = strconv.Itoa(a), &a
			s.add(m)
		case probeErr != nil && errors.Is(probeErr, ErrNoReply):
		case !isProtocolError(err):
			return err
		case errors.Is(err, ErrChecksum), errors.Is(err, ErrCollision), errors.Is(err, errUnexpected):
			s.res.Collisions = append(s.res.Collisions, fmt.Sprintf("primary address %d: garbled reply, probably several meters share it: %v", a, err))
		default:
			s.res.Collisions = append(s.res.Collisions, fmt.Sprintf("primary address %d: a meter answers but its data cannot be read: %v", a, err))
		}
		s.progress("primary", strconv.Itoa(a), total)
	}
	return nil
}

// secondary searches the ID digits as a tree: a mask with the first n
// digits fixed and the rest wildcards (F) is selected; silence ends the
// branch, one ACK is one meter (read once for its full address), a
// collision splits the branch into its ten next digits. The root mask
// answers "no meter" or "one meter" in one request, and when digits 0–8
// of a collided branch are empty, digit 9 must hold the colliding meters:
// it is split without being probed.
func (s *scan) secondary(ctx context.Context) error {
	s.done = 0
	_, err := s.branch(ctx, "", false)
	return err
}

// branch searches the meters whose ID starts with prefix and says whether
// there are any.
func (s *scan) branch(ctx context.Context, prefix string, collides bool) (bool, error) {
	mask := prefix + strings.Repeat("F", 16-len(prefix))
	if !collides {
		var tg *Telegram
		var selErr error
		err := s.step(ctx, func() error {
			if selErr = s.bus.selectSecondary(ctx, mask, 0); selErr != nil {
				return selErr
			}
			tgs, err := s.bus.readout(ctx, addrSelected, 1)
			if len(tgs) > 0 {
				tg = tgs[0]
			}
			return err
		})
		if err == nil {
			m := found(tg)
			m.Address = m.Secondary
			s.add(m)
		}
		s.progress("secondary", mask, 0)
		switch {
		case err == nil:
			return true, nil
		case !isProtocolError(err):
			return false, err
		case selErr != nil && errors.Is(selErr, ErrNoReply):
			return false, nil
		case selErr == nil:
			s.res.Collisions = append(s.res.Collisions, fmt.Sprintf("selection %s: a meter acknowledged but could not be read: %v", mask, err))
			return true, nil
		}
	}
	// Several meters answered.
	if len(prefix) == 8 {
		s.res.Collisions = append(s.res.Collisions, fmt.Sprintf("ID %s: several meters share it; they differ only in manufacturer, version or medium", prefix))
		return true, nil
	}
	nonEmpty := false
	for d := '0'; d <= '9'; d++ {
		sure := d == '9' && !nonEmpty
		some, err := s.branch(ctx, prefix+string(d), sure)
		if err != nil {
			return true, err
		}
		nonEmpty = nonEmpty || some
	}
	return true, nil
}
