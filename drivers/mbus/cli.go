package mbus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/osgate/osgate/board"
)

// DecodeCommand is `osgate mbus decode`: it reads one frame as hex bytes
// separated by white space from in and writes the decoded telegram to out
// as indented JSON. A malformed frame or an application error is returned
// as the error (the CLI prints it and exits non-zero).
func DecodeCommand(in io.Reader, out io.Writer) error {
	text, err := io.ReadAll(io.LimitReader(in, 1<<20))
	if err != nil {
		return fmt.Errorf("mbus decode: read input: %w", err)
	}
	tg, err := DecodeHex(text)
	if err != nil {
		return err
	}
	return writeJSON(out, tg)
}

// CLIOptions are the line settings and scan choices of `osgate mbus scan`
// and `osgate mbus read`. Zero values take the defaults (2400 baud, even
// parity, automatic timeout, both scans over 0–250).
type CLIOptions struct {
	Baud    int
	Parity  string
	Timeout time.Duration
	Retries int
	Echo    bool
	Scan    ScanOptions
}

func cliBus(port string, o CLIOptions, log *slog.Logger) (*Bus, error) {
	path, err := board.ResolvePort(port)
	if err != nil {
		return nil, err
	}
	cfg := PortConfig{Path: path, Baud: o.Baud, Parity: o.Parity, Timeout: o.Timeout, Retries: o.Retries, Echo: o.Echo}
	cfg.defaults()
	if _, err := cfg.mode(); err != nil {
		return nil, err
	}
	return NewBus(cfg, log), nil
}

// ScanCommand is `osgate mbus scan PORT`: it scans the line, draws a
// progress bar on progress (the terminal's stderr) and writes the result
// as JSON to out; its "devices" can be pasted into the connector's config.
func ScanCommand(ctx context.Context, port string, o CLIOptions, out, progress io.Writer) error {
	bus, err := cliBus(port, o, slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer bus.Close()
	o.Scan.Progress = func(p ScanProgress) { fmt.Fprint(progress, progressLine(p)) }
	res, err := bus.Scan(ctx, o.Scan)
	fmt.Fprintln(progress)
	if res != nil {
		if werr := writeJSON(out, res); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// progressLine draws one progress line, to be overwritten by the next.
func progressLine(p ScanProgress) string {
	if p.Total > 0 {
		const width = 30
		n := p.Done * width / p.Total
		return fmt.Sprintf("\r%-9s [%s%s] %3d/%d  found %d ", p.Phase, strings.Repeat("#", n), strings.Repeat(".", width-n), p.Done, p.Total, p.Found)
	}
	return fmt.Sprintf("\r%-9s %s  tried %d  found %d ", p.Phase, p.Probe, p.Done, p.Found)
}

// ReadCommand is `osgate mbus read PORT ADDRESS`: it reads one meter (a
// primary address, or an 8- or 16-digit secondary address) and writes its
// telegrams as a JSON array, each shaped as `osgate mbus decode` prints.
func ReadCommand(ctx context.Context, port, address string, o CLIOptions, out io.Writer) error {
	a, err := ParseAddress(address)
	if err != nil {
		return fmt.Errorf("mbus read: %w", err)
	}
	bus, err := cliBus(port, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer bus.Close()
	tgs, err := bus.Read(ctx, a)
	if err != nil {
		return err
	}
	return writeJSON(out, tgs)
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("mbus: write output: %w", err)
	}
	return nil
}
