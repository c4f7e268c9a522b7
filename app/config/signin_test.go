package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pingpong/pingpong/app/config"
)

// TestCloudSignInSettings: OAUTHBEARER and AWS_MSK_IAM are accepted with what they need, and
// each missing, malformed or misplaced setting is refused with the setting named.
func TestCloudSignInSettings(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	oauth := func(extra ...string) map[string]string {
		env := map[string]string{
			"KAFKA_BROKERS":                       "kafka:9093",
			"KAFKA_SASL_MECHANISM":                "OAUTHBEARER",
			"KAFKA_SASL_OAUTH_TOKEN_URL":          "https://keycloak.example/realms/kafka/protocol/openid-connect/token",
			"KAFKA_SASL_OAUTH_CLIENT_ID":          "pingpong",
			"KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE": secret,
		}
		for i := 0; i < len(extra); i += 2 {
			if extra[i+1] == "" {
				delete(env, extra[i])
			} else {
				env[extra[i]] = extra[i+1]
			}
		}
		return env
	}
	msk := func(extra ...string) map[string]string {
		env := map[string]string{"KAFKA_BROKERS": "b-1.c.abc.c2.kafka.eu-west-1.amazonaws.com:9098", "KAFKA_SASL_MECHANISM": "AWS_MSK_IAM", "KAFKA_TLS_ENABLED": "true"}
		for i := 0; i < len(extra); i += 2 {
			env[extra[i]] = extra[i+1]
		}
		return env
	}
	for _, env := range []map[string]string{
		oauth(),
		oauth("KAFKA_SASL_OAUTH_SCOPE", "https://ns.servicebus.windows.net/.default", "KAFKA_SASL_OAUTH_EXTENSIONS", "logicalCluster=lkc-abc12, identityPoolId=pool-Xy1"),
		msk(),
		msk("AWS_REGION", "us-gov-west-1"),
		// SASL off, or another mechanism: the other mechanisms' settings are not looked at (a
		// machine's own AWS_REGION, say).
		{"KAFKA_SASL_USERNAME": "pingpong", "KAFKA_SASL_OAUTH_CLIENT_ID": "x", "AWS_REGION": "local"},
		oauth("AWS_REGION", "local"),
	} {
		if _, err := load(t, nil, env); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
	c, err := load(t, []string{"--kafka-sasl-oauth-scope=kafka email"}, oauth("KAFKA_SASL_OAUTH_EXTENSIONS", "logicalCluster=lkc-1"))
	if err != nil {
		t.Fatal(err)
	}
	if ext, _ := c.Kafka.SASL.OAuth.ExtensionMap(); ext["logicalCluster"] != "lkc-1" || len(ext) != 1 {
		t.Errorf("extensions %v", ext)
	}
	if s := c.Kafka.SASL.OAuth.Scopes(); len(s) != 2 || s[0] != "kafka" || s[1] != "email" {
		t.Errorf("scopes %q", s)
	}

	for _, tc := range []struct {
		name    string
		env     map[string]string
		setting string
		says    string
	}{
		{"no token URL", oauth("KAFKA_SASL_OAUTH_TOKEN_URL", ""), "KAFKA_SASL_OAUTH_TOKEN_URL", "must be set with KAFKA_SASL_MECHANISM=OAUTHBEARER"},
		{"token URL not a URL", oauth("KAFKA_SASL_OAUTH_TOKEN_URL", "keycloak/token"), "KAFKA_SASL_OAUTH_TOKEN_URL", "http or https URL"},
		{"token URL with a password", oauth("KAFKA_SASL_OAUTH_TOKEN_URL", "https://u:hunter2@idp.example/token"), "KAFKA_SASL_OAUTH_TOKEN_URL", "must not hold a user or password"},
		{"no client id", oauth("KAFKA_SASL_OAUTH_CLIENT_ID", ""), "KAFKA_SASL_OAUTH_CLIENT_ID", "must be set"},
		{"no secret file", oauth("KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", ""), "KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", "must be set"},
		{"missing secret file", oauth("KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", "/no/such/secret"), "KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", "cannot be read"},
		{"empty secret file", oauth("KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", empty), "KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", "is empty"},
		{"extension without value", oauth("KAFKA_SASL_OAUTH_EXTENSIONS", "logicalCluster"), "KAFKA_SASL_OAUTH_EXTENSIONS", "key=value"},
		{"extension key not letters", oauth("KAFKA_SASL_OAUTH_EXTENSIONS", "logical_cluster=x"), "KAFKA_SASL_OAUTH_EXTENSIONS", "letters only"},
		{"extension auth", oauth("KAFKA_SASL_OAUTH_EXTENSIONS", "auth=Bearer x"), "KAFKA_SASL_OAUTH_EXTENSIONS", "token's own key"},
		{"extension twice", oauth("KAFKA_SASL_OAUTH_EXTENSIONS", "a=1,a=2"), "KAFKA_SASL_OAUTH_EXTENSIONS", "twice"},
		{"extension value with a control character", oauth("KAFKA_SASL_OAUTH_EXTENSIONS", "a=\x01"), "KAFKA_SASL_OAUTH_EXTENSIONS", "RFC 7628"},
		{"user name with OAUTHBEARER", oauth("KAFKA_SASL_USERNAME", "pingpong"), "KAFKA_SASL_USERNAME", "only with KAFKA_SASL_MECHANISM=PLAIN"},
		{"OAuth setting with SCRAM", map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p", "KAFKA_SASL_OAUTH_CLIENT_ID": "x"}, "KAFKA_SASL_OAUTH_CLIENT_ID", "only with KAFKA_SASL_MECHANISM=OAUTHBEARER"},
		{"MSK IAM without TLS", map[string]string{"KAFKA_BROKERS": "b-1:9098", "KAFKA_SASL_MECHANISM": "AWS_MSK_IAM"}, "KAFKA_TLS_ENABLED", "TLS listeners"},
		{"MSK IAM with a password", msk("KAFKA_SASL_PASSWORD", "hunter2"), "KAFKA_SASL_PASSWORD", "only with"},
		{"bad region", msk("AWS_REGION", "Ireland"), "AWS_REGION", "region name"},
		{"MSK IAM on watermill-kafka", msk("KAFKA_TRANSPORT", "watermill-kafka"), "KAFKA_TRANSPORT", "KAFKA_SASL_MECHANISM=AWS_MSK_IAM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, nil, tc.env)
			var cfgErr *config.Error
			if !errors.As(err, &cfgErr) || cfgErr.Env != tc.setting {
				t.Fatalf("want an error naming %s, got %v", tc.setting, err)
			}
			if !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "--"+config.FlagName(tc.setting)) {
				t.Errorf("the message does not say %q with the flag: %v", tc.says, err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the message shows a password: %v", err)
			}
		})
	}
}
