package kafkaclient

import (
	"context"
	"os"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/sasl"
	awssasl "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/pingpong/pingpong/app/buildinfo"
	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/signin"
)

// oauthMechanism is SASL/OAUTHBEARER with a token of the client-credentials grant. franz-go asks
// for a token at every connection and every re-authentication; the shared source answers from
// its cache until the token is about to expire.
func oauthMechanism(k config.Kafka) (sasl.Mechanism, error) {
	tokens, err := signin.ForOAuth(k.SASL.OAuth, k.Timeout)
	if err != nil {
		return nil, err
	}
	return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		token, err := tokens.Token()
		if err != nil {
			return oauth.Auth{}, err
		}
		return oauth.Auth{Token: token, Extensions: tokens.Extensions()}, nil
	}), nil
}

// mskIAMMechanism is Amazon MSK's IAM sign-in: franz-go signs, per connection, with
// credentials from the AWS SDK's default chain.
func mskIAMMechanism(k config.Kafka) (sasl.Mechanism, error) {
	region := k.SASL.AWSRegion
	if region != "" && os.Getenv("AWS_REGION") != region {
		// Given as --aws-region: franz-go's signer reads AWS_REGION itself when a broker's
		// host name holds no region, so it must see the same value as the SDK.
		if err := os.Setenv("AWS_REGION", region); err != nil {
			return nil, err
		}
	}
	credentials, err := signin.ForAWS(context.Background(), region)
	if err != nil {
		return nil, err
	}
	return awssasl.ManagedStreamingIAM(func(ctx context.Context) (awssasl.Auth, error) {
		c, err := credentials.Credentials(ctx)
		if err != nil {
			return awssasl.Auth{}, err
		}
		return awssasl.Auth{
			AccessKey:    c.AccessKeyID,
			SecretKey:    c.SecretAccessKey,
			SessionToken: c.SessionToken,
			// IAM policies can condition on it (aws:UserAgent); MSK logs it.
			UserAgent: "pingpong/" + buildinfo.Version,
		}, nil
	}), nil
}

// saramaTokens is the shared token source as Sarama's AccessTokenProvider, for watermill-kafka.
type saramaTokens struct{ tokens *signin.OAuth }

func (s saramaTokens) Token() (*sarama.AccessToken, error) {
	token, err := s.tokens.Token()
	if err != nil {
		return nil, err
	}
	return &sarama.AccessToken{Token: token, Extensions: s.tokens.Extensions()}, nil
}
