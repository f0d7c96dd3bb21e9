package main

import (
	"context"
	"flag"
	"io"
	"os"
	"time"

	"github.com/osgate/osgate/drivers/mbus"
)

// mbusCmd is `osgate mbus decode|scan|read`: the M-Bus driver does the
// work, this only reads flags.
func mbusCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"mbus needs decode, scan or read"}
	}
	switch args[0] {
	case "decode":
		if len(args) != 2 {
			return usageError{"mbus decode needs FILE (hex bytes) or -"}
		}
		in := stdin
		if args[1] != "-" {
			f, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		return mbus.DecodeCommand(in, stdout)
	case "scan", "read":
		fs := flag.NewFlagSet("mbus "+args[0], flag.ContinueOnError)
		var o mbus.CLIOptions
		fs.IntVar(&o.Baud, "baud", 2400, "baud rate")
		fs.StringVar(&o.Parity, "parity", "even", "parity: even, odd or none")
		fs.DurationVar(&o.Timeout, "timeout", 0, "reply timeout (default: from the baud rate)")
		fs.IntVar(&o.Retries, "retries", 2, "repeats of an unanswered request")
		fs.BoolVar(&o.Echo, "echo", false, "the level converter echoes what the master sends")
		fs.StringVar(&o.Scan.Mode, "mode", "both", "scan: primary, secondary or both")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{err.Error()}
		}
		ctx, cancel := context.WithTimeout(ctx, 6*time.Hour)
		defer cancel()
		if args[0] == "scan" {
			if fs.NArg() != 1 {
				return usageError{"mbus scan needs PORT (a device path or a board port name)"}
			}
			return mbus.ScanCommand(ctx, fs.Arg(0), o, stdout, os.Stderr)
		}
		if fs.NArg() != 2 {
			return usageError{"mbus read needs PORT and ADDRESS (0-250 or a 16-digit secondary address)"}
		}
		return mbus.ReadCommand(ctx, fs.Arg(0), fs.Arg(1), o, stdout)
	}
	return usageError{"mbus needs decode, scan or read, not " + args[0]}
}
