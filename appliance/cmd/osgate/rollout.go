package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/osgate/osgate/fleet"
)

// fleetRollout is `osgate fleet rollout`: a release to a growing share of
// the fleet (RELEASE_DIR), or status, pause, resume and abort of the
// rollout in a channel directory.
func fleetRollout(ctx context.Context, file string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fleet rollout", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	channel := fs.String("channel", "", "the channel's directory on the static server (where the agents' cohort-NN.json are)")
	canary := fs.String("canary", "5%", "the first step: a share of the online gateways (5%) or a number (1)")
	step := fs.String("step", "25%", "each further step adds this share (or number)")
	maxFailures := fs.String("max-failures", "2%", "a step halts the rollout when more of its gateways fail than this share (or number)")
	stepTimeout := fs.Duration("step-timeout", time.Hour, "how long a gateway of a step has to confirm the release")
	gateways := fs.String("gateways", "all", "the gateways that follow the channel (a selector, as fleet ls takes)")
	asJSON := fs.Bool("json", false, "status: print the rollout state as JSON")
	reason := fs.String("reason", "", "pause, abort: why (kept in the rollout state)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return usageError{fmt.Sprintf("%v\n%s", err, fleetUsage)}
	}
	if len(pos) != 1 {
		return usageError{"fleet rollout needs RELEASE_DIR, or status, pause, resume or abort\n" + fleetUsage}
	}
	if *channel == "" {
		return usageError{"fleet rollout needs -channel DIR: the directory the gateways' agents pull their cohort's manifest from\n" + fleetUsage}
	}
	switch pos[0] {
	case "status":
		return rolloutStatus(fleet.Store{Dir: *channel}, *asJSON, stdout)
	case "pause":
		p, err := fleet.Pause(*channel, *reason)
		if err != nil {
			return err
		}
		fleet.WritePlan(stdout, p, time.Now())
		return nil
	case "abort":
		p, err := fleet.Abort(*channel, *reason)
		if err != nil {
			return err
		}
		fleet.WritePlan(stdout, p, time.Now())
		return nil
	case "resume":
		if _, err := fleet.Resume(*channel); err != nil {
			return err
		}
		return driveRollout(ctx, file, fleet.Store{Dir: *channel}, nil, releaseHaltHint, stdout)
	}
	o := fleet.RolloutOptions{Release: pos[0], Channel: *channel, Selector: *gateways, StepTimeout: *stepTimeout}
	if err := parseShares("fleet rollout", *canary, *step, *maxFailures, *stepTimeout, &o.Canary, &o.Step, &o.MaxFailures); err != nil {
		return err
	}
	if _, err := fleet.StartRollout(o, stdout); err != nil {
		return err
	}
	return driveRollout(ctx, file, fleet.Store{Dir: *channel}, nil, releaseHaltHint, stdout)
}

const releaseHaltHint = "every manifest the rollout wrote is back as it was; fix the release and start a new rollout"

// parseShares reads -canary, -step and -max-failures, and checks
// -step-timeout.
func parseShares(cmd, canary, step, maxFailures string, stepTimeout time.Duration, c, s, m *fleet.Share) error {
	for _, f := range []struct {
		name, text string
		to         *fleet.Share
	}{{"canary", canary, c}, {"step", step, s}, {"max-failures", maxFailures, m}} {
		v, err := fleet.ParseShare(f.text)
		if err != nil {
			return usageError{fmt.Sprintf("%s -%s: %v", cmd, f.name, err)}
		}
		*f.to = v
	}
	if stepTimeout <= 0 {
		return usageError{cmd + " -step-timeout: more than 0"}
	}
	return nil
}

// driveRollout connects to the cloud broker and advances the rollout in
// st until it is done, halts, or is paused or aborted; key signs a
// configuration's documents.
func driveRollout(ctx context.Context, file string, st fleet.Store, key ed25519.PrivateKey, haltHint string, stdout io.Writer) error {
	s, err := fleet.LoadSettings(file)
	if err != nil {
		return err
	}
	c, w, err := view(ctx, s)
	if err != nil {
		return err
	}
	defer c.Close()
	r := fleet.NewDriver(st, w, stdout)
	r.ConfigKey = key
	if rolloutTick > 0 {
		r.Tick = rolloutTick
	}
	err = r.Drive(ctx)
	if errors.Is(err, fleet.ErrHalted) {
		return fmt.Errorf("%w\n(%s)", err, haltHint)
	}
	return err
}

// rolloutTick, when set (tests), is how often a step is judged without
// news.
var rolloutTick time.Duration

func rolloutStatus(st fleet.Store, asJSON bool, stdout io.Writer) error {
	p, err := st.Load()
	if err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("no rollout in %s", st.Dir)
	}
	if asJSON {
		return fleet.WritePlanJSON(stdout, p)
	}
	fleet.WritePlan(stdout, p, time.Now())
	return nil
}

// parseInterleaved parses flags before and after the positional
// arguments: `fleet rollout DIR -canary 5%` as the issue writes it.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
