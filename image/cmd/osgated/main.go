// Command osgated starts osgate on the gokrazy appliance. gokrazy runs it as
// the service /user/osgated (and restarts it when it exits non-zero); it
// prepares the state dir on /perm, copies a bootstrap config from the boot
// partition on first boot, and then becomes osgate (exec, same pid):
//
//   - /perm/osgate/osgate.json exists: osgate run -c /perm/osgate/osgate.json
//   - else, osgate.json on the FAT boot partition (put there from a laptop
//     before first boot): copied into /perm/osgate/ and used from then on;
//     the boot partition is rewritten by updates, so nothing stays there
//   - else: osgate run, the embedded default config (the gateway's own
//     telemetry on a loopback broker)
//
// osgate itself runs the static Mosquitto at /usr/local/bin/mosquitto as its
// managed broker: osgate is the one supervisor of the broker.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"syscall"

	"github.com/osgate/osgate/internal/atomicfile"
)

const (
	stateDir      = "/perm/osgate"
	configName    = "osgate.json"
	osgateBinary  = "/user/osgate"
	bootstrapName = "osgate.json" // on the boot partition
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("osgated: ")
	args, err := prepare()
	if err != nil {
		log.Printf("%v", err)
		log.Printf("starting osgate on its embedded default config instead")
		args = []string{"osgate", "run"}
	}
	args = append(args, os.Args[1:]...)
	err = syscall.Exec(osgateBinary, args, os.Environ())
	log.Fatalf("exec %s: %v", osgateBinary, err)
}

// prepare returns osgate's command line, copying the bootstrap config into
// the state dir if the state dir has none.
func prepare() ([]string, error) {
	if _, err := os.Stat("/perm"); err != nil {
		return nil, fmt.Errorf("no /perm (was the image's /perm partition formatted?): %v", err)
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	cfg := filepath.Join(stateDir, configName)
	if _, err := os.Stat(cfg); err == nil {
		return []string{"osgate", "run", "-c", cfg}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b, err := readBootstrap()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Printf("no %s in %s nor on the boot partition: running the embedded default config", configName, stateDir)
		return []string{"osgate", "run"}, nil
	case err != nil:
		return nil, fmt.Errorf("bootstrap config: %w", err)
	}
	if err := atomicfile.Write(cfg, b, 0o600); err != nil {
		return nil, fmt.Errorf("bootstrap config: %w", err)
	}
	log.Printf("first boot: copied %s from the boot partition to %s", bootstrapName, cfg)
	return []string{"osgate", "run", "-c", cfg}, nil
}
