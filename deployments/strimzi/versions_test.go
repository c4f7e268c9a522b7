package strimzi_test

import (
	"os"
	"regexp"
	"testing"
)

// strimziKafkaVersions is each pinned Strimzi release's supported Kafka versions and their
// metadata versions, copied from kafka-versions.yaml at the release's tag in
// github.com/strimzi/strimzi-kafka-operator (the entries with supported: true).
var strimziKafkaVersions = map[string]map[string]string{
	"1.2.0": {"4.2.0": "4.2-IV1", "4.2.1": "4.2-IV1", "4.3.0": "4.3-IV0", "4.3.1": "4.3-IV0"},
}

// The versions on the way to production agree: the Strimzi release the Taskfile installs runs
// the Kafka version both clusters name, with that version's metadata version, and compose's
// broker is the same Kafka version, so what is tested locally is what runs.
func TestVersionsAgree(t *testing.T) {
	taskfile := read(t, "../Taskfile.k8s.yml")
	strimzi := submatch(t, "Taskfile.k8s.yml", `(?m)^\s*STRIMZI_VERSION:\s*([0-9.]+)\s*$`, taskfile)
	supported, known := strimziKafkaVersions[strimzi]
	if !known {
		t.Fatalf("Strimzi %s: add its supported Kafka versions (kafka-versions.yaml at its tag) to strimziKafkaVersions", strimzi)
	}
	var version string
	for _, dir := range []string{".", "dev"} {
		k := load(t, dir).kafka[0].Spec.Kafka
		metadata, ok := supported[k.Version]
		switch {
		case !ok:
			t.Errorf("%s: Kafka %s, which Strimzi %s does not run (it runs %v)", dir, k.Version, strimzi, supported)
		case k.MetadataVersion != metadata:
			t.Errorf("%s: metadataVersion %s, want %s, Kafka %s's", dir, k.MetadataVersion, metadata, k.Version)
		}
		if version != "" && k.Version != version {
			t.Errorf("production runs Kafka %s, development %s", version, k.Version)
		}
		version = k.Version
	}
	compose := submatch(t, "compose.yaml", `(?m)^\s*image:\s*apache/kafka:(\S+)\s*$`, read(t, "../../compose.yaml"))
	if compose != version {
		t.Errorf("compose runs Kafka %s, the clusters %s", compose, version)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func submatch(t *testing.T, file, pattern, text string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("%s: nothing matches %s", file, pattern)
	}
	return m[1]
}
