package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/osgate/osgate/fleet"
)

const fleetUsage = `fleet [-f fleet.json] ls [-json] [SELECTOR...]
fleet [-f fleet.json] rpc -gateways SELECTOR [-timeout 10s] [-offline] [-json] METHOD [PARAMS]
fleet [-f fleet.json] rollout RELEASE_DIR -channel DIR [-canary 5%] [-step 25%] [-max-failures 2%]
      [-step-timeout 1h] [-gateways SELECTOR]
fleet rollout status|pause|resume|abort -channel DIR [-json] [-reason TEXT]
fleet [-f fleet.json] config push FILE -dir DIR -gateways SELECTOR -key KEYFILE [-canary 5%] [-step 25%]
      [-max-failures 2%] [-step-timeout 30m]
fleet config status|pause|abort -dir DIR [-json] [-reason TEXT]
fleet [-f fleet.json] config resume -dir DIR -key KEYFILE
(the fleet file: -f, else $OSGATE_FLEET, else ./fleet.json; see docs/fleet.md)`

// fleetCmd is the operator's view of the fleet through the cloud broker.
func fleetCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("f", defaultFleetFile(), "the fleet settings file")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("%v\n%s", err, fleetUsage)}
	}
	if fs.NArg() < 1 {
		return usageError{fleetUsage}
	}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	if sub != "ls" && sub != "rpc" && sub != "rollout" && sub != "config" {
		return usageError{fmt.Sprintf("fleet: unknown command %q\n%s", sub, fleetUsage)}
	}
	if sub == "rollout" {
		return fleetRollout(ctx, *file, rest, stdout)
	}
	if sub == "config" {
		return fleetConfig(ctx, *file, rest, stdout)
	}
	s, err := fleet.LoadSettings(*file)
	if err != nil {
		return err
	}
	if sub == "ls" {
		return fleetLs(ctx, s, rest, stdout)
	}
	return fleetRPC(ctx, s, rest, stdout)
}

func defaultFleetFile() string {
	if f := os.Getenv("OSGATE_FLEET"); f != "" {
		return f
	}
	return "fleet.json"
}

// Settling: the broker sends the retained documents in one burst after
// the subscription; a quiet pause ends it.
const (
	settleQuiet = 500 * time.Millisecond
	settleMax   = 2 * time.Minute
)

// view connects and reads every gateway's retained document.
func view(ctx context.Context, s *fleet.Settings) (*fleet.Conn, *fleet.Watch, error) {
	c, err := fleet.Dial(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	w, err := c.Watch(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	w.Settle(ctx, settleQuiet, settleMax)
	return c, w, nil
}

func fleetLs(ctx context.Context, s *fleet.Settings, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fleet ls", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("%v\n%s", err, fleetUsage)}
	}
	sel, err := fleet.ParseSelector(strings.Join(fs.Args(), ","))
	if err != nil {
		return usageError{err.Error()}
	}
	c, w, err := view(ctx, s)
	if err != nil {
		return err
	}
	defer c.Close()
	now := time.Now()
	gws := sel.Select(w.Gateways(), now)
	if n := w.Dropped(); n > 0 {
		fmt.Fprintf(stderr, "osgate: fleet ls: %d status messages ignored (malformed, over %d KiB, or past %d gateways)\n", n, 64, fleet.MaxGateways)
	}
	if *asJSON {
		return fleet.WriteJSON(stdout, gws)
	}
	return fleet.WriteTable(stdout, gws, now)
}

func fleetRPC(ctx context.Context, s *fleet.Settings, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fleet rpc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	gateways := fs.String("gateways", "", `which gateways: ids, labels, fields ("all" for every one)`)
	timeout := fs.Duration("timeout", 10*time.Second, "how long each gateway has to answer")
	offline := fs.Bool("offline", false, "ask the selected gateways that are offline too (the request waits on the broker until it expires)")
	asJSON := fs.Bool("json", false, "print the answers as JSON")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("%v\n%s", err, fleetUsage)}
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError{"fleet rpc needs METHOD and optional PARAMS (JSON)\n" + fleetUsage}
	}
	if strings.TrimSpace(*gateways) == "" {
		return usageError{`fleet rpc needs -gateways (ids, a label such as site=berlin, or "all")` + "\n" + fleetUsage}
	}
	if *timeout <= 0 || *timeout > 30*time.Minute {
		return usageError{fmt.Sprintf("fleet rpc: -timeout %s: more than 0, at most 30m", *timeout)}
	}
	sel, err := fleet.ParseSelector(*gateways)
	if err != nil {
		return usageError{err.Error()}
	}
	call := fleet.Call{Method: fs.Arg(0), Timeout: *timeout}
	if fs.NArg() == 2 {
		call.Params = json.RawMessage(fs.Arg(1))
	}
	c, w, err := view(ctx, s)
	if err != nil {
		return err
	}
	defer c.Close()
	var ask, notAsked []string
	for _, g := range sel.Select(w.Gateways(), time.Now()) {
		if g.Online() || *offline {
			ask = append(ask, g.ID)
		} else {
			notAsked = append(notAsked, g.ID)
		}
	}
	if len(ask) == 0 {
		return fmt.Errorf("fleet rpc: no online gateway matches %q (%d offline match; -offline asks them too); see osgate fleet ls", sel, len(notAsked))
	}
	start := time.Now()
	answers, err := c.Run(ctx, ask, call)
	if err != nil {
		return fmt.Errorf("fleet rpc %s: %w", call.Method, err)
	}
	took := time.Since(start)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(answers); err != nil {
			return err
		}
		fmt.Fprintln(stderr, fleet.AnswerSummary(answers, notAsked, took))
	} else if err := fleet.WriteAnswers(stdout, answers, notAsked, took); err != nil {
		return err
	}
	bad := 0
	for _, a := range answers {
		if a.Outcome != "ok" {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("fleet rpc %s: %d of %d gateways did not answer ok", call.Method, bad, len(answers))
	}
	return nil
}
