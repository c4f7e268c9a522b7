package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
)

const (
	oauthClient = "pingpong"
	oauthSecret = "Binary-Client-s3cret"
)

// oauthEnv is the environment of a service that signs in with OAUTHBEARER at tokenURL, with the
// secret in a file (a mounted secret) and Confluent Cloud's extensions.
func oauthEnv(t *testing.T, brokers []string, tokenURL, secret string) []string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{
		"KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"KAFKA_SASL_MECHANISM=OAUTHBEARER",
		"KAFKA_SASL_OAUTH_TOKEN_URL=" + tokenURL,
		"KAFKA_SASL_OAUTH_CLIENT_ID=" + oauthClient,
		"KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE=" + file,
		"KAFKA_SASL_OAUTH_SCOPE=kafka",
		"KAFKA_SASL_OAUTH_EXTENSIONS=logicalCluster=lkc-abc12,identityPoolId=pool-Xy1",
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_LEVEL=trace",
	}
}

// TestServiceAndPingSignInWithOAuthBearer: the service, on either transport, and `pingpong
// ping` sign in with tokens of the client-credentials grant; the pings are answered, and neither
// the client secret nor any token shows in their output at LOG_LEVEL=trace, nor in /metrics.
func TestServiceAndPingSignInWithOAuthBearer(t *testing.T) {
	for _, transport := range []string{config.TransportFranz, config.TransportWatermill} {
		t.Run(transport, func(t *testing.T) { serviceAndPingSignIn(t, transport) })
	}
}

func serviceAndPingSignIn(t *testing.T, transport string) {
	ts := servicetest.NewTokenServer(t, oauthClient, oauthSecret, time.Hour)
	cluster := servicetest.Cluster(t, 4)
	signIns := servicetest.NewSignIns(cluster, config.SASLOAuthBearer, func(auth []byte) (time.Duration, error) {
		token, ext, err := servicetest.ParseOAuthBearer(auth)
		if err != nil {
			return 0, err
		}
		if ext["logicalCluster"] != "lkc-abc12" || ext["identityPoolId"] != "pool-Xy1" {
			return 0, fmt.Errorf("extensions %v", ext)
		}
		return 0, ts.Valid(token)
	})
	env := oauthEnv(t, cluster.ListenAddrs(), ts.URL, oauthSecret)
	service := startBinary(t, append(env, "KAFKA_TRANSPORT="+transport))

	ping := exec.Command(binary, "ping", "--count", "3", "--timeout", "60s")
	ping.Env = append(servicetest.Environ(), env...)
	out, err := ping.CombinedOutput()
	if err != nil {
		t.Fatalf("pingpong ping: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "sent 3, answered 3") {
		t.Errorf("pingpong ping said:\n%s", out)
	}
	ready := regexp.MustCompile(`msg="Ready: [^"]*" http="(http://[^"]+)"`).FindStringSubmatch(service.Output.String())
	if ready == nil {
		t.Fatalf("no Ready line:\n%s", service.Output.String())
	}
	resp, err := http.Get(ready[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.Contains(string(metrics), "pingpong_") {
		t.Fatalf("GET /metrics: %v\n%s", err, metrics)
	}
	if code := service.Signal(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	exchanges := signIns.Exchanges()
	if len(exchanges) < 2 {
		t.Fatalf("%d sign-ins, want the service's and the tool's", len(exchanges))
	}
	for _, x := range exchanges {
		if x.Err != nil {
			t.Fatalf("the broker refused a sign-in: %v", x.Err)
		}
		token, _, _ := servicetest.ParseOAuthBearer(x.Auth)
		for name, output := range map[string]string{"service": service.Output.String(), "ping": string(out), "/metrics": string(metrics)} {
			if strings.Contains(output, token) {
				t.Errorf("the %s's output shows a token", name)
			}
			if strings.Contains(output, oauthSecret) {
				t.Errorf("the %s's output shows the client secret", name)
			}
		}
	}
}

// TestRefusedClientSecretStopsServiceAndTools: with a secret the token endpoint refuses, the
// service and `pingpong topics create` stop with exit code 1 and an error that names the
// settings, without the secret.
func TestRefusedClientSecretStopsServiceAndTools(t *testing.T) {
	ts := servicetest.NewTokenServer(t, oauthClient, oauthSecret, time.Hour)
	cluster := servicetest.Cluster(t, 1)
	servicetest.NewSignIns(cluster, config.SASLOAuthBearer, func([]byte) (time.Duration, error) { return 0, nil })
	const wrong = "Wrong-" + oauthSecret
	for _, args := range [][]string{nil, {"topics", "create"}} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(servicetest.Environ(), oauthEnv(t, cluster.ListenAddrs(), ts.URL, wrong)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("pingpong %v: want exit code 1, got %v\n%s", args, err, out)
		}
		// What docs/security.md shows.
		for _, s := range []string{"pingpong: Kafka authentication failed before the broker at KAFKA_BROKERS=" + cluster.ListenAddrs()[0] + " was asked: OAuth sign-in refused: the token endpoint KAFKA_SASL_OAUTH_TOKEN_URL=" + ts.URL + " answered 401 Unauthorized (invalid_client: ",
			`to client KAFKA_SASL_OAUTH_CLIENT_ID="pingpong"; check the client id, the secret in KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE and KAFKA_SASL_OAUTH_SCOPE`} {
			if !strings.Contains(string(out), s) {
				t.Errorf("pingpong %v does not say %q:\n%s", args, s, out)
			}
		}
		if strings.Contains(string(out), wrong) {
			t.Errorf("pingpong %v shows the secret:\n%s", args, out)
		}
	}
}

// TestTopicsCreateSignsInWithMSKIAM: `pingpong topics create` reaches a TLS broker that checks
// AWS_MSK_IAM sign-ins as MSK does, with credentials from the EKS Pod Identity endpoint, and
// prints no credential.
func TestTopicsCreateSignsInWithMSKIAM(t *testing.T) {
	pod := servicetest.NewPodIdentity(t, time.Hour)
	pki := servicetest.NewPKI(t, "127.0.0.1")
	cluster := servicetest.Cluster(t, 1, kfake.TLS(pki.BrokerTLS(false)))
	signIns := servicetest.NewSignIns(cluster, config.SASLAWSMSKIAM, func(auth []byte) (time.Duration, error) {
		_, err := servicetest.VerifyMSKIAM(auth, "127.0.0.1", "eu-west-1", pod.Lookup)
		return 0, err
	})
	cmd := exec.Command(binary, "topics", "create", "--aws-region", "eu-west-1")
	cmd.Env = append(append(servicetest.Environ(), pod.Env()...),
		"KAFKA_BROKERS="+cluster.ListenAddrs()[0], "KAFKA_TLS_CA_FILE="+pki.CAFile, "KAFKA_SASL_MECHANISM=AWS_MSK_IAM", "LOG_LEVEL=trace")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("topics create with AWS_MSK_IAM: %v\n%s", err, out)
	}
	if x := signIns.Exchanges(); len(x) == 0 || x[0].Err != nil {
		t.Fatalf("sign-ins %+v", x)
	}
	for _, c := range pod.Issued() {
		if strings.Contains(string(out), c.SecretAccessKey) || strings.Contains(string(out), c.SessionToken) {
			t.Errorf("the output shows a credential:\n%s", out)
		}
	}
}

// TestBadSignInSettingsExitTwo: the built binary, service and tool, stops with exit code 2 and
// a message naming the setting for each bad sign-in setting.
func TestBadSignInSettingsExitTwo(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	oauth := []string{"KAFKA_SASL_MECHANISM=OAUTHBEARER", "KAFKA_SASL_OAUTH_TOKEN_URL=https://idp.example/token",
		"KAFKA_SASL_OAUTH_CLIENT_ID=pingpong", "KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE=" + secret}
	for _, tc := range []struct {
		env   []string
		names []string
	}{
		// KAFKA_TRANSPORT is the service's alone: the tools use franz-go.
		{[]string{"KAFKA_SASL_MECHANISM=AWS_MSK_IAM"}, []string{"KAFKA_TLS_ENABLED", "KAFKA_SASL_MECHANISM=AWS_MSK_IAM"}},
		{[]string{"KAFKA_SASL_MECHANISM=AWS_MSK_IAM", "KAFKA_TLS_ENABLED=true", "KAFKA_TRANSPORT=watermill-kafka"}, []string{"KAFKA_TRANSPORT", "KAFKA_SASL_MECHANISM=AWS_MSK_IAM"}},
		{[]string{"KAFKA_SASL_MECHANISM=AWS_MSK_IAM", "KAFKA_TLS_ENABLED=true", "AWS_REGION=europe"}, []string{"AWS_REGION"}},
		{[]string{"KAFKA_SASL_MECHANISM=OAUTHBEARER"}, []string{"KAFKA_SASL_OAUTH_TOKEN_URL"}},
		{append(oauth[:3:3], "KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE=/no/such/file"), []string{"KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE"}},
		{append(oauth, "KAFKA_SASL_OAUTH_EXTENSIONS=logicalCluster"), []string{"KAFKA_SASL_OAUTH_EXTENSIONS"}},
		{append(oauth, "KAFKA_SASL_USERNAME=pingpong"), []string{"KAFKA_SASL_USERNAME"}},
	} {
		for _, args := range [][]string{nil, {"topics", "create"}} {
			if args != nil && strings.Contains(strings.Join(tc.env, " "), "KAFKA_TRANSPORT") {
				continue
			}
			t.Run(strings.Join(append(args, tc.env...), " "), func(t *testing.T) {
				stopsNamingTheSettings(t, tc.env, tc.names, args...)
			})
		}
	}
}
