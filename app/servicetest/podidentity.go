package servicetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// PodIdentity is the container credentials endpoint EKS Pod Identity serves to a pod
// (AWS_CONTAINER_CREDENTIALS_FULL_URI, asked with the token in
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), on loopback. Each request gets a new access key,
// valid for the lifetime given.
type PodIdentity struct {
	env []string

	mu     sync.Mutex
	issued []aws.Credentials
}

// NewPodIdentity serves the endpoint until the test ends.
func NewPodIdentity(t testing.TB, lifetime time.Duration) *PodIdentity {
	t.Helper()
	const authorization = "pod-identity-token"
	p := &PodIdentity{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != authorization {
			http.Error(w, "not the pod's token", http.StatusUnauthorized)
			return
		}
		p.mu.Lock()
		n := len(p.issued)
		c := aws.Credentials{AccessKeyID: fmt.Sprintf("ASIAPODIDENTITY%04d", n), SecretAccessKey: fmt.Sprintf("Pod-Secret-%d-%d", n, time.Now().UnixNano()),
			SessionToken: fmt.Sprintf("pod-session-%d", n), Expires: time.Now().Add(lifetime)}
		p.issued = append(p.issued, c)
		p.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]string{"AccessKeyId": c.AccessKeyID, "SecretAccessKey": c.SecretAccessKey,
			"Token": c.SessionToken, "Expiration": c.Expires.UTC().Format(time.RFC3339)})
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	token, empty := filepath.Join(dir, "token"), filepath.Join(dir, "empty")
	for file, content := range map[string]string{token: authorization, empty: ""} {
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing of the caller's AWS settings takes part: the chain finds only this endpoint.
	p.env = []string{"AWS_REGION=", "AWS_DEFAULT_REGION=", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_DEFAULT_PROFILE=",
		"AWS_ROLE_ARN=", "AWS_WEB_IDENTITY_TOKEN_FILE=", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=",
		"AWS_CONFIG_FILE=" + empty, "AWS_SHARED_CREDENTIALS_FILE=" + empty, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + srv.URL + "/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=" + token}
	return p
}

// Env is the environment that points the AWS SDK's chain at the endpoint, for the binary.
func (p *PodIdentity) Env() []string { return p.env }

// SetEnv points this process's AWS SDK at the endpoint until the test ends, every other AWS_
// variable of the caller's cleared (AWS_REGION too, which kafkaclient sets from --aws-region:
// t.Setenv puts it back).
func (p *PodIdentity) SetEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "AWS_") {
			t.Setenv(name, "")
		}
	}
	for _, kv := range p.env {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
}

// Issued are the credentials handed out so far.
func (p *PodIdentity) Issued() []aws.Credentials {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]aws.Credentials(nil), p.issued...)
}

// Lookup is the credentials of an access key handed out.
func (p *PodIdentity) Lookup(key string) (aws.Credentials, bool) {
	for _, c := range p.Issued() {
		if c.AccessKeyID == key {
			return c, true
		}
	}
	return aws.Credentials{}, false
}
