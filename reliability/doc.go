// Package reliability proves, end to end, that the service keeps its promise (every request is
// answered at least once, none is lost, the process does not crash) when the Kafka cluster fails
// in the ways production clusters fail, when the process is killed, and when the input topic
// carries hostile records. It has only tests: each scenario runs the service as it runs in
// production (servicetest.Start, or the built binary) against kfake, an in-process Kafka, and
// logs its figures. docs/reliability.md gives them with the command that reproduces them:
//
//	go test ./reliability/ -run . -v
package reliability
