package service_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/service"
	"github.com/pingpong/pingpong/app/servicetest"
)

// brokerName is the only name on the test broker's certificate: clients must be told it
// (KAFKA_TLS_SERVER_NAME), as with a broker reached through an address its certificate does not
// name.
const brokerName = "broker.pingpong.test"

// password is distinctive, so that finding it in logs or metrics cannot be a coincidence.
const password = "s3cret-Pa55word-4-kafka"

// secureCluster is a broker that demands mutual TLS and SASL with the three mechanisms.
func secureCluster(t *testing.T, pki *servicetest.PKI) *kfake.Cluster {
	return servicetest.Cluster(t, 1,
		kfake.TLS(pki.BrokerTLS(true)),
		kfake.EnableSASL(),
		kfake.Superuser(config.SASLPlain, "pingpong", password),
		kfake.Superuser(config.SASLScramSHA256, "pingpong", password),
		kfake.Superuser(config.SASLScramSHA512, "pingpong", password),
	)
}

// secureConfig is the service's configuration for the secure cluster, with the password in a
// file, as a mounted Kubernetes secret gives it.
func secureConfig(t *testing.T, brokers []string, pki *servicetest.PKI, mechanism string) config.Service {
	t.Helper()
	cfg := servicetest.Config(t, brokers)
	cfg.Kafka.TLS = config.TLS{CAFile: pki.CAFile, CertFile: pki.CertFile, KeyFile: pki.KeyFile, ServerName: brokerName}
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Kafka.SASL = config.SASL{Mechanism: mechanism, Username: "pingpong", PasswordFile: file}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// clientAuth is what a test client needs to reach the secure cluster.
func clientAuth(t *testing.T, pki *servicetest.PKI, mechanism sasl.Mechanism) []kgo.Opt {
	return []kgo.Opt{kgo.DialTLSConfig(pki.ClientTLS(t, brokerName)), kgo.SASL(mechanism)}
}

// TestTLSAndSASLEndToEnd runs the service with mutual TLS and each SASL mechanism: a ping is
// answered, so both the franz-go options (start-up check, readiness) and the Sarama configuration
// (consumer, producer, and for SCRAM the adapter to franz-go's implementation) work. The logs, at
// trace level and the Kafka client's own included, and /metrics never show the password.
func TestTLSAndSASLEndToEnd(t *testing.T) {
	pki := servicetest.NewPKI(t, brokerName)
	cluster := secureCluster(t, pki)
	brokers := cluster.ListenAddrs()
	auth := clientAuth(t, pki, scram.Auth{User: "pingpong", Pass: password}.AsSha512Mechanism())
	producer := servicetest.Client(t, brokers, auth...)
	reader := servicetest.NewReader(t, brokers, auth...)
	var all []servicetest.Request

	for _, mechanism := range []string{config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512} {
		t.Run(mechanism, func(t *testing.T) {
			cfg := secureConfig(t, brokers, pki, mechanism)
			cfg.ConsumerGroup = "pingpong-" + strings.ToLower(mechanism) // a fresh group: only this run's answers
			cfg.ConsumerOffset = config.OffsetLatest
			logs := &servicetest.SyncBuffer{}
			logger := logrus.New()
			logger.SetOutput(logs)
			logger.SetLevel(logrus.TraceLevel)
			logger.SetFormatter(&logrus.JSONFormatter{})
			svc, err := service.New(cfg, logger, service.WithTracer(nil))
			if err != nil {
				t.Fatalf("starting with %s over mutual TLS: %v", mechanism, err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- svc.Run(ctx) }()
			base := "http://" + svc.HTTPAddr()
			waitFor(t, 15*time.Second, func() bool { return status(base+"/readyz") == http.StatusOK })
			// KAFKA_CONSUMER_OFFSET=latest: send once the group has its partitions.
			waitFor(t, 15*time.Second, func() bool {
				return strings.Contains(get(t, base+"/metrics", http.StatusOK), "pingpong_partitions_assigned 1")
			})

			reqs := servicetest.Mix("secure-"+strings.ToLower(mechanism), 10, 1)
			servicetest.Produce(t, producer, reqs)
			all = append(all, reqs...)
			tally := reader.Await(t, reqs, 30*time.Second)
			if tally.Answered != len(reqs) || len(tally.Wrong) > 0 {
				t.Fatalf("%s %v", tally, tally.Wrong)
			}
			metrics := get(t, base+"/metrics", http.StatusOK)
			cancel()
			if err := <-done; err != nil {
				t.Errorf("stopping: %v", err)
			}
			if strings.Contains(metrics, password) {
				t.Error("/metrics shows the password")
			}
			if logs.Len() == 0 || !strings.Contains(logs.String(), `"level":"trace"`) {
				t.Fatal("no trace logs captured: the check below would prove nothing")
			}
			if !strings.Contains(logs.String(), `"component":"franz-go"`) {
				t.Fatal("the Kafka client's own log is not in the logs: the check below would not cover it")
			}
			if strings.Contains(logs.String(), password) {
				t.Error("the logs show the password")
			}
		})
	}
}

// TestWrongSettingsFailAtStartUp: a wrong password, an untrusted CA, a certificate for another
// name or a missing client certificate stop service.New at once with an error that names the
// problem, instead of a service that starts and retries in the background.
func TestWrongSettingsFailAtStartUp(t *testing.T) {
	pki := servicetest.NewPKI(t, brokerName)
	cluster := secureCluster(t, pki)
	brokers := cluster.ListenAddrs()
	for _, tc := range []struct {
		name string
		edit func(*config.Service)
		says []string
	}{
		{"wrong password", func(c *config.Service) {
			c.Kafka.SASL.PasswordFile, c.Kafka.SASL.Password = "", "not-the-password"
		}, []string{"authentication failed", `SCRAM-SHA-512 user "pingpong"`, "KAFKA_SASL_PASSWORD"}},
		{"unknown user", func(c *config.Service) { c.Kafka.SASL.Username = "nobody" }, []string{"authentication failed", `user "nobody"`}},
		{"no SASL", func(c *config.Service) { c.Kafka.SASL = config.SASL{} }, []string{"closed the connection at once", "SASL"}},
		{"untrusted CA", func(c *config.Service) { c.Kafka.TLS.CAFile = pki.OtherCAFile }, []string{"TLS verification failed", "KAFKA_TLS_CA_FILE"}},
		{"certificate for another name", func(c *config.Service) { c.Kafka.TLS.ServerName = "" }, []string{"TLS verification failed", "KAFKA_TLS_SERVER_NAME"}},
		{"no client certificate", func(c *config.Service) { c.Kafka.TLS.CertFile, c.Kafka.TLS.KeyFile = "", "" }, []string{"TLS handshake failed", "KAFKA_TLS_CERT_FILE"}},
		{"no TLS", func(c *config.Service) { c.Kafka.TLS = config.TLS{} }, []string{"closed the connection at once", "TLS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := secureConfig(t, brokers, pki, config.SASLScramSHA512)
			tc.edit(&cfg)
			start := time.Now()
			svc, err := service.New(cfg, logrus.New())
			if err == nil {
				t.Fatal("service.New succeeded")
			}
			_ = svc
			if took := time.Since(start); took > cfg.Kafka.Timeout {
				t.Errorf("took %v, more than KAFKA_TIMEOUT", took)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error does not say %q:\n%v", s, err)
				}
			}
			if strings.Contains(err.Error(), password) {
				t.Error("the error shows the password")
			}
		})
	}
}

// TestHTTPServesOnlyMetricsAndHealth: the HTTP port exposes /metrics, /healthz and /readyz and
// nothing else (no pprof, no index), and only for GET.
func TestHTTPServesOnlyMetricsAndHealth(t *testing.T) {
	cluster := servicetest.Cluster(t, 1)
	svc := servicetest.Start(t, servicetest.Config(t, cluster.ListenAddrs()))
	base := "http://" + svc.HTTPAddr()
	for _, path := range []string{"/metrics", "/healthz"} {
		if code := status(base + path); code != http.StatusOK {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	for _, path := range []string{"/", "/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/vars", "/metrics/x", "/healthz/x", "/config", "/env", "/.env"} {
		if code := status(base + path); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	resp, err := http.Post(base+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
	}
}
