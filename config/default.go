package config

import (
	_ "embed"
	"fmt"
)

// defaultJSON is the configuration osgate runs with when no file is given:
// gateway defaults and one connector, "system", whose one device is the
// gateway itself. examples/system.json is the same document, annotated.
//
//go:embed default.json
var defaultJSON []byte

// Default returns the embedded default configuration, parsed. It needs the
// "system" connector type registered (import osgate's drivers/system);
// without it Default panics, since the binary is then built wrong.
func Default() *Config {
	c, err := Parse(defaultJSON)
	if err != nil {
		panic(fmt.Sprintf("config: the embedded default.json does not parse (is the \"system\" connector registered?):\n%v", err))
	}
	return c
}
