package config_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/spf13/pflag"

	"github.com/pingpong/pingpong/app/config"
)

// TestREADMEConfigurationTable keeps the README's configuration table true: one row per
// setting, with its flag and default.
func TestREADMEConfigurationTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Z0-9_]+)` \\| `--([a-z0-9-]+)` \\| `([^`]*)` \\|")
	rows := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		rows[m[1]] = m[2:]
	}
	fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
	config.ServiceFlags(fs)
	for _, env := range config.ServiceEnvNames() {
		r, ok := rows[env]
		if !ok {
			t.Errorf("README's configuration table has no row for %s", env)
			continue
		}
		f := fs.Lookup(config.FlagName(env))
		def := f.DefValue
		if def == "" {
			def = "(unset)"
		}
		if r[0] != f.Name || r[1] != def {
			t.Errorf("README row %s: flag --%s default %q, want --%s default %q", env, r[0], r[1], f.Name, def)
		}
		delete(rows, env)
	}
	for env := range rows {
		t.Errorf("README's configuration table lists %s, which is not a setting", env)
	}
}
