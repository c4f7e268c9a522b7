package kafkaclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/kafkaclient"
	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/app/signin"
)

const (
	oauthClient = "pingpong"
	oauthSecret = "Client-s3cret+/="
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// oauthBroker is a kfake broker that accepts the tokens ts grants, with the extension
// logicalCluster=lkc-abc12, for sessions of sessionLifetime.
func oauthBroker(t *testing.T, ts *servicetest.TokenServer, sessionLifetime time.Duration) (*kfake.Cluster, *servicetest.SignIns) {
	cluster := servicetest.Cluster(t, 1)
	signIns := servicetest.NewSignIns(cluster, config.SASLOAuthBearer, func(auth []byte) (time.Duration, error) {
		token, ext, err := servicetest.ParseOAuthBearer(auth)
		if err != nil {
			return 0, err
		}
		if err := ts.Valid(token); err != nil {
			return 0, fmt.Errorf("invalid_token: %v", err)
		}
		if len(ext) != 1 || ext["logicalCluster"] != "lkc-abc12" {
			return 0, fmt.Errorf("extensions %v", ext)
		}
		return sessionLifetime, nil
	})
	return cluster, signIns
}

func oauthSettings(t *testing.T, brokers, tokenURL, secret string) config.Kafka {
	return config.Kafka{Brokers: brokers, Timeout: 5 * time.Second, SASL: config.SASL{Mechanism: config.SASLOAuthBearer, OAuth: config.OAuth{
		TokenURL: tokenURL, ClientID: oauthClient, ClientSecretFile: writeFile(t, "secret", secret+"\n"),
		Scope: "kafka", Extensions: "logicalCluster=lkc-abc12"}}}
}

// TestOAuthBearerSignInAndReauthentication: the operator tools' client signs in to a broker
// with a token of the client-credentials grant and its extension; when the broker's session
// ends (KIP-368) it signs in again, and once the token has less than signin.RefreshBefore to
// live, with a new token, while the old one is still valid.
func TestOAuthBearerSignInAndReauthentication(t *testing.T) {
	ts := servicetest.NewTokenServer(t, oauthClient, oauthSecret, signin.RefreshBefore+3*time.Second)
	cluster, signIns := oauthBroker(t, ts, 2*time.Second)
	client, err := kafkaclient.Connect(context.Background(), oauthSettings(t, cluster.ListenAddrs()[0], ts.URL, oauthSecret))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	tokens := map[string]bool{}
	var first string
	deadline := time.Now().Add(30 * time.Second)
	for len(tokens) < 2 && time.Now().Before(deadline) {
		if err := client.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, x := range signIns.Exchanges() {
			if x.Err != nil {
				t.Fatalf("the broker refused a sign-in: %v", x.Err)
			}
			token, _, _ := servicetest.ParseOAuthBearer(x.Auth)
			if first == "" {
				first = token
			}
			tokens[token] = true
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(tokens) < 2 {
		t.Fatalf("after %d sign-ins, still one token", len(signIns.Exchanges()))
	}
	if left, err := ts.Lifetime(first); err != nil || left < signin.RefreshBefore-10*time.Second {
		t.Errorf("the first token was replaced with %s left (%v), want about %s", left, err, signin.RefreshBefore)
	}
	if n := ts.Requests(); n != len(tokens) {
		t.Errorf("%d token requests for %d tokens over %d sign-ins", n, len(tokens), len(signIns.Exchanges()))
	}
	if s := ts.Scopes(); s[0] != "kafka" {
		t.Errorf("scopes %q", s)
	}
}

// TestSaramaOAuthBearer: watermill-kafka's Sarama, configured by kafkaclient.Sarama, signs in
// with a token of the same grant.
func TestSaramaOAuthBearer(t *testing.T) {
	ts := servicetest.NewTokenServer(t, oauthClient, oauthSecret, time.Hour)
	cluster, signIns := oauthBroker(t, ts, 0)
	k := oauthSettings(t, cluster.ListenAddrs()[0], ts.URL, oauthSecret)
	c := sarama.NewConfig()
	c.Version = sarama.V2_1_0_0
	if err := kafkaclient.Sarama(k, c); err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(k.BrokerList(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if topics, err := client.Topics(); err != nil || len(topics) == 0 {
		t.Fatalf("no metadata: %v %v", topics, err)
	}
	if x := signIns.Exchanges(); len(x) == 0 || x[0].Err != nil {
		t.Fatalf("exchanges %+v", x)
	}
}

// TestOAuthBearerFailuresNameTheSettings: a refused client secret stops Connect at once (not
// after KAFKA_TIMEOUT) naming the settings, and a token the broker refuses is said to be
// refused by the broker; neither error holds the secret or the token.
func TestOAuthBearerFailuresNameTheSettings(t *testing.T) {
	ts := servicetest.NewTokenServer(t, oauthClient, oauthSecret, time.Hour)
	cluster, _ := oauthBroker(t, ts, 0)
	k := oauthSettings(t, cluster.ListenAddrs()[0], ts.URL, "wrong-"+oauthSecret)
	k.Timeout = time.Minute
	start := time.Now()
	_, err := kafkaclient.Connect(context.Background(), k)
	if err == nil || time.Since(start) > 30*time.Second {
		t.Fatalf("a wrong client secret: %v after %s", err, time.Since(start))
	}
	for _, s := range []string{"Kafka authentication failed", "invalid_client", "KAFKA_SASL_OAUTH_CLIENT_ID", "KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", "KAFKA_SASL_OAUTH_TOKEN_URL"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the error does not say %q: %v", s, err)
		}
	}
	if strings.Contains(err.Error(), oauthSecret) {
		t.Errorf("the error holds the secret: %v", err)
	}

	other := servicetest.NewTokenServer(t, oauthClient, oauthSecret, time.Hour) // an issuer the broker does not trust
	_, err = kafkaclient.Connect(context.Background(), oauthSettings(t, cluster.ListenAddrs()[0], other.URL, oauthSecret))
	if err == nil || !strings.Contains(err.Error(), "refused the OAUTHBEARER token of client KAFKA_SASL_OAUTH_CLIENT_ID=\"pingpong\"") {
		t.Fatalf("a token the broker refuses: %v", err)
	}
	if strings.Contains(err.Error(), "Bearer") {
		t.Errorf("the error holds the token: %v", err)
	}
}

var regionsUsed atomic.Int32

// freshRegion is a region no other test of this process used: the process keeps one credentials
// source a region (signin.ForAWS), bound to the environment of the test that first asked for
// it, and go test -count=N runs each test N times in one process.
func freshRegion(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, 100+regionsUsed.Add(1))
}

func podIdentity(t *testing.T, lifetime time.Duration) *servicetest.PodIdentity {
	p := servicetest.NewPodIdentity(t, lifetime)
	p.SetEnv(t)
	return p
}

// TestMSKIAMSignInWithPodIdentityCredentials: with KAFKA_SASL_MECHANISM=AWS_MSK_IAM the client
// signs in over TLS with credentials the AWS SDK's chain got from the EKS Pod Identity endpoint,
// in a payload an MSK broker accepts; the credentials are reused, and replaced when they have
// less than signin.AWSRefreshBefore to live.
func TestMSKIAMSignInWithPodIdentityCredentials(t *testing.T) {
	endpoint := podIdentity(t, signin.AWSRefreshBefore+3*time.Second)
	pki := servicetest.NewPKI(t, "127.0.0.1")
	cluster := servicetest.Cluster(t, 1, kfake.TLS(pki.BrokerTLS(false)))
	// The broker's host, 127.0.0.1, holds no region: the signer takes AWS_REGION's.
	region := freshRegion("eu-south")
	signIns := servicetest.NewSignIns(cluster, config.SASLAWSMSKIAM, func(auth []byte) (time.Duration, error) {
		p, err := servicetest.VerifyMSKIAM(auth, "127.0.0.1", region, endpoint.Lookup)
		if err == nil && !strings.HasPrefix(p["user-agent"], "pingpong/") {
			err = fmt.Errorf("user-agent %q", p["user-agent"])
		}
		return 0, err
	})
	k := config.Kafka{Brokers: cluster.ListenAddrs()[0], Timeout: 5 * time.Second, TLS: config.TLS{CAFile: pki.CAFile},
		SASL: config.SASL{Mechanism: config.SASLAWSMSKIAM, AWSRegion: region}}

	connect := func() {
		t.Helper()
		client, err := kafkaclient.Connect(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		client.Close()
	}
	connect()
	connect()
	if len(endpoint.Issued()) != 1 {
		t.Fatalf("%d credentials fetched for two clients, want 1 reused", len(endpoint.Issued()))
	}
	time.Sleep(time.Until(endpoint.Issued()[0].Expires.Add(-signin.AWSRefreshBefore + 100*time.Millisecond)))
	connect()
	if len(endpoint.Issued()) != 2 {
		t.Fatalf("%d credentials fetched, want new ones once the first had less than %s to live", len(endpoint.Issued()), signin.AWSRefreshBefore)
	}
	keys := map[string]bool{}
	for _, x := range signIns.Exchanges() {
		if x.Err != nil {
			t.Fatalf("the broker refused a sign-in: %v\n%s", x.Err, x.Auth)
		}
		var p map[string]string
		_ = json.Unmarshal(x.Auth, &p)
		keys[strings.Split(p["x-amz-credential"], "/")[0]] = true
	}
	if !keys[endpoint.Issued()[0].AccessKeyID] || !keys[endpoint.Issued()[1].AccessKeyID] {
		t.Errorf("signed with %v, want both keys issued", keys)
	}
}

// TestMSKIAMRefusedAndUnavailable: a sign-in the broker refuses names the IAM settings to look
// at, and credentials the chain cannot get stop Connect at once with what the SDK tried.
func TestMSKIAMRefusedAndUnavailable(t *testing.T) {
	endpoint := podIdentity(t, time.Hour)
	pki := servicetest.NewPKI(t, "127.0.0.1")
	cluster := servicetest.Cluster(t, 1, kfake.TLS(pki.BrokerTLS(false)))
	servicetest.NewSignIns(cluster, config.SASLAWSMSKIAM, func([]byte) (time.Duration, error) {
		return 0, errors.New("access denied")
	})
	k := config.Kafka{Brokers: cluster.ListenAddrs()[0], Timeout: 5 * time.Second, TLS: config.TLS{CAFile: pki.CAFile},
		SASL: config.SASL{Mechanism: config.SASLAWSMSKIAM, AWSRegion: freshRegion("ap-east")}}
	_, err := kafkaclient.Connect(context.Background(), k)
	if err == nil || !strings.Contains(err.Error(), "refused the AWS_MSK_IAM sign-in") || !strings.Contains(err.Error(), "kafka-cluster:Connect") {
		t.Fatalf("a refused sign-in: %v", err)
	}
	if len(endpoint.Issued()) == 0 {
		t.Fatal("the sign-in used no credentials from the Pod Identity endpoint")
	}
	if secret := endpoint.Issued()[0].SecretAccessKey; strings.Contains(err.Error(), secret) {
		t.Errorf("the error holds the secret key: %v", err)
	}

	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", writeFile(t, "wrong-token", "not-the-token"))
	k.SASL.AWSRegion = freshRegion("ap-east")
	k.Timeout = time.Minute
	start := time.Now()
	_, err = kafkaclient.Connect(context.Background(), k)
	if err == nil || !strings.Contains(err.Error(), "getting AWS credentials from the SDK's default chain") || time.Since(start) > 30*time.Second {
		t.Fatalf("no credentials: %v after %s", err, time.Since(start))
	}
}
