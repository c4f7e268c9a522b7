package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pingpong/pingpong/app/servicetest"
)

// secureEnv is the environment for a broker that demands mutual TLS and SCRAM-SHA-256, with the
// password in a file (a mounted secret), as docs/security.md describes.
func secureEnv(t *testing.T, pki *servicetest.PKI, brokers []string, password string) []string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{
		"KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"KAFKA_TLS_CA_FILE=" + pki.CAFile,
		"KAFKA_TLS_CERT_FILE=" + pki.CertFile,
		"KAFKA_TLS_KEY_FILE=" + pki.KeyFile,
		"KAFKA_SASL_MECHANISM=SCRAM-SHA-256",
		"KAFKA_SASL_USERNAME=pingpong",
		"KAFKA_SASL_PASSWORD_FILE=" + file,
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_LEVEL=trace",
	}
}

// TestOperatorCommandsAndServiceUseTheSameSecuritySettings: `pingpong topics create` reaches a
// broker with mutual TLS and SCRAM through the same variables as the service, and both, with a
// wrong password, stop at once with exit code 1 and an error that says so, without showing any
// password.
func TestOperatorCommandsAndServiceUseTheSameSecuritySettings(t *testing.T) {
	const password = "binary-Secret-77"
	pki := servicetest.NewPKI(t, "127.0.0.1")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(pki.BrokerTLS(true)), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "pingpong", password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()

	create := exec.Command(binary, "topics", "create")
	create.Env = append(servicetest.Environ(), secureEnv(t, pki, brokers, password)...)
	out, err := create.CombinedOutput()
	if err != nil {
		t.Fatalf("topics create over mutual TLS and SCRAM: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "dev.pingpong.requested") || !strings.Contains(string(out), "created") {
		t.Errorf("topics create said:\n%s", out)
	}

	for _, args := range [][]string{nil, {"topics", "create"}} {
		wrong := exec.Command(binary, args...)
		wrong.Env = append(servicetest.Environ(), secureEnv(t, pki, brokers, "not-"+password)...)
		out, err = wrong.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("pingpong %v with a wrong password: want exit code 1, got %v\n%s", args, err, out)
		}
		if !strings.Contains(string(out), "Kafka authentication failed") {
			t.Errorf("pingpong %v: the output does not say the authentication failed:\n%s", args, out)
		}
		if strings.Contains(string(out), password) {
			t.Errorf("pingpong %v: the output shows a password:\n%s", args, out)
		}
	}
}
