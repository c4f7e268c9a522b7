package signin_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/app/signin"
)

// The client's secret holds characters that form encoding and Basic auth change, so that a
// test looking for it in an error also looks for those forms.
const (
	clientID     = "pingpong"
	clientSecret = "s3cr+t/Value=&%42"
)

func secretFile(t *testing.T, secret string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestTokenFromTheClientCredentialsGrant(t *testing.T) {
	ts := servicetest.NewTokenServer(t, clientID, clientSecret, time.Hour)
	tokens, err := signin.ForOAuth(config.OAuth{TokenURL: ts.URL, ClientID: clientID,
		ClientSecretFile: secretFile(t, clientSecret), Scope: "kafka  profile",
		Extensions: "logicalCluster=lkc-abc12,identityPoolId=pool-Xy1"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	token, err := tokens.Token()
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Valid(token); err != nil {
		t.Fatalf("the server does not know the token: %v", err)
	}
	if ts.Scopes()[0] != "kafka profile" {
		t.Errorf("scope asked for %q, want %q", ts.Scopes()[0], "kafka profile")
	}
	if ext := tokens.Extensions(); ext["logicalCluster"] != "lkc-abc12" || ext["identityPoolId"] != "pool-Xy1" || len(ext) != 2 {
		t.Errorf("extensions %v", ext)
	}
	for range 10 {
		again, err := tokens.Token()
		if err != nil || again != token {
			t.Fatalf("a valid token is not reused: %v", err)
		}
	}
	if n := ts.Requests(); n != 1 {
		t.Errorf("%d requests to the token endpoint for one token, want 1", n)
	}
}

// TestTokenIsRefreshedBeforeItExpires: a token is replaced once it has less than RefreshBefore
// to live, while the server still accepts it, so no connection is ever offered an expired one.
func TestTokenIsRefreshedBeforeItExpires(t *testing.T) {
	const reused = 3 * time.Second
	ts := servicetest.NewTokenServer(t, clientID, clientSecret, signin.RefreshBefore+reused)
	tokens, err := signin.ForOAuth(config.OAuth{TokenURL: ts.URL, ClientID: clientID, ClientSecretFile: secretFile(t, clientSecret)}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	first, err := tokens.Token()
	if err != nil {
		t.Fatal(err)
	}
	fetched := time.Now()
	if again, _ := tokens.Token(); again != first {
		t.Fatal("a fresh token was not reused")
	}
	time.Sleep(time.Until(fetched.Add(reused + 100*time.Millisecond)))
	second, err := tokens.Token()
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatalf("the token was not replaced with less than %s to live", signin.RefreshBefore)
	}
	if err := ts.Valid(first); err != nil {
		t.Errorf("the first token had expired when it was replaced: %v", err)
	}
	if err := ts.Valid(second); err != nil {
		t.Errorf("the new token is not valid: %v", err)
	}
}

// TestTokenEndpointErrorsNameTheSettingsNotTheSecret: a refused client, an endpoint that echoes
// the request back (the secret in the body and in the Authorization header) and an endpoint
// that does not answer each give an error that names the settings to look at and holds the
// secret in no form.
func TestTokenEndpointErrorsNameTheSettingsNotTheSecret(t *testing.T) {
	ts := servicetest.NewTokenServer(t, clientID, clientSecret, time.Hour)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, _ := httputil.DumpRequest(r, true)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": string(dump)})
	}))
	defer echo.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	for _, tc := range []struct {
		name, url, secret string
		says              []string
	}{
		{"wrong secret", ts.URL, "not-" + clientSecret, []string{"OAuth sign-in refused", "invalid_client", "KAFKA_SASL_OAUTH_CLIENT_ID", "KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE", "KAFKA_SASL_OAUTH_TOKEN_URL=" + ts.URL}},
		{"echoing endpoint", echo.URL, clientSecret, []string{"400 Bad Request", "invalid_request", "KAFKA_SASL_OAUTH_TOKEN_URL=" + echo.URL}},
		{"no endpoint", closed.URL, clientSecret, []string{"cannot reach the token endpoint KAFKA_SASL_OAUTH_TOKEN_URL=" + closed.URL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokens, err := signin.ForOAuth(config.OAuth{TokenURL: tc.url, ClientID: clientID, ClientSecretFile: secretFile(t, tc.secret)}, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_, err = tokens.Token()
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error does not say %q: %v", s, err)
				}
			}
			for _, form := range secretForms(tc.secret) {
				if strings.Contains(err.Error(), form) {
					t.Errorf("the error holds the secret (%q): %v", form, err)
				}
			}
		})
	}
}

// secretForms are the ways the secret travels in a token request: as is, form-encoded, and
// inside Basic auth.
func secretForms(secret string) []string {
	return []string{secret, strings.ReplaceAll(fmt.Sprintf("%q", secret), `"`, ""), formEscape(secret), basic(clientID, secret)}
}

func formEscape(s string) string { return url.QueryEscape(s) }

func basic(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}
