// Package handlers holds the ping-pong contract: how a request is read, which answer it gets, and
// the Watermill handler that applies it. Nothing here knows about Kafka; transports and
// middleware live elsewhere.
//
// The contract is the original Python service's, answer for answer (the same JSON values, and
// the same bytes but for how the id is spelled), so existing clients keep working. docs/contract.md lists every edge case and the decision taken for it.
package handlers
