package config

import (
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"
)

// Kafka is what every command needs to reach the cluster and name the topics.
type Kafka struct {
	// Brokers is the KAFKA_BROKERS comma list; empty means the service embeds a broker.
	Brokers     string
	TopicPrefix string
	// Timeout bounds each attempt to reach the cluster, so that a broker that cannot be reached
	// is an error rather than a hang.
	Timeout time.Duration
	TLS     TLS
	SASL    SASL
}

// AddFlags registers the settings on fs.
func (k *Kafka) AddFlags(fs *pflag.FlagSet) {
	b := binder{fs}
	b.String(&k.Brokers, "KAFKA_BROKERS", "", "Kafka bootstrap brokers, host:port,host:port; unset, the service runs an embedded development broker on 127.0.0.1:9092 and the tools use it")
	b.String(&k.TopicPrefix, "TOPIC_PREFIX", "dev.pingpong", "prefix of the topics <prefix>.requested, <prefix>.succeeded and <prefix>.failed")
	b.Duration(&k.Timeout, "KAFKA_TIMEOUT", 10*time.Second, "how long to wait for the cluster before giving up on a request")
	k.TLS.addFlags(b)
	k.SASL.addFlags(b)
}

// BrokerList is KAFKA_BROKERS as a list.
func (k Kafka) BrokerList() []string {
	if strings.TrimSpace(k.Brokers) == "" {
		return nil
	}
	var list []string
	for _, b := range strings.Split(k.Brokers, ",") {
		list = append(list, strings.TrimSpace(b))
	}
	return list
}

// Topics are the three topic names.
type Topics struct{ Requested, Succeeded, Failed string }

// All lists the three topics.
func (t Topics) All() []string { return []string{t.Requested, t.Succeeded, t.Failed} }

// Topics names the topics from the prefix.
func (k Kafka) Topics() Topics {
	return Topics{
		Requested: k.TopicPrefix + ".requested",
		Succeeded: k.TopicPrefix + ".succeeded",
		Failed:    k.TopicPrefix + ".failed",
	}
}

// topicChars are the characters Kafka allows in a topic name.
var topicChars = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// Validate checks the settings.
func (k Kafka) Validate() error {
	for _, b := range k.BrokerList() {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			return invalid("KAFKA_BROKERS", k.Brokers, fmt.Sprintf("%q is not host:port", b))
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return invalid("KAFKA_BROKERS", k.Brokers, fmt.Sprintf("%q has no port from 1 to 65535", b))
		}
	}
	switch {
	case k.TopicPrefix == "":
		return invalid("TOPIC_PREFIX", k.TopicPrefix, "must not be empty")
	case !topicChars.MatchString(k.TopicPrefix):
		return invalid("TOPIC_PREFIX", k.TopicPrefix, "may hold only letters, digits, '.', '_' and '-' (Kafka's topic name characters)")
	case len(k.Topics().Succeeded) > 249:
		return invalid("TOPIC_PREFIX", k.TopicPrefix, "is too long: a Kafka topic name has at most 249 characters")
	case k.Timeout <= 0:
		return invalid("KAFKA_TIMEOUT", k.Timeout.String(), "must be above 0")
	}
	if err := k.TLS.validate(); err != nil {
		return err
	}
	if err := k.SASL.validate(); err != nil {
		return err
	}
	if strings.EqualFold(k.SASL.Mechanism, SASLAWSMSKIAM) && !k.TLS.On() {
		// The signed sign-in could be replayed for 15 minutes by whoever reads it.
		return invalid("KAFKA_TLS_ENABLED", "false", "must be true with KAFKA_SASL_MECHANISM=AWS_MSK_IAM: MSK takes IAM sign-in only on its TLS listeners (port 9098, or 9198 from outside the VPC)")
	}
	return nil
}

// Logging is how the program logs.
type Logging struct {
	Level  string
	Format string
}

// AddFlags registers the settings on fs.
func (l *Logging) AddFlags(fs *pflag.FlagSet) {
	b := binder{fs}
	b.String(&l.Level, "LOG_LEVEL", "info", "log level: trace, debug, info, warn, error (payloads and the Kafka client's own log only at debug and trace)")
	b.String(&l.Format, "LOG_FORMAT", "text", "log format: text or json")
}

// Validate checks the settings.
func (l Logging) Validate() error {
	if _, err := logrus.ParseLevel(l.Level); err != nil {
		return invalid("LOG_LEVEL", l.Level, "must be one of trace, debug, info, warn, error")
	}
	if l.Format != "text" && l.Format != "json" {
		return invalid("LOG_FORMAT", l.Format, "must be text or json")
	}
	return nil
}

// TopicSpec is how the topics are created (pingpong topics create, and the embedded broker).
type TopicSpec struct {
	Partitions        int
	ReplicationFactor int
	MinInsyncReplicas int
}

// AddFlags registers the settings on fs.
func (t *TopicSpec) AddFlags(fs *pflag.FlagSet) {
	b := binder{fs}
	b.Int(&t.Partitions, "TOPIC_PARTITIONS", 4, "partitions of each topic created; the most consumers that can share the work")
	b.Int(&t.ReplicationFactor, "TOPIC_REPLICATION_FACTOR", -1, "replicas of each topic created; -1 takes the broker's default (production: 3)")
	b.Int(&t.MinInsyncReplicas, "TOPIC_MIN_INSYNC_REPLICAS", 0, "min.insync.replicas of each topic created; 0 takes the broker's default (production: 2)")
}

// MaxTopicPartitions bounds TOPIC_PARTITIONS. Kafka sends a topic's partition count as an int32,
// so a larger int would wrap (4294967297 became 1 partition); and the embedded broker allocates
// every partition it is asked for (2^31 took 1.5 GiB in 8 s). 10,000 is far more than the
// service can use (one consumer per partition) and than a Kafka cluster is sized for per topic,
// so no real setting is refused.
const MaxTopicPartitions = 10000

// Validate checks the settings.
func (t TopicSpec) Validate() error {
	switch {
	case t.Partitions < 1 || t.Partitions > MaxTopicPartitions:
		return invalid("TOPIC_PARTITIONS", strconv.Itoa(t.Partitions), fmt.Sprintf("must be from 1 to %d", MaxTopicPartitions))
	case t.ReplicationFactor == 0 || t.ReplicationFactor < -1 || t.ReplicationFactor > 32767:
		return invalid("TOPIC_REPLICATION_FACTOR", strconv.Itoa(t.ReplicationFactor), "must be -1 (the broker's default) or from 1 to 32767")
	case t.MinInsyncReplicas < 0 || t.MinInsyncReplicas > 32767:
		return invalid("TOPIC_MIN_INSYNC_REPLICAS", strconv.Itoa(t.MinInsyncReplicas), "must be 0 (the broker's default) or from 1 to 32767")
	case t.ReplicationFactor > 0 && t.MinInsyncReplicas > t.ReplicationFactor:
		return invalid("TOPIC_MIN_INSYNC_REPLICAS", strconv.Itoa(t.MinInsyncReplicas),
			fmt.Sprintf("must not be above TOPIC_REPLICATION_FACTOR (%d), or no write could ever succeed", t.ReplicationFactor))
	}
	return nil
}

// Retry is the backoff of Watermill's Retry middleware for transient failures.
type Retry struct {
	MaxRetries      int
	InitialInterval time.Duration
	MaxInterval     time.Duration
	Multiplier      float64
	Jitter          float64
	MaxElapsed      time.Duration
}

// AddFlags registers the settings on fs.
func (r *Retry) AddFlags(fs *pflag.FlagSet) {
	b := binder{fs}
	b.Int(&r.MaxRetries, "RETRY_MAX_RETRIES", 5, "retries of a transient failure before the request is poisoned")
	b.Duration(&r.InitialInterval, "RETRY_INITIAL_INTERVAL", 100*time.Millisecond, "wait before the first retry")
	b.Duration(&r.MaxInterval, "RETRY_MAX_INTERVAL", 10*time.Second, "longest wait between two retries")
	b.Float(&r.Multiplier, "RETRY_MULTIPLIER", 2, "growth of the wait from one retry to the next")
	b.Float(&r.Jitter, "RETRY_JITTER", 0.5, "randomization of each wait, from 0 (none) to 1 (from 0 to twice the wait)")
	b.Duration(&r.MaxElapsed, "RETRY_MAX_ELAPSED", time.Minute, "longest time spent retrying one request; 0 means no bound")
}

// Validate checks the settings.
func (r Retry) Validate() error {
	switch {
	case r.MaxRetries < 0 || r.MaxRetries > 1000:
		return invalid("RETRY_MAX_RETRIES", strconv.Itoa(r.MaxRetries), "must be from 0 to 1000")
	case r.InitialInterval <= 0:
		return invalid("RETRY_INITIAL_INTERVAL", r.InitialInterval.String(), "must be above 0")
	case r.MaxInterval < r.InitialInterval:
		return invalid("RETRY_MAX_INTERVAL", r.MaxInterval.String(), "must not be below RETRY_INITIAL_INTERVAL ("+r.InitialInterval.String()+")")
	// The comparisons are written so that NaN fails them: NaN removed every wait, +Inf jumped
	// to the longest.
	case !(r.Multiplier >= 1) || math.IsInf(r.Multiplier, 0):
		return invalid("RETRY_MULTIPLIER", fmt.Sprint(r.Multiplier), "must be a finite number, 1 or more")
	case !(r.Jitter >= 0 && r.Jitter <= 1):
		return invalid("RETRY_JITTER", fmt.Sprint(r.Jitter), "must be from 0 to 1")
	case r.MaxElapsed < 0:
		return invalid("RETRY_MAX_ELAPSED", r.MaxElapsed.String(), "must be 0 (no bound) or more")
	}
	return nil
}

// Offset is where a new consumer group starts reading.
const (
	OffsetEarliest = "earliest"
	OffsetLatest   = "latest"
)

// Transports: how the router talks to Kafka.
const (
	TransportFranz     = "franz-go"        // many messages of a partition in flight, batched publishing
	TransportWatermill = "watermill-kafka" // watermill-kafka's defaults: one message of a partition at a time
)

// Compression codecs of produced batches.
var compressionCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// Transport is how the router talks to Kafka.
type Transport struct {
	Name                string
	PartitionWindow     int
	ProducerLinger      time.Duration
	ProducerBatchBytes  int
	ProducerCompression string
	MemoryBudgetBytes   int
	Ordering            string
	Delivery            Delivery
}

// Deliveries of KAFKA_DELIVERY.
const (
	// DeliveryAtLeastOnce commits a request's offset once its answer is acknowledged: a crash
	// between the two answers the request again.
	DeliveryAtLeastOnce = "at-least-once"
	// DeliveryExactlyOnce writes the answers and the input offsets they answer in one Kafka
	// transaction, so a read_committed reader sees each request answered once.
	DeliveryExactlyOnce = "exactly-once"
)

// Delivery is how the franz-go transport commits what it answered (KAFKA_DELIVERY) and, in
// exactly-once mode, how its transactions are bounded.
type Delivery struct {
	Mode string
	// TransactionInterval is about how long a request waits, from when it was written, for its
	// transaction to commit; a read_committed reader sees an answer only then.
	TransactionInterval time.Duration
	// TransactionMaxRequests bounds the requests of one transaction: what an abort answers again.
	TransactionMaxRequests int
	// TransactionTimeout is the broker's transaction.timeout.ms for this producer: how long an
	// instance killed mid-transaction holds up the next owner of its partitions.
	TransactionTimeout time.Duration
	// TransactionalID names this instance's producer; empty is <consumer group>-<host name>.
	TransactionalID string
}

// ExactlyOnce says whether answers and offsets are committed in transactions.
func (d Delivery) ExactlyOnce() bool { return d.Mode == DeliveryExactlyOnce }

// Bounds of the transaction settings: a transaction timeout below a few seconds aborts healthy
// transactions on a slow cluster, and Kafka's default transaction.max.timeout.ms is 15 minutes.
const (
	minTransactionTimeout = time.Second
	maxTransactionTimeout = 15 * time.Minute
	// MaxTransactionMaxRequests bounds KAFKA_TRANSACTION_MAX_REQUESTS: an abort answers this many
	// requests again.
	MaxTransactionMaxRequests = 1_000_000
)

func (d *Delivery) addFlags(b binder) {
	b.String(&d.Mode, "KAFKA_DELIVERY", DeliveryAtLeastOnce, "franz-go: at-least-once (a crash may answer a request twice) or exactly-once (answers and input offsets committed in one Kafka transaction; readers must read committed)")
	b.Duration(&d.TransactionInterval, "KAFKA_TRANSACTION_INTERVAL", 100*time.Millisecond, "exactly-once: about how long a request waits, from when it was written, for the transaction that answers it to commit, when read_committed readers see its answer")
	b.Int(&d.TransactionMaxRequests, "KAFKA_TRANSACTION_MAX_REQUESTS", 10000, "exactly-once: most requests in one transaction, what an abort answers again")
	b.Duration(&d.TransactionTimeout, "KAFKA_TRANSACTION_TIMEOUT", 10*time.Second, "exactly-once: the broker aborts a transaction open this long; how long an instance killed mid-transaction holds up its partitions")
	b.String(&d.TransactionalID, "KAFKA_TRANSACTIONAL_ID", "", "exactly-once: transactional id of this instance's producer, unique among live instances; empty is <consumer group>-<host name>, so a restarted pod fences its predecessor")
}

func (d Delivery) validate() error {
	switch {
	case d.Mode != DeliveryAtLeastOnce && d.Mode != DeliveryExactlyOnce:
		return invalid("KAFKA_DELIVERY", d.Mode, "must be at-least-once or exactly-once")
	case d.TransactionTimeout < minTransactionTimeout || d.TransactionTimeout > maxTransactionTimeout:
		return invalid("KAFKA_TRANSACTION_TIMEOUT", d.TransactionTimeout.String(), "must be from 1s to 15m (Kafka's default transaction.max.timeout.ms)")
	case d.TransactionInterval <= 0 || d.TransactionInterval > d.TransactionTimeout/2:
		return invalid("KAFKA_TRANSACTION_INTERVAL", d.TransactionInterval.String(),
			fmt.Sprintf("must be above 0 and at most half of KAFKA_TRANSACTION_TIMEOUT (%s), or a healthy transaction could time out", d.TransactionTimeout))
	case d.TransactionMaxRequests < 1 || d.TransactionMaxRequests > MaxTransactionMaxRequests:
		return invalid("KAFKA_TRANSACTION_MAX_REQUESTS", strconv.Itoa(d.TransactionMaxRequests), fmt.Sprintf("must be from 1 to %d", MaxTransactionMaxRequests))
	case len(d.TransactionalID) > 249 || strings.ContainsAny(d.TransactionalID, "\x00\n"):
		return invalid("KAFKA_TRANSACTIONAL_ID", d.TransactionalID, "must be at most 249 characters, with no newline or NUL")
	}
	return nil
}

// Orderings of KAFKA_ORDERING.
var orderings = []string{"key", "partition", "none"}

// Bounds of MEMORY_BUDGET_BYTES: below a few requests the service crawls, and above 1 GiB it
// no longer bounds anything a pod's memory limit allows.
const (
	minMemoryBudgetBytes = 1 << 20
	maxMemoryBudgetBytes = 1 << 30
	// memoryBudgetRequests is how many of the largest requests the budget holds at least: each
	// message in flight is counted with its answer, and a decoded batch beside it.
	memoryBudgetRequests = 4
)

// AddFlags registers the settings on fs.
func (t *Transport) AddFlags(fs *pflag.FlagSet) {
	b := binder{fs}
	b.String(&t.Name, "KAFKA_TRANSPORT", TransportFranz, "Kafka client of the router: franz-go (pipelined, batched) or watermill-kafka (one message per partition at a time)")
	b.Int(&t.PartitionWindow, "KAFKA_PARTITION_WINDOW", 1024, "franz-go: most messages of one partition held at once, counted from the lowest not yet acknowledged, besides those waiting behind their key; within MEMORY_BUDGET_BYTES")
	b.Duration(&t.ProducerLinger, "KAFKA_PRODUCER_LINGER", 0, "franz-go: how long a batch waits for more answers before it is sent; 0 still batches what arrives while a request is in flight")
	b.Int(&t.ProducerBatchBytes, "KAFKA_PRODUCER_BATCH_BYTES", 1000012, "franz-go: largest batch of answers; at most the answer topics' max.message.bytes (checked at start-up)")
	b.String(&t.ProducerCompression, "KAFKA_PRODUCER_COMPRESSION", "snappy", "franz-go: compression of answer batches: none, gzip, snappy, lz4 or zstd")
	b.String(&t.Ordering, "KAFKA_ORDERING", "key", "franz-go: which requests of a partition are answered one after another: key (those of one record key, the transaction id), partition (all), none")
	b.Int(&t.MemoryBudgetBytes, "MEMORY_BUDGET_BYTES", 32<<20, "franz-go: bytes of requests held at once, counted decoded (fetched batches, messages in flight, their answers); a batch that decodes past it is poisoned")
	t.Delivery.addFlags(b)
}

// MaxPartitionWindow bounds KAFKA_PARTITION_WINDOW: each message in flight holds its request and
// a goroutine, and a window of 1e6 took 611 MiB of heap at 16 partitions. 4096 is four times the
// default (1,024), past where the drain stops getting faster.
const MaxPartitionWindow = 4096

// MaxProducerBatchBytes bounds KAFKA_PRODUCER_BATCH_BYTES: franz-go refuses a batch larger than
// what it writes to a broker at once (100 MiB by default), and the value is sent as an int32.
const MaxProducerBatchBytes = 100 << 20

// Validate checks the settings.
func (t Transport) Validate() error {
	switch {
	case t.Name != TransportFranz && t.Name != TransportWatermill:
		return invalid("KAFKA_TRANSPORT", t.Name, "must be franz-go or watermill-kafka")
	case t.PartitionWindow < 1 || t.PartitionWindow > MaxPartitionWindow:
		return invalid("KAFKA_PARTITION_WINDOW", strconv.Itoa(t.PartitionWindow), fmt.Sprintf("must be from 1 to %d", MaxPartitionWindow))
	case t.ProducerLinger < 0:
		return invalid("KAFKA_PRODUCER_LINGER", t.ProducerLinger.String(), "must be 0 or more")
	case t.MemoryBudgetBytes < minMemoryBudgetBytes || t.MemoryBudgetBytes > maxMemoryBudgetBytes:
		return invalid("MEMORY_BUDGET_BYTES", strconv.Itoa(t.MemoryBudgetBytes), fmt.Sprintf("must be from %d (1 MiB) to %d (1 GiB)", minMemoryBudgetBytes, maxMemoryBudgetBytes))
	case t.ProducerBatchBytes < 1024 || t.ProducerBatchBytes > MaxProducerBatchBytes:
		return invalid("KAFKA_PRODUCER_BATCH_BYTES", strconv.Itoa(t.ProducerBatchBytes), fmt.Sprintf("must be from 1024 to %d", MaxProducerBatchBytes))
	}
	if err := t.Delivery.validate(); err != nil {
		return err
	}
	if !slices.Contains(orderings, t.Ordering) {
		return invalid("KAFKA_ORDERING", t.Ordering, "must be one of "+strings.Join(orderings, ", "))
	}
	for _, c := range compressionCodecs {
		if t.ProducerCompression == c {
			return nil
		}
	}
	return invalid("KAFKA_PRODUCER_COMPRESSION", t.ProducerCompression, "must be one of "+strings.Join(compressionCodecs, ", "))
}

// Service is the service's configuration.
type Service struct {
	Kafka     Kafka
	Logging   Logging
	Topics    TopicSpec
	Retry     Retry
	Transport Transport

	ConsumerGroup   string
	ConsumerOffset  string
	HTTPAddr        string
	ShutdownTimeout time.Duration
	MaxRequestBytes int
	// EmbeddedBrokerPort is the port of the embedded broker, used when Kafka.Brokers is empty.
	EmbeddedBrokerPort int
}

// AddFlags registers the service's own settings on fs; the Kafka and Logging settings, which
// every command shares, are registered by the caller (as persistent flags).
func (s *Service) AddFlags(fs *pflag.FlagSet) {
	b := binder{fs}
	b.String(&s.ConsumerGroup, "KAFKA_CONSUMER_GROUP", "pingpong", "consumer group of the service's instances")
	b.String(&s.ConsumerOffset, "KAFKA_CONSUMER_OFFSET", OffsetEarliest, "where a new consumer group starts: earliest or latest")
	AddHTTPAddr(fs, &s.HTTPAddr)
	b.Duration(&s.ShutdownTimeout, "SHUTDOWN_TIMEOUT", 30*time.Second, "time to finish the requests in flight after SIGTERM")
	b.Int(&s.MaxRequestBytes, "MAX_REQUEST_BYTES", 512*1024, "largest request handled; larger ones are answered as malformed")
	b.Int(&s.EmbeddedBrokerPort, "EMBEDDED_BROKER_PORT", 9092, "port of the embedded broker on 127.0.0.1 when KAFKA_BROKERS is unset; 0 picks a free one")
	s.Topics.AddFlags(fs)
	s.Retry.AddFlags(fs)
	s.Transport.AddFlags(fs)
}

// AddHTTPAddr registers HTTP_ADDR alone, for commands that talk to a running service.
func AddHTTPAddr(fs *pflag.FlagSet, p *string) {
	binder{fs}.String(p, "HTTP_ADDR", ":8080", "address of /metrics, /healthz and /readyz")
}

// PoisonOverheadBytes is what a poison record may add to the request bytes it carries: the
// record batch's framing, the answer and the service's own headers (reason, topic, offsets,
// timestamps). It is a generous bound; the answer and headers take well under 2 KiB.
const PoisonOverheadBytes = 16 << 10

// Validate checks every setting.
func (s Service) Validate() error {
	for _, v := range []interface{ Validate() error }{s.Kafka, s.Logging, s.Topics, s.Retry, s.Transport} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	switch {
	case s.ConsumerGroup == "":
		return invalid("KAFKA_CONSUMER_GROUP", s.ConsumerGroup, "must not be empty")
	case s.ConsumerOffset != OffsetEarliest && s.ConsumerOffset != OffsetLatest:
		return invalid("KAFKA_CONSUMER_OFFSET", s.ConsumerOffset, "must be earliest or latest")
	case s.ShutdownTimeout <= 0:
		return invalid("SHUTDOWN_TIMEOUT", s.ShutdownTimeout.String(), "must be above 0")
	case s.MaxRequestBytes < 1:
		return invalid("MAX_REQUEST_BYTES", strconv.Itoa(s.MaxRequestBytes), "must be at least 1")
	case s.Transport.MemoryBudgetBytes/memoryBudgetRequests < s.MaxRequestBytes:
		return invalid("MEMORY_BUDGET_BYTES", strconv.Itoa(s.Transport.MemoryBudgetBytes),
			fmt.Sprintf("must hold at least %d requests of MAX_REQUEST_BYTES (%d)", memoryBudgetRequests, s.MaxRequestBytes))
	case s.MaxRequestBytes > s.Transport.ProducerBatchBytes-PoisonOverheadBytes:
		// A request that is refused is answered on the poison queue with its bytes; a poison
		// record the producer cannot send would be retried for ever and stop its partition.
		return invalid("MAX_REQUEST_BYTES", strconv.Itoa(s.MaxRequestBytes), fmt.Sprintf(
			"must be at most KAFKA_PRODUCER_BATCH_BYTES (%d) minus %d, what a poison record adds to the request it carries, or a request of that size could not be answered",
			s.Transport.ProducerBatchBytes, PoisonOverheadBytes))
	case s.Transport.Name == TransportWatermill && strings.EqualFold(s.Kafka.SASL.Mechanism, SASLAWSMSKIAM):
		// Sarama has no AWS_MSK_IAM; a third-party signer for it is not worth a second
		// implementation of what franz-go does.
		return invalid("KAFKA_TRANSPORT", s.Transport.Name, "must be franz-go with KAFKA_SASL_MECHANISM=AWS_MSK_IAM: watermill-kafka's Sarama has no MSK IAM sign-in")
	case s.Transport.Name == TransportWatermill && s.Transport.Delivery.ExactlyOnce():
		// Sarama's transactions have no KIP-447 group fencing in watermill-kafka's subscriber.
		return invalid("KAFKA_DELIVERY", s.Transport.Delivery.Mode, "needs KAFKA_TRANSPORT=franz-go: watermill-kafka (KAFKA_TRANSPORT="+s.Transport.Name+") has no transactions")
	case s.EmbeddedBrokerPort < 0 || s.EmbeddedBrokerPort > 65535:
		return invalid("EMBEDDED_BROKER_PORT", strconv.Itoa(s.EmbeddedBrokerPort), "must be from 0 to 65535")
	}
	if _, port, err := net.SplitHostPort(s.HTTPAddr); err != nil {
		return invalid("HTTP_ADDR", s.HTTPAddr, "must be host:port or :port")
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return invalid("HTTP_ADDR", s.HTTPAddr, "has no port from 0 to 65535")
	}
	return nil
}
