// Package strimzi_test checks the Strimzi manifests: Strimzi publishes no Go types, so the
// fields these manifests use are mirrored here (with Strimzi's JSON names) and every manifest
// is decoded strictly into them; then what matters is checked: replication, zones, KRaft, the
// metrics, and that the Helm chart's values reach this cluster.
package strimzi_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/deployments/internal/kubeyaml"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

type kafkaNodePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Replicas   int                          `json:"replicas"`
		Roles      []string                     `json:"roles"`
		Storage    storage                      `json:"storage"`
		Resources  *corev1.ResourceRequirements `json:"resources,omitempty"`
		JVMOptions *struct {
			Xms string `json:"-Xms,omitempty"`
			Xmx string `json:"-Xmx,omitempty"`
		} `json:"jvmOptions,omitempty"`
		Template *struct {
			Pod *struct {
				TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
				Affinity                  *corev1.Affinity                  `json:"affinity,omitempty"`
			} `json:"pod,omitempty"`
		} `json:"template,omitempty"`
	} `json:"spec"`
}

type storage struct {
	Type    string `json:"type"`
	Volumes []struct {
		ID            int    `json:"id"`
		Type          string `json:"type"`
		Size          string `json:"size,omitempty"`
		KraftMetadata string `json:"kraftMetadata,omitempty"`
		DeleteClaim   *bool  `json:"deleteClaim,omitempty"`
	} `json:"volumes"`
}

type kafka struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Kafka struct {
			Version         string `json:"version"`
			MetadataVersion string `json:"metadataVersion"`
			Rack            *struct {
				TopologyKey string `json:"topologyKey"`
			} `json:"rack,omitempty"`
			Listeners     []listener `json:"listeners"`
			Authorization *struct {
				Type string `json:"type"`
			} `json:"authorization,omitempty"`
			Config        map[string]any `json:"config"`
			MetricsConfig *struct {
				Type      string `json:"type"`
				ValueFrom struct {
					ConfigMapKeyRef corev1.ConfigMapKeySelector `json:"configMapKeyRef"`
				} `json:"valueFrom"`
			} `json:"metricsConfig,omitempty"`
		} `json:"kafka"`
		EntityOperator *struct {
			TopicOperator *struct{} `json:"topicOperator,omitempty"`
			UserOperator  *struct{} `json:"userOperator,omitempty"`
		} `json:"entityOperator,omitempty"`
		KafkaExporter *struct {
			TopicRegex string `json:"topicRegex"`
			GroupRegex string `json:"groupRegex"`
		} `json:"kafkaExporter,omitempty"`
	} `json:"spec"`
}

type listener struct {
	Name           string `json:"name"`
	Port           int    `json:"port"`
	Type           string `json:"type"`
	TLS            bool   `json:"tls"`
	Authentication *struct {
		Type string `json:"type"`
	} `json:"authentication,omitempty"`
}

type kafkaTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TopicName  string         `json:"topicName"`
		Partitions int            `json:"partitions"`
		Replicas   int            `json:"replicas"`
		Config     map[string]any `json:"config,omitempty"`
	} `json:"spec"`
}

type kafkaUser struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Authentication struct {
			Type string `json:"type"`
		} `json:"authentication"`
		Authorization struct {
			Type string `json:"type"`
			ACLs []struct {
				Resource struct {
					Type        string `json:"type"`
					Name        string `json:"name"`
					PatternType string `json:"patternType"`
				} `json:"resource"`
				Operations []string `json:"operations"`
			} `json:"acls"`
		} `json:"authorization"`
	} `json:"spec"`
}

// manifests are the objects of a directory's *.yaml files.
type manifests struct {
	kafka      []*kafka
	pools      []*kafkaNodePool
	topics     []*kafkaTopic
	users      []*kafkaUser
	configMaps map[string]*corev1.ConfigMap
}

// load decodes every document of dir/*.yaml strictly into its type; any other kind, an unknown
// field or a Strimzi API version other than v1 fails.
func load(t *testing.T, dir string) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s", dir)
	}
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}}
	for _, file := range files {
		for _, doc := range documents(t, file) {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if strings.HasPrefix(meta.APIVersion, "kafka.strimzi.io/") && meta.APIVersion != "kafka.strimzi.io/v1" {
				t.Errorf("%s: %s is %s; Strimzi 1.0 serves only kafka.strimzi.io/v1", file, meta.Kind, meta.APIVersion)
			}
			switch meta.Kind {
			case "Kafka":
				m.kafka = append(m.kafka, decode[kafka](t, file, doc))
			case "KafkaNodePool":
				m.pools = append(m.pools, decode[kafkaNodePool](t, file, doc))
			case "KafkaTopic":
				m.topics = append(m.topics, decode[kafkaTopic](t, file, doc))
			case "KafkaUser":
				m.users = append(m.users, decode[kafkaUser](t, file, doc))
			case "ConfigMap":
				cm := decode[corev1.ConfigMap](t, file, doc)
				m.configMaps[cm.Name] = cm
			default:
				t.Fatalf("%s: unexpected kind %q", file, meta.Kind)
			}
		}
	}
	if len(m.kafka) != 1 {
		t.Fatalf("%s: %d Kafka resources, want 1", dir, len(m.kafka))
	}
	return m
}

// decode decodes a document strictly: an unknown field is an error.
func decode[T any](t *testing.T, file string, doc []byte) *T {
	t.Helper()
	obj := new(T)
	if err := kubeyaml.DecodeStrict(doc, obj); err != nil {
		t.Fatalf("%s: a %T does not decode strictly: %v", file, obj, err)
	}
	return obj
}

// documents splits a YAML file into its documents.
func documents(t *testing.T, file string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r := yamlutil.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// chartValues reads a values file of the Helm chart.
func chartValues(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "helm", "pingpong", name))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// value reads a dotted path of values, falling back on the chart's values.yaml.
func value(t *testing.T, vals map[string]any, path string) any {
	t.Helper()
	for _, v := range []map[string]any{vals, chartValues(t, "values.yaml")} {
		var cur any = v
		for _, key := range strings.Split(path, ".") {
			m, _ := cur.(map[string]any)
			cur = m[key]
		}
		if cur != nil {
			return cur
		}
	}
	t.Fatalf("no value %s", path)
	return nil
}

// configInt reads a Kafka config value written as a number or a string.
func configInt(t *testing.T, config map[string]any, key string) int {
	t.Helper()
	switch v := config[key].(type) {
	case int64:
		return int(v)
	case float64:
		return int(v)
	case string:
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s: %q", key, v)
		}
		return n
	default:
		t.Fatalf("config %s is missing or not a number: %v", key, config[key])
		return 0
	}
}

func TestProduction(t *testing.T) {
	m := load(t, ".")
	k := m.kafka[0]
	spec := k.Spec.Kafka
	vals := chartValues(t, "values-production.yaml")

	t.Run("KRaft", func(t *testing.T) {
		for _, a := range []string{"strimzi.io/kraft", "strimzi.io/node-pools"} {
			if k.Annotations[a] != "enabled" {
				t.Errorf("annotation %s is %q, want enabled", a, k.Annotations[a])
			}
		}
		if spec.Version == "" || spec.MetadataVersion == "" {
			t.Error("no Kafka version or metadata version: the operator's default would change under an upgrade")
		}
	})

	t.Run("node pools", func(t *testing.T) {
		brokers, controllers := 0, 0
		for _, p := range m.pools {
			if p.Labels["strimzi.io/cluster"] != k.Name {
				t.Errorf("pool %s belongs to cluster %q, not %s", p.Name, p.Labels["strimzi.io/cluster"], k.Name)
			}
			if slices.Contains(p.Spec.Roles, "broker") {
				brokers += p.Spec.Replicas
			}
			if slices.Contains(p.Spec.Roles, "controller") {
				controllers += p.Spec.Replicas
			}
			checkSpread(t, k.Name, p)
			for _, v := range p.Spec.Storage.Volumes {
				if v.Type != "persistent-claim" || v.DeleteClaim == nil || *v.DeleteClaim {
					t.Errorf("pool %s: volume %d is %s (deleteClaim %v): production data must be on volumes that outlive the cluster", p.Name, v.ID, v.Type, v.DeleteClaim)
				}
			}
		}
		if brokers < 3 {
			t.Errorf("%d brokers: replication factor 3 needs at least 3", brokers)
		}
		if controllers < 3 || controllers%2 == 0 {
			t.Errorf("%d controllers: the quorum needs an odd number, at least 3, to survive losing one", controllers)
		}
	})

	t.Run("replication", func(t *testing.T) {
		if spec.Rack == nil || spec.Rack.TopologyKey != "topology.kubernetes.io/zone" {
			t.Errorf("rack awareness %+v, want topologyKey topology.kubernetes.io/zone: replicas of a partition in different zones", spec.Rack)
		}
		for key, want := range map[string]int{
			"default.replication.factor":               3,
			"min.insync.replicas":                      2,
			"offsets.topic.replication.factor":         3,
			"transaction.state.log.replication.factor": 3,
			"transaction.state.log.min.isr":            2,
		} {
			if got := configInt(t, spec.Config, key); got != want {
				t.Errorf("%s is %d, want %d", key, got, want)
			}
		}
		if spec.Config["unclean.leader.election.enable"] != false {
			t.Error("unclean.leader.election.enable must be false: an out-of-sync replica would lose acknowledged records")
		}
		if spec.Config["auto.create.topics.enable"] != false {
			t.Error("auto.create.topics.enable must be false: topics come from KafkaTopic resources")
		}
	})

	t.Run("topics", func(t *testing.T) {
		prefix := value(t, vals, "config.topicPrefix").(string)
		checkTopics(t, k.Name, m.topics, prefix, int(value(t, vals, "topics.partitions").(float64)), 3, 2)
		if rf := value(t, vals, "topics.replicationFactor").(float64); rf != 3 {
			t.Errorf("values-production.yaml creates topics with replication factor %v, the KafkaTopics have 3", rf)
		}
		if isr := value(t, vals, "topics.minInsyncReplicas").(float64); isr != 2 {
			t.Errorf("values-production.yaml creates topics with min.insync.replicas %v, the KafkaTopics have 2", isr)
		}
	})

	t.Run("the chart reaches the cluster", func(t *testing.T) {
		l := checkBrokers(t, k, vals)
		if l.Authentication == nil || l.Authentication.Type != "scram-sha-512" || !l.TLS {
			t.Errorf("listener %s: %+v, want TLS and scram-sha-512", l.Name, l)
		}
		if value(t, vals, "kafka.tls.enabled") != true || value(t, vals, "kafka.sasl.mechanism") != "SCRAM-SHA-512" {
			t.Error("values-production.yaml does not use TLS and SCRAM-SHA-512, which the listener requires")
		}
		if spec.Authorization == nil || spec.Authorization.Type != "simple" {
			t.Error("no authorization: any authenticated client could read and write every topic")
		}
	})

	t.Run("the service's user", func(t *testing.T) {
		if len(m.users) != 1 {
			t.Fatalf("%d KafkaUsers, want 1", len(m.users))
		}
		u := m.users[0]
		if u.Labels["strimzi.io/cluster"] != k.Name || u.Spec.Authentication.Type != "scram-sha-512" {
			t.Errorf("KafkaUser %s: cluster %q, authentication %q", u.Name, u.Labels["strimzi.io/cluster"], u.Spec.Authentication.Type)
		}
		prefix := value(t, vals, "config.topicPrefix").(string)
		group := value(t, vals, "config.consumerGroup").(string)
		allowed := func(kind, name string, ops ...string) bool {
			for _, acl := range u.Spec.Authorization.ACLs {
				r := acl.Resource
				matches := r.Type == kind && (r.PatternType == "literal" && r.Name == name || r.PatternType == "prefix" && strings.HasPrefix(name, r.Name))
				if matches && !slices.ContainsFunc(ops, func(op string) bool { return !slices.Contains(acl.Operations, op) }) {
					return true
				}
			}
			return false
		}
		if !allowed("topic", prefix+".requested", "Read", "Describe", "Create") {
			t.Errorf("the user may not read (or create) %s.requested", prefix)
		}
		for _, topic := range []string{prefix + ".succeeded", prefix + ".failed"} {
			if !allowed("topic", topic, "Write", "Describe", "Create") {
				t.Errorf("the user may not write (or create) %s", topic)
			}
		}
		if !allowed("group", group, "Read") {
			t.Errorf("the user may not consume as group %s", group)
		}
		// Exactly-once: each pod's transactional id is <group>-<pod name> (a Deployment's pod
		// names are <deployment>-<replica set hash>-<suffix>).
		transactionalID := group + "-pingpong-7c9d8b6f4-x2x7q"
		if !allowed("transactionalId", transactionalID, "Write", "Describe") {
			t.Errorf("the user may not run transactions as %s (KAFKA_DELIVERY=exactly-once)", transactionalID)
		}
		if allowed("transactionalId", "billing-1", "Write") {
			t.Error("the user may write with any transactional id, not only its group's")
		}
		for _, acl := range u.Spec.Authorization.ACLs {
			if acl.Resource.Type == "cluster" {
				t.Errorf("the user has rights on the cluster %v, which none of its requests needs (idempotent and transactional producers are authorized by their topics and transactional ids)", acl.Operations)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		mc := spec.MetricsConfig
		if mc == nil || mc.Type != "jmxPrometheusExporter" {
			t.Fatalf("metricsConfig %+v, want the JMX Prometheus exporter", mc)
		}
		cm, ok := m.configMaps[mc.ValueFrom.ConfigMapKeyRef.Name]
		if !ok {
			t.Fatalf("metricsConfig reads ConfigMap %s, which the manifests do not have", mc.ValueFrom.ConfigMapKeyRef.Name)
		}
		rules := jmxRules(t, cm.Data[mc.ValueFrom.ConfigMapKeyRef.Key])
		for mbean, want := range jmxSamples {
			if got := rules.export(mbean); got != want {
				t.Errorf("%s is exported as %q, want %q", mbean, got, want)
			}
		}
		if k.Spec.KafkaExporter == nil {
			t.Error("no kafkaExporter: no consumer lag metrics")
		}
	})
}

// jmxSamples are MBean attributes as the JMX exporter sees them (bean<keys>attribute: value),
// with the metric each must become: the ones the alerts and Strimzi's dashboards use.
var jmxSamples = map[string]string{
	"kafka.controller<type=KafkaController, name=ActiveControllerCount><>Value: 1":                           "kafka_controller_kafkacontroller_activecontrollercount",
	"kafka.controller<type=KafkaController, name=OfflinePartitionsCount><>Value: 0":                          "kafka_controller_kafkacontroller_offlinepartitionscount",
	"kafka.controller<type=KafkaController, name=FencedBrokerCount><>Value: 0":                               "kafka_controller_kafkacontroller_fencedbrokercount",
	"kafka.server<type=raft-metrics><>current-leader: 3.0":                                                   "kafka_server_raftmetrics_current_leader",
	"kafka.server<type=ReplicaManager, name=UnderReplicatedPartitions><>Value: 0":                            "kafka_server_replicamanager_underreplicatedpartitions",
	"kafka.server<type=ReplicaManager, name=UnderMinIsrPartitionCount><>Value: 0":                            "kafka_server_replicamanager_underminisrpartitioncount",
	"kafka.server<type=ReplicaManager, name=IsrShrinksPerSec><>Count: 4":                                     "kafka_server_replicamanager_isrshrinks_total",
	"kafka.server<type=BrokerTopicMetrics, name=MessagesInPerSec, topic=prod.pingpong.requested><>Count: 10": "kafka_server_brokertopicmetrics_messagesin_total",
	"kafka.server<type=BrokerTopicMetrics, name=BytesOutPerSec><>Count: 1024":                                "kafka_server_brokertopicmetrics_bytesout_total",
	"kafka.server<type=BrokerTopicMetrics, name=FailedProduceRequestsPerSec><>Count: 0":                      "kafka_server_brokertopicmetrics_failedproducerequests_total",
	"kafka.network<type=RequestMetrics, name=RequestsPerSec, request=Produce, version=11><>Count: 7":         "kafka_network_requestmetrics_requests_total",
	"kafka.network<type=RequestMetrics, name=TotalTimeMs, request=Produce><>99thPercentile: 3.5":             "kafka_network_requestmetrics_totaltimems",
	"kafka.server<type=KafkaRequestHandlerPool, name=RequestHandlerAvgIdlePercent><>OneMinuteRate: 0.9":      "kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent",
	"kafka.log<type=Log, name=Size, topic=prod.pingpong.failed, partition=0><>Value: 4096":                   "kafka_log_log_size",
	"kafka.log<type=LogManager, name=OfflineLogDirectoryCount><>Value: 0":                                    "kafka_log_logmanager_offlinelogdirectorycount",
	// Not exported: the volume of other MBeans is what the rules leave out.
	"kafka.server<type=FetcherLagMetrics, name=ConsumerLag, clientId=x, topic=t, partition=0><>Value: 0": "",
}

// jmxRule is one rule of the JMX exporter's configuration.
type jmxRule struct {
	Pattern string            `json:"pattern"`
	Name    string            `json:"name"`
	Type    string            `json:"type"`
	Value   any               `json:"value,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	re      *regexp.Regexp
}

type jmxConfig struct {
	LowercaseOutputName       bool      `json:"lowercaseOutputName"`
	LowercaseOutputLabelNames bool      `json:"lowercaseOutputLabelNames"`
	Rules                     []jmxRule `json:"rules"`
}

func jmxRules(t *testing.T, text string) *jmxConfig {
	t.Helper()
	var c jmxConfig
	if err := kubeyaml.DecodeStrict([]byte(text), &c); err != nil {
		t.Fatalf("the JMX exporter configuration: %v", err)
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		// As the exporter compiles them: unanchored (Java's and Go's syntax agree on these).
		re, err := regexp.Compile("^.*(?:" + r.Pattern + ").*$")
		if err != nil {
			t.Fatalf("rule %d: %v", i, err)
		}
		r.re = re
		if !slices.Contains([]string{"GAUGE", "COUNTER", "UNTYPED"}, r.Type) {
			t.Errorf("rule %d: type %q", i, r.Type)
		}
	}
	return &c
}

// export is the metric name the exporter gives an MBean attribute: the first rule that matches
// wins; none means it is not exported.
func (c *jmxConfig) export(mbean string) string {
	for _, r := range c.Rules {
		m := r.re.FindStringSubmatchIndex(mbean)
		if m == nil {
			continue
		}
		// Java's $1 is group 1 followed by the rest; Go's would read $1_total as a group named 1_total.
		template := regexp.MustCompile(`\$(\d+)`).ReplaceAllString(r.Name, "$${$1}")
		name := string(r.re.ExpandString(nil, template, mbean, m))
		if c.LowercaseOutputName {
			name = strings.ToLower(name)
		}
		return regexp.MustCompile(`_+`).ReplaceAllString(regexp.MustCompile(`[^a-zA-Z0-9:_]`).ReplaceAllString(name, "_"), "_")
	}
	return ""
}

// checkSpread: a pool of more than one node spreads over zones, and never puts two nodes on one
// Kubernetes node.
func checkSpread(t *testing.T, cluster string, p *kafkaNodePool) {
	t.Helper()
	if p.Spec.Replicas < 2 {
		return
	}
	pods := labels.Set{"strimzi.io/cluster": cluster, "strimzi.io/pool-name": p.Name, "strimzi.io/kind": "Kafka"}
	other := labels.Set{"strimzi.io/cluster": cluster, "strimzi.io/pool-name": "another-pool", "strimzi.io/kind": "Kafka"}
	selects := func(sel *metav1.LabelSelector) bool {
		s, err := metav1.LabelSelectorAsSelector(sel)
		return err == nil && s.Matches(pods) && !s.Matches(other)
	}
	if p.Spec.Template == nil || p.Spec.Template.Pod == nil {
		t.Fatalf("pool %s: no pod template, so no spreading", p.Name)
	}
	pod := p.Spec.Template.Pod
	zones := false
	for _, c := range pod.TopologySpreadConstraints {
		zones = zones || c.TopologyKey == "topology.kubernetes.io/zone" && selects(c.LabelSelector)
	}
	if !zones {
		t.Errorf("pool %s: not spread over zones (topologySpreadConstraints on topology.kubernetes.io/zone selecting its pods)", p.Name)
	}
	nodes := false
	if pod.Affinity != nil && pod.Affinity.PodAntiAffinity != nil {
		for _, term := range pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			nodes = nodes || term.TopologyKey == "kubernetes.io/hostname" && selects(term.LabelSelector)
		}
	}
	if !nodes {
		t.Errorf("pool %s: two of its nodes may share a Kubernetes node (no required anti-affinity on kubernetes.io/hostname)", p.Name)
	}
}

// checkTopics: the service's three topics, with the given prefix, partitions and replication.
func checkTopics(t *testing.T, cluster string, topics []*kafkaTopic, prefix string, partitions, replicas, minISR int) {
	t.Helper()
	var names []string
	for _, topic := range topics {
		names = append(names, topic.Spec.TopicName)
		if topic.Labels["strimzi.io/cluster"] != cluster {
			t.Errorf("KafkaTopic %s belongs to cluster %q, not %s", topic.Name, topic.Labels["strimzi.io/cluster"], cluster)
		}
		if topic.Spec.Partitions != partitions {
			t.Errorf("%s has %d partitions, the chart's topics.partitions is %d (the autoscalers' bound)", topic.Spec.TopicName, topic.Spec.Partitions, partitions)
		}
		if topic.Spec.Replicas != replicas {
			t.Errorf("%s has %d replicas, want %d", topic.Spec.TopicName, topic.Spec.Replicas, replicas)
		}
		if minISR > 0 {
			if got := configInt(t, topic.Spec.Config, "min.insync.replicas"); got != minISR {
				t.Errorf("%s: min.insync.replicas %d, want %d", topic.Spec.TopicName, got, minISR)
			}
		}
	}
	slices.Sort(names)
	want := []string{prefix + ".failed", prefix + ".requested", prefix + ".succeeded"}
	if !slices.Equal(names, want) {
		t.Errorf("topics %v, want %v (the chart's config.topicPrefix is %s)", names, want, prefix)
	}
}

// checkBrokers: the chart's kafka.brokers is this cluster's bootstrap Service, on a listener it
// has. It returns that listener.
func checkBrokers(t *testing.T, k *kafka, vals map[string]any) listener {
	t.Helper()
	brokers := value(t, vals, "kafka.brokers").(string)
	host, port, err := net.SplitHostPort(brokers)
	if err != nil {
		t.Fatalf("kafka.brokers %q: %v", brokers, err)
	}
	if want := k.Name + "-kafka-bootstrap.kafka.svc"; host != want {
		t.Errorf("kafka.brokers is %s, Strimzi's bootstrap Service for cluster %s in namespace kafka is %s", host, k.Name, want)
	}
	for _, l := range k.Spec.Kafka.Listeners {
		if strconv.Itoa(l.Port) == port {
			return l
		}
	}
	t.Fatalf("kafka.brokers uses port %s, which no listener has", port)
	return listener{}
}

func TestDevelopment(t *testing.T) {
	m := load(t, "dev")
	k := m.kafka[0]
	vals := chartValues(t, "values.yaml")
	if k.Annotations["strimzi.io/kraft"] != "enabled" || k.Annotations["strimzi.io/node-pools"] != "enabled" {
		t.Errorf("annotations %v, want KRaft and node pools", k.Annotations)
	}
	if len(m.pools) != 1 || m.pools[0].Spec.Replicas != 1 || !slices.Equal(m.pools[0].Spec.Roles, []string{"controller", "broker"}) {
		t.Fatalf("the development cluster is not one node that is controller and broker: %+v", m.pools)
	}
	for _, key := range []string{"default.replication.factor", "min.insync.replicas", "offsets.topic.replication.factor", "transaction.state.log.replication.factor", "transaction.state.log.min.isr"} {
		if got := configInt(t, k.Spec.Kafka.Config, key); got != 1 {
			t.Errorf("%s is %d: a single broker can hold only one replica", key, got)
		}
	}
	checkTopics(t, k.Name, m.topics, value(t, vals, "config.topicPrefix").(string), int(value(t, vals, "topics.partitions").(float64)), 1, 0)
	l := checkBrokers(t, k, vals)
	if l.TLS || l.Authentication != nil || value(t, vals, "kafka.tls.enabled") != false || value(t, vals, "kafka.sasl.mechanism") != "" {
		t.Errorf("the chart's defaults and the development listener disagree on TLS or SASL: %+v", l)
	}
}

// TestMonitoring checks the PodMonitor and the Kafka alerts: they decode strictly into the
// Prometheus Operator's types, the PodMonitor selects the Kafka pods, the alerts use only
// metrics that are exported, and promtool accepts the rules.
func TestMonitoring(t *testing.T) {
	var pm monitoringv1.PodMonitor
	var pr monitoringv1.PrometheusRule
	for file, obj := range map[string]any{"monitoring/podmonitor.yaml": &pm, "monitoring/kafka-alerts.yaml": &pr} {
		docs := documents(t, file)
		if len(docs) != 1 {
			t.Fatalf("%s: %d documents, want 1", file, len(docs))
		}
		if err := kubeyaml.DecodeStrict(docs[0], obj); err != nil {
			t.Fatalf("%s does not decode strictly: %v", file, err)
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	for _, pod := range []labels.Set{
		{"strimzi.io/cluster": "pingpong", "strimzi.io/kind": "Kafka", "strimzi.io/pool-name": "broker"},
		{"strimzi.io/cluster": "pingpong", "strimzi.io/kind": "Kafka", "strimzi.io/name": "pingpong-kafka-exporter"},
	} {
		if !sel.Matches(pod) {
			t.Errorf("the PodMonitor (%s) does not select pod %v", sel, pod)
		}
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port == nil || *pm.Spec.PodMetricsEndpoints[0].Port != "tcp-prometheus" {
		t.Errorf("the PodMonitor scrapes %+v, want Strimzi's port tcp-prometheus", pm.Spec.PodMetricsEndpoints)
	}

	exported := map[string]bool{}
	for _, name := range jmxSamples {
		exported[name] = true
	}
	metric := regexp.MustCompile(`\b(kafka|kubelet)_[a-z0-9_]+`)
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			for _, name := range metric.FindAllString(r.Expr.String(), -1) {
				known := exported[name] || strings.HasPrefix(name, "kubelet_volume_stats_") || strings.HasPrefix(name, "kafka_consumergroup_")
				if !known {
					t.Errorf("alert %s uses %s, which neither the JMX rules (kafka-metrics.yaml), the Kafka Exporter nor the kubelet export", r.Alert, name)
				}
			}
		}
	}

	promtool := servicetest.RequirePromtool(t)
	groups, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "kafka-alerts.yml")
	if err := os.WriteFile(file, groups, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}
