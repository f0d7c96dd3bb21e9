package main

import (
	"context"
	"io"
)

func mbusCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	return usageError{"mbus: not wired yet"}
}
