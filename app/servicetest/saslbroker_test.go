package servicetest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awssasl "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/pingpong/pingpong/app/servicetest"
)

// The credentials of AWS's SigV4 test suite (aws-sig-v4-test-suite).
var suiteCredentials = aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}

// TestTheVerifiersSignerMatchesAWSTestVectors: the SigV4 signer VerifyMSKIAM checks with gives
// the signatures AWS publishes for get-vanilla and get-vanilla-query-order-key-case, so a
// payload it accepts is signed as AWS signs.
func TestTheVerifiersSignerMatchesAWSTestVectors(t *testing.T) {
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	for _, tc := range []struct{ name, url, signature string }{
		{"get-vanilla", "https://example.amazonaws.com/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"get-vanilla-query-order-key-case", "https://example.amazonaws.com/?Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
	} {
		req, err := http.NewRequest(http.MethodGet, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		if err := v4.NewSigner().SignHTTP(context.Background(), suiteCredentials, req, emptySHA256, "service", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
		want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + tc.signature
		if got := req.Header.Get("Authorization"); got != want {
			t.Errorf("%s: %s, want %s", tc.name, got, want)
		}
	}
}

// TestFranzGosMSKIAMPayload: franz-go's AWS_MSK_IAM sign-in, for a broker of MSK's naming and
// the test suite's credentials, with and without a session token, holds the fields of AWS's
// MSK IAM payload and the signature the AWS SDK computes; a payload changed after signing is
// refused.
func TestFranzGosMSKIAMPayload(t *testing.T) {
	const host = "b-1.demo.abc123.c2.kafka.eu-west-1.amazonaws.com"
	for _, creds := range []aws.Credentials{suiteCredentials, {AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "IQoJb3JpZ2luX2VjE+/session=="}} {
		mechanism := awssasl.Auth{AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey, SessionToken: creds.SessionToken, UserAgent: "pingpong/test"}.AsManagedStreamingIAMMechanism()
		if mechanism.Name() != "AWS_MSK_IAM" {
			t.Errorf("mechanism %q", mechanism.Name())
		}
		_, payload, err := mechanism.Authenticate(context.Background(), host+":9098")
		if err != nil {
			t.Fatal(err)
		}
		secretOf := func(key string) (aws.Credentials, bool) { return creds, key == creds.AccessKeyID }
		p, err := servicetest.VerifyMSKIAM(payload, host, "eu-west-1", secretOf)
		if err != nil {
			t.Fatalf("%s: %v\n%s", creds.AccessKeyID, err, payload)
		}
		if p["user-agent"] != "pingpong/test" || p["x-amz-security-token"] != creds.SessionToken {
			t.Errorf("payload %s", payload)
		}
		if _, err := servicetest.VerifyMSKIAM(payload, "b-2"+strings.TrimPrefix(host, "b-1"), "eu-west-1", secretOf); err == nil {
			t.Error("a payload for another broker was accepted")
		}
		tampered := strings.Replace(string(payload), `"x-amz-expires":"900"`, `"x-amz-expires":"901"`, 1)
		if _, err := servicetest.VerifyMSKIAM([]byte(tampered), host, "eu-west-1", secretOf); err == nil {
			t.Error("a payload changed after signing was accepted")
		}
	}
}

// TestOAuthBearerInitialResponseIsRFC7628: franz-go's OAUTHBEARER first message is RFC 7628's
// client response, byte for byte, with the token and the extensions.
func TestOAuthBearerInitialResponseIsRFC7628(t *testing.T) {
	mechanism := oauth.Auth{Token: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwaW5ncG9uZyJ9.c2ln", Extensions: map[string]string{"logicalCluster": "lkc-abc12", "identityPoolId": "pool-Xy1"}}.AsMechanism()
	_, first, err := mechanism.Authenticate(context.Background(), "kafka:9093")
	if err != nil {
		t.Fatal(err)
	}
	want := "n,,\x01auth=Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwaW5ncG9uZyJ9.c2ln\x01identityPoolId=pool-Xy1\x01logicalCluster=lkc-abc12\x01\x01"
	if string(first) != want {
		t.Errorf("first message %q, want %q", first, want)
	}
	token, ext, err := servicetest.ParseOAuthBearer(first)
	if err != nil || token != "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwaW5ncG9uZyJ9.c2ln" || len(ext) != 2 || ext["logicalCluster"] != "lkc-abc12" {
		t.Errorf("parsed %q %v %v", token, ext, err)
	}
	for _, bad := range []string{"auth=Bearer x\x01\x01", "n,,\x01auth=Bearer x\x01", "n,,\x01auth=Basic x\x01\x01", "n,,\x01auth=Bearer x\x01a_b=1\x01\x01", "p=x,,\x01auth=Bearer x\x01\x01"} {
		if _, _, err := servicetest.ParseOAuthBearer([]byte(bad)); err == nil {
			t.Errorf("%q parsed as RFC 7628", bad)
		}
	}
}
