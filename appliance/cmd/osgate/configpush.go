package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/osgate/osgate/fleet"
	"github.com/osgate/osgate/internal/sign"
)

const configPushHaltHint = "every document the rollout wrote is back as it was; fix the configuration and push it again"

// fleetConfig is `osgate fleet config`: a configuration to a growing
// share of the selected gateways (push FILE), or status, pause, resume
// and abort of the push in a directory of the gateways' documents.
func fleetConfig(ctx context.Context, file string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fleet config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "", "the directory on the static server the gateways pull {gateway}.json from")
	gateways := fs.String("gateways", "", `push: which gateways (ids, labels, fields; "all" for every one)`)
	keyFile := fs.String("key", "", "push, resume: the config key that signs each gateway's document")
	canary := fs.String("canary", "5%", "the first step: a share of the selected online gateways (5%) or a number (1)")
	step := fs.String("step", "25%", "each further step adds this share (or number)")
	maxFailures := fs.String("max-failures", "2%", "a step halts the push when more of its gateways fail than this share (or number)")
	stepTimeout := fs.Duration("step-timeout", 30*time.Minute, "how long a gateway of a step has to confirm its document (pull it, and keep it past gateway.config_grace)")
	asJSON := fs.Bool("json", false, "status: print the push's state as JSON")
	reason := fs.String("reason", "", "pause, abort: why (kept in the state file)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return usageError{fmt.Sprintf("%v\n%s", err, fleetUsage)}
	}
	if len(pos) == 0 || pos[0] == "push" && len(pos) != 2 || pos[0] != "push" && len(pos) != 1 {
		return usageError{"fleet config needs push FILE, or status, pause, resume or abort\n" + fleetUsage}
	}
	if *dir == "" {
		return usageError{"fleet config needs -dir DIR: the directory the gateways pull their {gateway}.json from (their remote.url)\n" + fleetUsage}
	}
	st := fleet.ConfigStore(*dir)
	switch pos[0] {
	case "status":
		return rolloutStatus(st, *asJSON, stdout)
	case "pause":
		p, err := st.Pause(*reason)
		if err != nil {
			return err
		}
		fleet.WritePlan(stdout, p, time.Now())
		return nil
	case "abort":
		p, err := st.Abort(*reason)
		if err != nil {
			return err
		}
		fleet.WritePlan(stdout, p, time.Now())
		return nil
	case "resume":
		key, err := readConfigKey(*keyFile)
		if err != nil {
			return err
		}
		p, err := st.Load()
		if err != nil {
			return err
		}
		if p != nil && p.Kind == fleet.KindConfig && p.Active() {
			if err := fleet.CheckConfigKey(p, key); err != nil {
				return err
			}
		}
		if _, err := st.Resume(); err != nil {
			return err
		}
		return driveRollout(ctx, file, st, key, configPushHaltHint, stdout)
	case "push":
	default:
		return usageError{fmt.Sprintf("fleet config: unknown command %q: push FILE, status, pause, resume or abort\n%s", pos[0], fleetUsage)}
	}
	o := fleet.ConfigPushOptions{File: pos[1], Dir: *dir, Selector: *gateways, StepTimeout: *stepTimeout}
	if *gateways == "" {
		return usageError{`fleet config push needs -gateways (ids, a label such as site=berlin, or "all")` + "\n" + fleetUsage}
	}
	if _, err := fleet.ParseSelector(*gateways); err != nil {
		return usageError{err.Error()}
	}
	if err := parseShares("fleet config push", *canary, *step, *maxFailures, *stepTimeout, &o.Canary, &o.Step, &o.MaxFailures); err != nil {
		return err
	}
	if o.Key, err = readConfigKey(*keyFile); err != nil {
		return err
	}
	if fi, err := os.Stat(*dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("fleet config push: -dir %s is not a directory (%v): give the directory the gateways' remote.url points into", *dir, err)
	}
	if _, err := fleet.StartConfigPush(o, stdout); err != nil {
		return err
	}
	return driveRollout(ctx, file, st, o.Key, configPushHaltHint, stdout)
}

// readConfigKey reads the private key `osgate config keygen` made.
func readConfigKey(file string) (ed25519.PrivateKey, error) {
	if file == "" {
		return nil, usageError{"fleet config needs -key KEYFILE: the config key (osgate config keygen) that signs each gateway's document\n" + fleetUsage}
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the config key: %w", err)
	}
	key, err := sign.ParsePrivateKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("the config key %s: %w", file, err)
	}
	return key, nil
}
