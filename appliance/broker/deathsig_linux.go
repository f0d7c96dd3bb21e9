package broker

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes mosquitto get SIGTERM if osgate dies without
// stopping it, so the next osgate finds the port free.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
