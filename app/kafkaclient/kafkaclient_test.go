package kafkaclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/kafkaclient"
	"github.com/pingpong/pingpong/app/servicetest"
)

// TestSaramaSASL connects a Sarama client configured by kafkaclient.Sarama with each mechanism:
// the right password gets metadata, a wrong one is refused. For SCRAM this runs franz-go's SCRAM
// through the adapter to Sarama's SCRAMClient, both directions of the exchange included (the
// client checks the server's final signature).
func TestSaramaSASL(t *testing.T) {
	cluster := servicetest.Cluster(t, 1, kfake.EnableSASL(),
		kfake.Superuser(config.SASLPlain, "u", "right"),
		kfake.Superuser(config.SASLScramSHA256, "u", "right"),
		kfake.Superuser(config.SASLScramSHA512, "u", "right"))
	for _, mechanism := range []string{config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512} {
		for _, pass := range []string{"right", "wrong"} {
			t.Run(mechanism+"/"+pass, func(t *testing.T) {
				k := config.Kafka{Brokers: cluster.ListenAddrs()[0], Timeout: 5 * time.Second,
					SASL: config.SASL{Mechanism: mechanism, Username: "u", Password: pass}}
				c := sarama.NewConfig()
				c.Version = sarama.V2_1_0_0
				c.Metadata.Retry.Max = 0
				if err := kafkaclient.Sarama(k, c); err != nil {
					t.Fatal(err)
				}
				client, err := sarama.NewClient(k.BrokerList(), c)
				if pass == "wrong" {
					if err == nil {
						client.Close()
						t.Fatal("a wrong password was accepted")
					}
					return
				}
				if err != nil {
					t.Fatalf("the right password was refused: %v", err)
				}
				defer client.Close()
				if topics, err := client.Topics(); err != nil || len(topics) == 0 {
					t.Errorf("no metadata: %v %v", topics, err)
				}
			})
		}
	}
}

// TestCheckNamesTheProblem: Check's errors say what is wrong and which setting to look at.
func TestCheckNamesTheProblem(t *testing.T) {
	pki := servicetest.NewPKI(t, "127.0.0.1")
	plain := servicetest.Cluster(t, 1)
	secure := servicetest.Cluster(t, 1, kfake.TLS(pki.BrokerTLS(false)))
	for _, tc := range []struct {
		name string
		k    config.Kafka
		says string
	}{
		{"fine", config.Kafka{Brokers: plain.ListenAddrs()[0]}, ""},
		{"TLS fine", config.Kafka{Brokers: secure.ListenAddrs()[0], TLS: config.TLS{CAFile: pki.CAFile}}, ""},
		{"nothing listens", config.Kafka{Brokers: "127.0.0.1:1"}, "no broker listens at KAFKA_BROKERS=127.0.0.1:1"},
		{"TLS to a plaintext port", config.Kafka{Brokers: plain.ListenAddrs()[0], TLS: config.TLS{CAFile: pki.CAFile}}, "is that port the broker's TLS listener?"},
		{"SASL to a broker without", config.Kafka{Brokers: plain.ListenAddrs()[0], SASL: config.SASL{Mechanism: config.SASLPlain, Username: "u", Password: "p"}}, "authentication failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.k.Timeout == 0 {
				tc.k.Timeout = time.Second
			}
			err := kafkaclient.Check(context.Background(), tc.k)
			switch {
			case tc.says == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
				t.Fatalf("error %v does not say %q", err, tc.says)
			}
		})
	}
}

// TestConnectExplainsARefusedLogin: the operator tools get the same plain answer as the service
// when their credentials are refused, not a generic "cannot reach Kafka" after the timeout.
func TestConnectExplainsARefusedLogin(t *testing.T) {
	cluster := servicetest.Cluster(t, 1, kfake.EnableSASL(), kfake.Superuser(config.SASLScramSHA256, "u", "right"))
	k := config.Kafka{Brokers: cluster.ListenAddrs()[0], Timeout: 5 * time.Second}

	k.SASL = config.SASL{Mechanism: config.SASLScramSHA256, Username: "u", Password: "right"}
	client, err := kafkaclient.Connect(context.Background(), k)
	if err != nil {
		t.Fatalf("the right password: %v", err)
	}
	client.Close()

	k.SASL.Password = "wrong"
	_, err = kafkaclient.Connect(context.Background(), k)
	if err == nil || !strings.Contains(err.Error(), "Kafka authentication failed") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("a wrong password: %v", err)
	}
	_, err = kafkaclient.Connect(context.Background(), config.Kafka{Brokers: "127.0.0.1:1", Timeout: time.Hour})
	if err == nil || !strings.HasPrefix(err.Error(), "no broker listens at KAFKA_BROKERS=127.0.0.1:1: ") {
		t.Errorf("nothing listening is said at once as Check says it, not after KAFKA_TIMEOUT: %v", err)
	}
	var unreachable *kafkaclient.UnreachableError
	if errors.As(err, &unreachable) {
		t.Errorf("a refused connection reported as a timeout: %v", err)
	}
}
