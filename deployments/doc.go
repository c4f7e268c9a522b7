// Package deployments holds no code. Its tests check the files that build, run and observe the
// service outside Go — the Dockerfile, compose.yaml, Taskfile.yml, and the Prometheus and
// Grafana configuration in this directory — against each other and against the code: every
// variable compose gives the service is one it reads, every scrape target is a service of the
// stack, every image is pinned, the image's build command makes a static, version-stamped binary.
// Its subpackages test the Helm chart (helm), the Strimzi manifests (strimzi) and the dashboard
// and alerts against a real Prometheus (observability).
//
// deployments/ is a Go module of its own, joined to the service's by go.work: compose-go, the
// Kubernetes API types and the Prometheus Operator's types are needed by these tests only, and
// stay out of the service's go.mod, which lists what the binary links.
package deployments
