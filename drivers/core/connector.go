package core

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/osgate/osgate/internal/scope"
)

// ConnectorConfig is what a driver's Factory receives: the connector's own
// settings and its devices, decoded from the common envelope by the core.
// Every json.RawMessage here is the driver's to decode strictly (see
// internal/strict); errors carry paths relative to this connector, e.g.
// "settings.port" or "devices[0].channels[3].type", and the core prefixes
// them with "connectors[N].".
type ConnectorConfig struct {
	Name string
	Type string
	// Settings is the connector's "settings" object ("{}" when absent).
	Settings json.RawMessage
	Devices  []*Device
	// StateDir is the gateway's state directory, for drivers that keep
	// small state files.
	StateDir string
	Logger   *slog.Logger
	// Stats counts what only the driver sees, for /metrics (see Stats);
	// take it with StatsOf(cfg), which is never nil.
	Stats Stats
}

// Device is one configured device as a driver sees it.
type Device struct {
	Name string
	// Interval is how often the core polls the device (Pollers), or how long
	// a Listener's device may stay silent before it counts as stale.
	Interval time.Duration
	// Timeout bounds one poll; the core puts it into Poll's ctx.
	Timeout time.Duration
	// Settings holds the device object's keys that the core does not know
	// (e.g. "unit_id", "address"), as a JSON object; "{}" when there are none.
	Settings json.RawMessage
	Channels []*Channel
}

// Channel is one configured channel of a device as a driver sees it.
type Channel struct {
	// Name is the channel's name as the driver reports it in Reading.Channel.
	// (The core may export it under another name, see the rename transform.)
	Name string
	// Unit is the unit configured for the channel, "" if none.
	Unit string
	// Writable is set when the config allows device.write on the channel.
	Writable bool
	// Settings holds the channel object's keys the core does not know
	// (e.g. "register", "type"), as a JSON object; "{}" when there are none.
	Settings json.RawMessage
}

// Connector is a configured driver instance. New (the Factory) must not do
// I/O: it validates and prepares. Transports are opened lazily by Poll or
// Listen and released by Close.
type Connector interface {
	Close() error
}

// Factory builds a Connector from its configuration. It returns a
// strict.Errors (or any error) describing every problem it finds, with paths
// relative to the connector.
type Factory func(cfg ConnectorConfig) (Connector, error)

// Binder is a connector that listens on addresses of its own (HTTP
// ingest). Config validation checks them against the gateway's other
// listeners, so two that would take one port are refused before start.
type Binder interface {
	// Listens returns each address ("host:port") with the path of the key
	// that sets it, relative to the connector ("settings.ingest.listen").
	Listens() []Listen
}

// Listen is one address a Binder listens on.
type Listen struct {
	Path, Addr string
}

// Poller is a connector the core polls at each device's interval. Poll
// returns one Reading per configured channel; a channel that failed is a
// Reading with Quality Bad, so one bad register never hides the others. An
// error return means the whole device failed (unreachable). A connector
// that is also a Listener may leave out the channels that reported on
// their own within the interval (so nil, nil is a success with nothing new).
// The core never
// runs two Polls of one device at once, but may poll different devices of
// one connector concurrently: a driver with a shared bus serialises itself.
type Poller interface {
	Poll(ctx context.Context, dev *Device) ([]Reading, error)
}

// AppendPoller is a Poller that can put a poll's readings into a slice the
// core reuses from one poll of a device to the next, so that a device
// polled many times a second with many channels does not cost a new slice
// per poll. PollAppend is Poll, with the readings appended to buf (given
// with length 0); it may return a new slice if buf is too small. The core
// keeps no reading of buf once it has exported them.
type AppendPoller interface {
	Poller
	PollAppend(ctx context.Context, dev *Device, buf []Reading) ([]Reading, error)
}

// Listener is a connector whose devices report on their own. Listen runs
// until ctx ends or the transport fails; the core restarts it with back-off
// when it returns. emit takes the readings that arrived together (one MQTT
// message, one HTTP body, one Z-Wave report) and exports them as one
// message per device, like a poll. It blocks while the pipeline is full
// (back-pressure) and returns ctx.Err() when stopping; when it returns nil
// every reading was taken, so only then may the driver acknowledge its
// source. A Listener never drops silently. Readings of devices that are not
// in the config are exported under their discovered names.
type Listener interface {
	Listen(ctx context.Context, emit func(...Reading) error) error
}

// ErrStorageFull is in the error emit returns when the gateway cannot
// store readings because the disk of its state dir is full: none of the
// readings that failed was taken. It is a local condition, not the
// device's: a listener pushes back on its sender (an HTTP 507, an MQTT
// message left unacknowledged) and may return; the core restarts a
// listener that returned for it as soon as the disk has room again, with
// no back-off.
var ErrStorageFull = errors.New("the gateway's disk is full")

// Writer is a connector that can set a channel. value has already been
// through the channel's inverse transform: float64, int64, bool or string.
type Writer interface {
	Write(ctx context.Context, dev *Device, channel string, value any) error
}

// Command is an extra operation a driver offers (an M-Bus scan, Z-Wave
// inclusion). The core exposes it over RPC and the CLI as "TYPE.NAME".
type Command struct {
	// Help says in a sentence what it does.
	Help string
	// Params is a value of the struct Run decodes its params into (nil:
	// none), and Result one of what it returns (nil: say nothing): their
	// JSON fields describe the command in rpc.discover (a `doc:"..."` tag
	// on a field describes it).
	Params, Result any
	// Scope is what a caller's key needs to run the command; the zero
	// value means scope.Write, like every driver command. A command that
	// hands out secrets (network keys) says scope.Admin.
	Scope scope.Scope
	Run   func(ctx context.Context, params json.RawMessage) (any, error)
}

// NeedScope is the scope a command needs: Scope, or scope.Write when none
// is set.
func (c Command) NeedScope() scope.Scope {
	if c.Scope == scope.None {
		return scope.Write
	}
	return c.Scope
}

// Commander is a connector that offers Commands.
type Commander interface {
	Commands() map[string]Command
}

// PerReading adapts a function of one reading to a Listener's emit: it is
// called for each reading in turn, and the first error stops the rest.
func PerReading(f func(Reading) error) func(...Reading) error {
	return func(rs ...Reading) error {
		for _, r := range rs {
			if err := f(r); err != nil {
				return err
			}
		}
		return nil
	}
}
