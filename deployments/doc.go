// Package deployments holds no code. Its tests check the files that build, run and observe the
// service outside Go — the Dockerfile, compose.yaml, Taskfile.yml, and the Prometheus and
// Grafana configuration in this directory — against each other and against the code: every
// variable compose gives the service is one it reads, every scrape target is a service of the
// stack, every image is pinned, the image's build command makes a static, version-stamped binary.
package deployments
