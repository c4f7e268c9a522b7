package helm_test

import (
	"path/filepath"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// TestMSKIAMWithIRSA: with AWS_MSK_IAM the pods' ServiceAccount carries IRSA's role annotation,
// the topics hook runs as a hook-owned copy with the same annotation (the release's does not
// exist yet when the hook runs), no Secret holds credentials, AWS_REGION reaches both, and the
// NetworkPolicy lets the pods out to STS.
func TestMSKIAMWithIRSA(t *testing.T) {
	const role = "arn:aws:iam::123456789012:role/pingpong"
	r := render(t, readValues(t, filepath.Join(chartDir, "ci", "msk-iam-values.yaml")))
	if got := r.serviceAccount.Annotations["eks.amazonaws.com/role-arn"]; got != role {
		t.Errorf("the ServiceAccount's role annotation is %q, want %q", got, role)
	}
	hook := r.hookServiceAccount
	if hook == nil || hook.Annotations["eks.amazonaws.com/role-arn"] != role || hook.Annotations["helm.sh/hook-weight"] != "-1" {
		t.Fatalf("the topics hook has no ServiceAccount of its own with the role, created before it: %+v", hook)
	}
	if sa := r.job.Spec.Template.Spec.ServiceAccountName; sa != hook.Name {
		t.Errorf("the topics Job runs as %q, want %q", sa, hook.Name)
	}
	if len(r.secrets) != 0 {
		t.Errorf("Secrets rendered with AWS_MSK_IAM: %v", r.secrets)
	}
	for what, env := range map[string]map[string]string{"Deployment": r.env(t, r.deployment.Spec.Template.Spec.Containers[0]), "Job": r.env(t, r.job.Spec.Template.Spec.Containers[0])} {
		if env["KAFKA_SASL_MECHANISM"] != "AWS_MSK_IAM" || env["AWS_REGION"] != "eu-west-1" || env["KAFKA_TLS_ENABLED"] != "true" {
			t.Errorf("%s: %v", what, env)
		}
	}
	if !egressTo(r.networkPolicy, 443) || !egressTo(r.networkPolicy, 9098) {
		t.Errorf("the NetworkPolicy does not let the pods out to STS (443) and MSK (9098): %+v", r.networkPolicy.Spec.Egress)
	}
}

// TestMSKIAMWithPodIdentity: with EKS Pod Identity nothing on the pods or the ServiceAccount
// names the role (the association does); the hook's ServiceAccount has a fixed name to
// associate.
func TestMSKIAMWithPodIdentity(t *testing.T) {
	r := render(t, map[string]any{"fullnameOverride": "pingpong", "kafka": map[string]any{"tls": map[string]any{"enabled": true, "caKey": ""},
		"sasl": map[string]any{"mechanism": "AWS_MSK_IAM"}}})
	for _, sa := range []map[string]string{r.serviceAccount.Annotations, r.hookServiceAccount.Annotations} {
		for k := range sa {
			if strings.Contains(k, "eks.amazonaws.com") {
				t.Errorf("an EKS annotation with Pod Identity: %s", k)
			}
		}
	}
	if r.hookServiceAccount.Name != "pingpong-topics" || r.serviceAccount.Name != "pingpong" {
		t.Errorf("ServiceAccounts %s and %s, want pingpong and pingpong-topics", r.serviceAccount.Name, r.hookServiceAccount.Name)
	}
	if env := r.env(t, r.deployment.Spec.Template.Spec.Containers[0]); env["AWS_REGION"] != "" {
		t.Errorf("AWS_REGION set without kafka.sasl.aws.region: %q", env["AWS_REGION"])
	}
	if r.deployment.Spec.Template.Spec.AutomountServiceAccountToken == nil || *r.deployment.Spec.Template.Spec.AutomountServiceAccountToken {
		t.Error("the pods mount the ServiceAccount token; IRSA and Pod Identity project their own")
	}
}

// TestOAuthBearer: the OAuth settings reach the service and the hook, the extensions as one
// sorted key=value list, the client secret as a mounted file from the chart's Secret (and the
// hook's copy); with an existing Secret, its key is the one mounted.
func TestOAuthBearer(t *testing.T) {
	r := render(t, readValues(t, filepath.Join(chartDir, "ci", "oauth-values.yaml")))
	env := r.env(t, r.deployment.Spec.Template.Spec.Containers[0])
	for name, want := range map[string]string{
		"KAFKA_SASL_MECHANISM":                "OAUTHBEARER",
		"KAFKA_SASL_OAUTH_TOKEN_URL":          "https://login.example.com/oauth2/v2.0/token",
		"KAFKA_SASL_OAUTH_CLIENT_ID":          "pingpong",
		"KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE": "/etc/pingpong/kafka-sasl/client-secret",
		"KAFKA_SASL_OAUTH_SCOPE":              "kafka",
		"KAFKA_SASL_OAUTH_EXTENSIONS":         "identityPoolId=pool-Xy1,logicalCluster=lkc-abc12",
	} {
		if env[name] != want {
			t.Errorf("%s=%q, want %q", name, env[name], want)
		}
	}
	for _, name := range []string{"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SASL_PASSWORD_FILE"} {
		if _, ok := env[name]; ok {
			t.Errorf("%s set with OAUTHBEARER", name)
		}
	}
	for name, s := range r.secrets {
		if string(s.Data["client-secret"]) != "not-a-real-secret" || len(s.Data) != 1 {
			t.Errorf("Secret %s holds %v, want the client secret alone", name, s.Data)
		}
	}
	if len(r.secrets) != 2 {
		t.Errorf("%d Secrets, want the release's and the hook's copy", len(r.secrets))
	}
	if !egressTo(r.networkPolicy, 443) {
		t.Errorf("the NetworkPolicy does not let the pods out to the token endpoint: %+v", r.networkPolicy.Spec.Egress)
	}

	values := readValues(t, filepath.Join(chartDir, "ci", "oauth-values.yaml"))
	sasl := values["kafka"].(map[string]any)["sasl"].(map[string]any)
	sasl["existingSecret"] = "confluent-oauth"
	sasl["existingSecretClientSecretKey"] = "secret"
	delete(sasl["oauth"].(map[string]any), "clientSecret")
	r = render(t, values)
	if len(r.secrets) != 0 {
		t.Errorf("Secrets rendered beside an existing one: %v", r.secrets)
	}
	for _, v := range r.deployment.Spec.Template.Spec.Volumes {
		if v.Name == "kafka-sasl" && (v.Secret.SecretName != "confluent-oauth" || v.Secret.Items[0].Key != "secret" || v.Secret.Items[0].Path != "client-secret") {
			t.Errorf("the client secret is mounted from %+v", v.Secret)
		}
	}
}

func egressTo(np *networkingv1.NetworkPolicy, port int) bool {
	if np == nil {
		return false
	}
	for _, rule := range np.Spec.Egress {
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.IntValue() == port {
				return true
			}
		}
	}
	return false
}

// TestCloudSignInValuesAreChecked: the schema and the templates refuse what cannot sign in.
func TestCloudSignInValuesAreChecked(t *testing.T) {
	tls := map[string]any{"enabled": true, "caKey": ""}
	oauth := func(o map[string]any) map[string]any {
		return map[string]any{"kafka": map[string]any{"sasl": map[string]any{"mechanism": "OAUTHBEARER", "existingSecret": "s",
			"oauth": merge(map[string]any{"tokenUrl": "https://idp.example/token", "clientId": "pingpong"}, o)}}}
	}
	msk := func(aws map[string]any) map[string]any {
		return map[string]any{"kafka": map[string]any{"tls": tls, "sasl": map[string]any{"mechanism": "AWS_MSK_IAM", "aws": aws}}}
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"schema: an extension key that is not letters", oauth(map[string]any{"extensions": map[string]any{"logical_cluster": "x"}}), "'logical_cluster' does not match"},
		{"schema: the auth extension", oauth(map[string]any{"extensions": map[string]any{"auth": "x"}}), "invalid propertyName 'auth'"},
		{"schema: an extension value with a comma", oauth(map[string]any{"extensions": map[string]any{"a": "x,y"}}), "/kafka/sasl/oauth/extensions"},
		{"schema: a token URL that is not one", oauth(map[string]any{"tokenUrl": "keycloak/token"}), "/kafka/sasl/oauth/tokenUrl"},
		{"schema: a role that is not an ARN", msk(map[string]any{"roleArn": "pingpong"}), "/kafka/sasl/aws/roleArn"},
		{"schema: a region that is not one", msk(map[string]any{"region": "Ireland"}), "/kafka/sasl/aws/region"},
		{"OAUTHBEARER without a token URL", oauth(map[string]any{"tokenUrl": ""}), "give kafka.sasl.oauth.tokenUrl"},
		{"OAUTHBEARER without a secret", map[string]any{"kafka": map[string]any{"sasl": map[string]any{"mechanism": "OAUTHBEARER", "oauth": map[string]any{"tokenUrl": "https://idp/t", "clientId": "c"}}}}, "kafka.sasl.oauth.clientSecret"},
		{"AWS_MSK_IAM without TLS", map[string]any{"kafka": map[string]any{"sasl": map[string]any{"mechanism": "AWS_MSK_IAM"}}}, "set kafka.tls.enabled"},
		{"AWS_MSK_IAM with KEDA", merge(msk(map[string]any{}), map[string]any{"autoscaling": map[string]any{"keda": map[string]any{"enabled": true}}}), "use autoscaling.hpa"},
		{"OAUTHBEARER with KEDA", merge(oauth(nil), map[string]any{"autoscaling": map[string]any{"keda": map[string]any{"enabled": true}}}), "use autoscaling.hpa"},
		{"an IRSA role without the chart's ServiceAccount", merge(msk(map[string]any{"roleArn": "arn:aws:iam::123456789012:role/p"}), map[string]any{"serviceAccount": map[string]any{"create": false, "name": "mine"}}), "annotate your ServiceAccount"},
		{"AWS settings without AWS_MSK_IAM", map[string]any{"kafka": map[string]any{"sasl": map[string]any{"aws": map[string]any{"region": "eu-west-1"}}}}, "not AWS_MSK_IAM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(t, tc.values)
			// (The schema library misreports where a bad map key is; the message names the key.)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want an error about %q, got %v", tc.want, err)
			}
		})
	}
}
