package signin

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// AWSRefreshBefore is how long before they expire AWS credentials are replaced: an MSK broker
// checks them when it reads the signed sign-in, so they must not expire on the way. Five
// minutes is what the AWS SDK for Java prefetches STS credentials by, and a third of the
// shortest session STS grants (15 minutes).
const AWSRefreshBefore = 5 * time.Minute

// AWS hands out credentials from the AWS SDK's default chain: the environment
// (AWS_ACCESS_KEY_ID, ...), the shared files (AWS_PROFILE), web identity (IRSA:
// AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE), the container endpoint (EKS Pod Identity,
// ECS: AWS_CONTAINER_CREDENTIALS_FULL_URI), then the EC2 instance profile.
type AWS struct {
	credentials aws.CredentialsProvider
}

var awsSources sync.Map // region → *AWS

// ForAWS is the credentials source for region ("" lets the SDK find it), shared by every client
// of the process. Nothing is fetched until the first sign-in.
func ForAWS(ctx context.Context, region string) (*AWS, error) {
	if s, ok := awsSources.Load(region); ok {
		return s.(*AWS), nil
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = AWSRefreshBefore }),
	}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, &Error{fmt.Sprintf("AWS_MSK_IAM: loading the AWS SDK's configuration (AWS_PROFILE, AWS_CONFIG_FILE, AWS_REGION): %v", err)}
	}
	if cfg.Credentials == nil {
		return nil, &Error{"AWS_MSK_IAM: the AWS SDK found no way to get credentials"}
	}
	s := &AWS{credentials: cfg.Credentials}
	actual, _ := awsSources.LoadOrStore(region, s)
	return actual.(*AWS), nil
}

// Credentials are valid credentials, fetched again when those held expire within
// AWSRefreshBefore; the SDK's cache makes concurrent callers wait for one fetch.
func (s *AWS) Credentials(ctx context.Context) (aws.Credentials, error) {
	c, err := s.credentials.Retrieve(ctx)
	if err != nil {
		// The SDK's errors name the provider and what it asked, never a secret key.
		return aws.Credentials{}, &Error{fmt.Sprintf("AWS_MSK_IAM: getting AWS credentials from the SDK's default chain (environment, web identity for IRSA: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, EKS Pod Identity, instance profile) failed: %v", err)}
	}
	return c, nil
}
