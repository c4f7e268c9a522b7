// Package config reads the service's and the operator tools' settings from flags and the
// environment. Each setting is one flag whose name is its environment variable's in lower case
// with dashes (KAFKA_BROKERS is --kafka-brokers); a flag given on the command line wins over the
// variable, the variable over the default. A bad value stops the program with an error that
// names the setting and says what is wrong.
package config

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// envAnnotation marks a flag with the environment variable it reads.
const envAnnotation = "env"

// FlagName is the flag that stands for an environment variable.
func FlagName(env string) string { return strings.ToLower(strings.ReplaceAll(env, "_", "-")) }

// binder registers flags that each stand for an environment variable.
type binder struct{ fs *pflag.FlagSet }

func (b binder) annotate(env string) {
	_ = b.fs.SetAnnotation(FlagName(env), envAnnotation, []string{env})
}

func (b binder) usage(env, usage string) string { return usage + " (env " + env + ")" }

func (b binder) String(p *string, env, def, usage string) {
	b.fs.StringVar(p, FlagName(env), def, b.usage(env, usage))
	b.annotate(env)
}

// zeroDefault is the "(default ...)" pflag leaves out of --help for a zero number or duration,
// where 0 is a real setting (KAFKA_PRODUCER_LINGER=0 is no linger), not "unset".
func zeroDefault(usage, def string) string { return usage + " (default " + def + ")" }

func (b binder) Int(p *int, env string, def int, usage string) {
	if def == 0 {
		usage = zeroDefault(b.usage(env, usage), "0")
	} else {
		usage = b.usage(env, usage)
	}
	b.fs.IntVar(p, FlagName(env), def, usage)
	b.annotate(env)
}

func (b binder) Float(p *float64, env string, def float64, usage string) {
	if def == 0 {
		usage = zeroDefault(b.usage(env, usage), "0")
	} else {
		usage = b.usage(env, usage)
	}
	b.fs.Float64Var(p, FlagName(env), def, usage)
	b.annotate(env)
}

func (b binder) Duration(p *time.Duration, env string, def time.Duration, usage string) {
	if def == 0 {
		usage = zeroDefault(b.usage(env, usage), "0s")
	} else {
		usage = b.usage(env, usage)
	}
	b.fs.DurationVar(p, FlagName(env), def, usage)
	b.annotate(env)
}

func (b binder) Bool(p *bool, env string, def bool, usage string) {
	b.fs.BoolVar(p, FlagName(env), def, b.usage(env, usage))
	b.annotate(env)
}

// ApplyEnv sets every flag of fs that was not given on the command line from its environment
// variable, when that is set. lookup is os.LookupEnv outside tests.
func ApplyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		env := EnvOf(f)
		if err != nil || env == "" || f.Changed {
			return
		}
		value, ok := lookup(env)
		if !ok {
			return
		}
		if setErr := f.Value.Set(value); setErr != nil {
			err = invalid(env, value, setErr.Error())
		}
	})
	return err
}

// EnvOf is the environment variable a flag stands for, or "".
func EnvOf(f *pflag.Flag) string {
	if names := f.Annotations[envAnnotation]; len(names) == 1 {
		return names[0]
	}
	return ""
}

// EnvNames lists the environment variables that fs reads, sorted.
func EnvNames(fs *pflag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if env := EnvOf(f); env != "" {
			names = append(names, env)
		}
	})
	sort.Strings(names)
	return names
}

// Error is a setting with a bad value.
type Error struct {
	Env, Flag, Value, Problem string
}

func (e *Error) Error() string {
	if e.Flag == "" { // a standard variable read by a library (OTEL_*), with no flag
		return fmt.Sprintf("invalid %s %q: %s", e.Env, e.Value, e.Problem)
	}
	return fmt.Sprintf("invalid %s (--%s) %q: %s", e.Env, e.Flag, e.Value, e.Problem)
}

func invalid(env, value, problem string) error {
	return &Error{Env: env, Flag: FlagName(env), Value: value, Problem: problem}
}

// ServiceEnvNames lists every environment variable the service reads, sorted: what compose,
// the Helm chart and the docs may set. Tests compare them against it, so they cannot drift.
func ServiceEnvNames() []string {
	fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
	ServiceFlags(fs)
	return EnvNames(fs)
}

// ServiceFlags registers every setting the service reads on fs, the shared ones and its own, and
// returns the configuration they fill in: what the binary's flags and environment make of it.
func ServiceFlags(fs *pflag.FlagSet) *Service {
	s := &Service{}
	s.Kafka.AddFlags(fs)
	s.Logging.AddFlags(fs)
	s.AddFlags(fs)
	return s
}
