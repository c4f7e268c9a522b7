package config_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/pingpong/pingpong/app/config"
)

func load(t *testing.T, args []string, env map[string]string) (config.Service, error) {
	t.Helper()
	fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
	cp := config.ServiceFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := config.ApplyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		return *cp, err
	}
	return *cp, cp.Validate()
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.BrokerList() != nil || c.Kafka.TopicPrefix != "dev.pingpong" || c.ConsumerGroup != "pingpong" ||
		c.ConsumerOffset != "earliest" || c.HTTPAddr != ":8080" || c.EmbeddedBrokerPort != 9092 {
		t.Errorf("defaults: %+v", c)
	}
	if got := c.Kafka.Topics(); got.Requested != "dev.pingpong.requested" || got.Succeeded != "dev.pingpong.succeeded" || got.Failed != "dev.pingpong.failed" {
		t.Errorf("topics %+v", got)
	}
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	c, err := load(t, []string{"--topic-prefix", "flag.p"}, map[string]string{
		"TOPIC_PREFIX": "env.p", "KAFKA_BROKERS": "a:9092, b:9093", "SHUTDOWN_TIMEOUT": "45s",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.TopicPrefix != "flag.p" {
		t.Errorf("the flag wins: %q", c.Kafka.TopicPrefix)
	}
	if got := c.Kafka.BrokerList(); len(got) != 2 || got[0] != "a:9092" || got[1] != "b:9093" {
		t.Errorf("brokers from the environment: %q", got)
	}
	if c.ShutdownTimeout != 45*time.Second {
		t.Errorf("shutdown timeout %v", c.ShutdownTimeout)
	}
}

func TestEveryVariableHasAFlag(t *testing.T) {
	names := config.ServiceEnvNames()
	for _, want := range []string{"KAFKA_BROKERS", "TOPIC_PREFIX", "KAFKA_CONSUMER_GROUP", "KAFKA_CONSUMER_OFFSET", "HTTP_ADDR", "LOG_LEVEL", "LOG_FORMAT", "SHUTDOWN_TIMEOUT", "RETRY_MAX_RETRIES"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("%s is not a setting", want)
		}
	}
	fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
	config.ServiceFlags(fs)
	for _, env := range names {
		f := fs.Lookup(config.FlagName(env))
		if f == nil || config.EnvOf(f) != env || !strings.Contains(f.Usage, "(env "+env+")") {
			t.Errorf("%s has no flag --%s that says so", env, config.FlagName(env))
		}
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		env, value, says string
	}{
		{"KAFKA_BROKERS", "localhost", "is not host:port"},
		{"KAFKA_BROKERS", "a:9092,b:0", "no port from 1 to 65535"},
		{"KAFKA_BROKERS", "a:9092,", "is not host:port"},
		{"TOPIC_PREFIX", "has space", "letters, digits"},
		{"KAFKA_CONSUMER_OFFSET", "newest", "earliest or latest"},
		{"HTTP_ADDR", "8080", "host:port"},
		{"LOG_LEVEL", "loud", "trace, debug, info"},
		{"LOG_FORMAT", "xml", "text or json"},
		{"SHUTDOWN_TIMEOUT", "soon", "duration"},
		{"SHUTDOWN_TIMEOUT", "0s", "above 0"},
		{"RETRY_MAX_RETRIES", "-1", "from 0 to 1000"},
		{"RETRY_MAX_RETRIES", "9223372036854775807", "from 0 to 1000"},
		{"RETRY_MULTIPLIER", "NaN", "finite"},
		{"RETRY_MULTIPLIER", "+Inf", "finite"},
		{"RETRY_MULTIPLIER", "0.5", "1 or more"},
		{"RETRY_JITTER", "NaN", "from 0 to 1"},
		{"RETRY_INITIAL_INTERVAL", "9999999999h", "invalid"},
		{"KAFKA_TIMEOUT", "-1s", "above 0"},
		{"KAFKA_PARTITION_WINDOW", "4097", "from 1 to 4096"},
		{"KAFKA_PARTITION_WINDOW", "1000000", "from 1 to 4096"},
		{"KAFKA_PRODUCER_BATCH_BYTES", "200000000", "from 1024 to 104857600"},
		{"KAFKA_PRODUCER_BATCH_BYTES", "2147483648", "from 1024 to 104857600"},
		{"KAFKA_PRODUCER_BATCH_BYTES", "1023", "from 1024"},
		// The default MAX_REQUEST_BYTES (512 KiB) could not be answered within 1024-byte batches.
		{"KAFKA_PRODUCER_BATCH_BYTES", "1024", "KAFKA_PRODUCER_BATCH_BYTES"},
		{"MAX_REQUEST_BYTES", "1048576", "KAFKA_PRODUCER_BATCH_BYTES (1000012)"},
		{"TOPIC_PARTITIONS", "4294967297", "from 1 to 10000"},
		{"TOPIC_PARTITIONS", "2147483648", "from 1 to 10000"},
		{"TOPIC_PARTITIONS", "10001", "from 1 to 10000"},
		{"TOPIC_MIN_INSYNC_REPLICAS", "32768", "from 1 to 32767"},
		{"EMBEDDED_BROKER_PORT", "65536", "from 0 to 65535"},
		{"RETRY_MAX_INTERVAL", "1ms", "RETRY_INITIAL_INTERVAL"},
		{"RETRY_JITTER", "2", "from 0 to 1"},
		{"MAX_REQUEST_BYTES", "0", "at least 1"},
		{"TOPIC_PARTITIONS", "0", "from 1 to 10000"},
		{"TOPIC_REPLICATION_FACTOR", "0", "-1"},
		{"KAFKA_SASL_MECHANISM", "GSSAPI", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM"},
		{"KAFKA_TLS_CA_FILE", "/no/such/ca.pem", "cannot be read"},
	} {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			_, err := load(t, nil, map[string]string{tc.env: tc.value})
			var cfgErr *config.Error
			if !errors.As(err, &cfgErr) {
				t.Fatalf("want a config.Error, got %v", err)
			}
			msg := err.Error()
			if tc.env == "KAFKA_PRODUCER_BATCH_BYTES" && tc.value == "1024" {
				// Refused by the check of the pair; the message names both settings.
				if cfgErr.Env != "MAX_REQUEST_BYTES" || !strings.Contains(msg, tc.says) {
					t.Errorf("the message names both settings: %s", msg)
				}
				return
			}
			if cfgErr.Env != tc.env || !strings.Contains(msg, tc.env) || !strings.Contains(msg, "--"+config.FlagName(tc.env)) {
				t.Errorf("the message names the setting and its flag: %s", msg)
			}
			if !strings.Contains(msg, tc.says) {
				t.Errorf("the message says %q: %s", tc.says, msg)
			}
		})
	}
}

// The largest MAX_REQUEST_BYTES for the smallest batch that can carry it is accepted: the bound
// is exactly KAFKA_PRODUCER_BATCH_BYTES minus what a poison record adds.
func TestRequestAndBatchBytesAtTheirBound(t *testing.T) {
	batch := 1024 + config.PoisonOverheadBytes
	env := map[string]string{"KAFKA_PRODUCER_BATCH_BYTES": strconv.Itoa(batch), "MAX_REQUEST_BYTES": "1024"}
	if _, err := load(t, nil, env); err != nil {
		t.Fatalf("at the bound: %v", err)
	}
	env["MAX_REQUEST_BYTES"] = "1025"
	if _, err := load(t, nil, env); err == nil || !strings.Contains(err.Error(), "MAX_REQUEST_BYTES") || !strings.Contains(err.Error(), "KAFKA_PRODUCER_BATCH_BYTES") {
		t.Fatalf("one byte past the bound: %v", err)
	}
}

func TestSASLPasswordIsNeverInAnError(t *testing.T) {
	_, err := load(t, nil, map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_PASSWORD": "hunter2", "KAFKA_SASL_PASSWORD_FILE": "/run/secret"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v", err)
	}
}
