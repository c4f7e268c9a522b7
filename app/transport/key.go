package transport

import "github.com/ThreeDotsLabs/watermill/message"

// RecordKey tells the record key of a message to publish. The answers of one transaction id share
// a key, so they share a partition and keep their order; "" leaves the key null, and the
// partitioner spreads such records rather than sending them all to one partition. The service
// says which metadata holds the key (app/service): the transport knows no handler.
type RecordKey func(msg *message.Message) string

// KeyFromMetadata keys each record by the message's metadata value of name.
func KeyFromMetadata(name string) RecordKey {
	return func(msg *message.Message) string { return msg.Metadata.Get(name) }
}

// keyOf is key's key of msg; a nil key leaves every key null.
func (key RecordKey) keyOf(msg *message.Message) string {
	if key == nil {
		return ""
	}
	return key(msg)
}
