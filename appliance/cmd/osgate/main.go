// The runtime sets GOMAXPROCS from the CPUs and the container's CPU limit
// at start and does not look again every second (updatemaxprocs=0): an
// idle gateway should sleep, and neither changes on the appliance.
// GODEBUG=updatemaxprocs=1 in the environment brings the looks back.
//go:debug updatemaxprocs=0

// Command osgate is the gateway: `osgate run` runs it, the other commands
// validate configs, call its JSON-RPC service and talk to field buses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/appliance/clock"
	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/appliance/metrics"
	"github.com/osgate/osgate/board"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/config/source"
	_ "github.com/osgate/osgate/drivers/all"
	"github.com/osgate/osgate/ota"
)

const usage = `osgate — industrial IoT gateway

Usage:
  osgate run [-c osgate.json] [-d]     run the gateway (embedded default config without -c)
  osgate validate FILE                 check a config file; prints every error with its path
  osgate rpc [-c osgate.json] [-url URL] [-key KEY] METHOD [PARAMS]
                                       call the JSON-RPC service of the gateway run with that
                                       config (its rpc.listen and the key in its state dir;
                                       key also from $OSGATE_RPC_KEY)
  osgate rpc hash-key KEY              print the SHA-256 of an API key for rpc.api_keys
  osgate rpc keygen KEYFILE            make an ed25519 operator key pair for signing cloud RPC
                                       requests; prints the public key for rpc.operator_keys
  osgate rpc sign -key KEYFILE -signer NAME -gateway ID [-id ID] [-expires 5m] METHOD [PARAMS]
                                       print a signed request to publish on rpc/ID/request/ID
  osgate mbus decode FILE|-            decode an M-Bus frame given as hex bytes, print JSON
  osgate mbus scan [-baud N] [-mode primary|secondary|both] PORT
                                       find the meters on a bus; prints config to paste
  osgate mbus read [-baud N] PORT ADDRESS
                                       read one meter (primary 0-250 or 16-digit secondary)
  osgate config keygen KEYFILE         make an ed25519 key pair for signing fleet configs
  osgate config sign KEYFILE DOC...    write DOC.sig next to each config document
  osgate release keygen KEYFILE        make an ed25519 key pair for signing releases
  osgate release build -key KEYFILE -version V -channel C -out DIR [-previous DIR] ARTIFACT.gaf
                                       make a signed release directory for OTA updates
  osgate fleet [-f fleet.json] ls [-json] [SELECTOR...]
                                       every gateway's state, from the cloud broker
  osgate fleet [-f fleet.json] rpc -gateways SELECTOR [-timeout 10s] [-offline] METHOD [PARAMS]
                                       a signed call to many gateways; answers and a summary
  osgate fleet [-f fleet.json] rollout RELEASE_DIR -channel DIR [-canary 5%] [-step 25%]
                                       [-max-failures 2%] [-step-timeout 1h] [-gateways SELECTOR]
                                       publish a release to a growing share of the fleet by
                                       cohort manifests; halts and puts them back when a step fails
  osgate fleet rollout status|pause|resume|abort -channel DIR
                                       the rollout in a channel, as rollout.json there says
  osgate fleet [-f fleet.json] config push FILE -dir DIR -gateways SELECTOR -key KEYFILE
                                       [-canary 5%] [-step 25%] [-max-failures 2%] [-step-timeout 30m]
                                       write a signed config ({gateway}: each one's id) as DIR/ID.json
                                       for a growing share of the selected gateways; halts and puts
                                       every document back when a step's gateways reject it
  osgate fleet config status|pause|resume|abort -dir DIR [-key KEYFILE]
                                       the push in a directory, as config-push.state there says
  osgate health [-c osgate.json] [-url URL]
                                       ask the gateway's /healthz; fails when it is unhealthy or
                                       does not answer (the container image's HEALTHCHECK)
  osgate broker password [-c osgate.json]
                                       print broker.username's password from broker.password_file
  osgate version                       print the version
`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "run" {
		// Here, not in runCmd: tests run runCmd inside their own process,
		// which must not start itself again.
		startedWith = setTimerSlack() // may start osgate again in its place
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli runs one command line (without the program name) and returns the
// exit code: 0, 1 for an error, 2 for a usage error.
func cli(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	err := dispatch(ctx, args[0], args[1:], stdin, stdout)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "osgate: %v\n\n%s", err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "osgate: %v\n", err)
		return 1
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func dispatch(ctx context.Context, cmd string, args []string, stdin io.Reader, stdout io.Writer) error {
	switch cmd {
	case "run":
		return runCmd(ctx, args)
	case "validate":
		return validateCmd(args, stdout)
	case "rpc":
		return rpcCmd(ctx, args, stdout)
	case "release":
		return releaseCmd(args, stdout)
	case "config":
		return configCmd(args, stdout)
	case "fleet":
		return fleetCmd(ctx, args, stdout)
	case "mbus":
		return mbusCmd(ctx, args, stdin, stdout)
	case "health":
		return healthCmd(ctx, args, stdout)
	case "broker":
		return brokerCmd(args, stdout)
	case "version":
		fmt.Fprintln(stdout, appliance.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

func runCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	file := fs.String("c", os.Getenv("OSGATE_CONFIG"), "config file (default: the embedded default config)")
	debug := fs.Bool("d", false, "debug logs")
	otaFile := fs.String("ota", defaultOTAFile, "OTA agent settings (a local file, e.g. baked into the image); none: no updates")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	tuneMemory(log)
	tuneProcs(log)
	if startedWith.err != nil {
		log.Warn("timer slack not set (osgate runs, with more wake-ups)", startedWith.logArgs()...)
	} else {
		log.Debug("timer slack", startedWith.logArgs()...)
	}
	go releaseExePages(ctx, log, exePagesFirst, exePagesEvery)
	sim, err := simDevice(log)
	if err != nil {
		return err
	}
	var src appliance.ConfigSource
	boot := config.Default()
	stateDir := boot.Gateway.StateDir
	if *file == "" {
		log.Info("no config file given: running the embedded default config (the gateway's own telemetry)")
		src = appliance.StaticSource(boot, "embedded")
	} else {
		// The local file is the bootstrap (identity, where to pull from)
		// and the configuration of last resort: it must be valid itself.
		// What runs programs or names files comes from this file only,
		// as it is now (config.ParsePulled).
		local, err := os.ReadFile(*file)
		if err != nil {
			return fmt.Errorf("config: read %w", err)
		}
		boot, err = config.Parse(local)
		if err != nil {
			return fmt.Errorf("config %s:\n%w", *file, err)
		}
		pulled, err := source.New(source.Options[*config.Config]{
			LocalPath:      *file,
			StateDir:       boot.Gateway.StateDir,
			Gateway:        boot.Gateway.ID,
			Remote:         boot.Remote,
			Validate:       config.Parse,
			ValidatePulled: config.ParsePulled(local),
			Logger:         log,
			Metrics:        metrics.Registry,
		})
		if err != nil {
			return err
		}
		defer pulled.Close()
		src, stateDir = pulled, boot.Gateway.StateDir
	}
	sv := appliance.NewSupervisor(src, log)
	// The clock outlives the gateway's in-process restarts, and saves the
	// time after the gateway stopped.
	clk, err := newClock(boot, log.With("part", "clock"))
	if err != nil {
		return err
	}
	sv.SetClock(clk)
	clockCtx, stopClock := context.WithCancel(context.WithoutCancel(ctx))
	clockDone := make(chan struct{})
	go func() {
		defer close(clockDone)
		clk.Run(clockCtx)
	}()
	defer func() {
		stopClock()
		<-clockDone
	}()
	if err := startOTA(ctx, *otaFile, boot.Gateway.ID, stateDir, sv, sim, log); err != nil {
		return err
	}
	return sv.Run(ctx)
}

// newClock makes the gateway's clock from the local config's clock
// block (appliance/clock).
func newClock(cfg *config.Config, log *slog.Logger) (*clock.Clock, error) {
	ck := cfg.Clock
	opts := clock.Options{
		SetSystem: ck.SetSystem != nil && *ck.SetSystem,
		Hold:      ck.Hold,
		Interval:  ck.Interval,
		StateDir:  cfg.Gateway.StateDir,
		BuildTime: appliance.Built(),
		Logger:    log,
	}
	for _, s := range ck.Sources {
		src, err := clock.ParseSource(s)
		if err != nil {
			return nil, fmt.Errorf("clock.sources: %w", err) // config.Parse checked them
		}
		opts.Sources = append(opts.Sources, src)
	}
	if cfg.Remote != nil {
		u, tc, err := cfg.Remote.Endpoint(cfg.Gateway.ID)
		if err != nil {
			return nil, err
		}
		opts.RemoteURL, opts.RemoteTLS = u, tc
	}
	// A board profile that cannot work is said once here (and again by
	// each connector that names one of its ports); the clock then reads
	// the default RTC device, if there is one.
	dev, err := board.RTC()
	if err != nil {
		log.Error("board profile", "err", err)
	}
	opts.RTCDevice = dev
	return clock.New(opts), nil
}

// defaultOTAFile is where an appliance image keeps its OTA settings.
const defaultOTAFile = "/etc/osgate/ota.json"

// startOTA starts the update agent when its settings file exists: one
// agent per process, so it outlives the gateway's in-process restarts for
// new configurations, confirming an update by the running gateway's health.
// Its state goes into the gateway's status document. sim, when not nil,
// stands in for gokrazy's update API (the fleet simulation).
func startOTA(ctx context.Context, path, gatewayID, stateDir string, sv *appliance.Supervisor, sim ota.Updater, log *slog.Logger) error {
	if _, err := os.Stat(path); err != nil {
		log.Debug("no OTA settings: updates off", "file", path)
		return nil
	}
	oc, err := ota.LoadConfig(path)
	if err != nil {
		return err
	}
	var agent *ota.Agent
	if sim != nil {
		agent, err = oc.AgentWith(sim, appliance.Version, gatewayID, stateDir, sv.Health, log.With("part", "ota"))
	} else {
		agent, err = oc.Agent(appliance.Version, gatewayID, stateDir, sv.Health, log.With("part", "ota"))
	}
	if err != nil {
		return err
	}
	sv.AddMethods(agent.Methods())
	sv.SetOTA(func() *export.OTAStatus { return otaDocument(agent.Status()) })
	agent.OnChange(sv.StatusChanged)
	go agent.Run(ctx) // returns when ctx ends
	return nil
}

// otaDocument is the update agent's part of the gateway's status
// document.
func otaDocument(s ota.Status) *export.OTAStatus {
	d := &export.OTAStatus{State: s.State, Status: s.Text, Target: s.Target, Last: s.Last, Cohort: s.Cohort}
	for v := range s.Failed {
		d.Failed = append(d.Failed, v)
	}
	slices.Sort(d.Failed)
	if n := len(d.Failed) - maxFailedShown; n > 0 {
		d.Failed = d.Failed[n:]
	}
	return d
}

// maxFailedShown bounds the failed versions a status document names.
const maxFailedShown = 8

func validateCmd(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return usageError{"validate needs one FILE"}
	}
	cfg, err := config.Load(args[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: valid: %s\n", args[0], summary(cfg))
	return nil
}

// summary counts what a config holds: "2 connectors, 3 devices, 13
// channels". Devices without a channel list read their driver's default
// channels, which only the driver knows; they are counted apart.
func summary(cfg *config.Config) string {
	devices, channels, defaults := 0, 0, 0
	for _, cn := range cfg.Connectors {
		devices += len(cn.Devices)
		for _, d := range cn.Devices {
			channels += len(d.Channels)
			if len(d.Channels) == 0 {
				defaults++
			}
		}
	}
	s := count(len(cfg.Connectors), "connector") + ", " + count(devices, "device") + ", " + count(channels, "channel")
	if defaults > 0 {
		s += fmt.Sprintf(" (and the driver's default channels of %s)", count(defaults, "device"))
	}
	return s
}

// count is "1 device", "3 devices", "0 channels".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
