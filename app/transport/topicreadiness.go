package transport

import (
	"errors"
	"sync"
)

// topicReadiness is whether the requested topic can be read: not while it does not exist, nor
// while the subscriber moves from a deleted topic to its recreation (topicWatch).
type topicReadiness struct {
	mu         sync.Mutex
	unreadable string // why not, "" when it can be read
}

// Readable is nil while the requested topic can be read, else why it cannot: an instance
// that cannot read it answers nothing.
func (a *Assignment) Readable() error {
	if a == nil {
		return nil
	}
	a.topic.mu.Lock()
	defer a.topic.mu.Unlock()
	if a.topic.unreadable != "" {
		return errors.New(a.topic.unreadable)
	}
	return nil
}

// topicUnreadable records why the topic cannot be read.
func (a *Assignment) topicUnreadable(why string) {
	if a == nil {
		return
	}
	a.topic.mu.Lock()
	defer a.topic.mu.Unlock()
	a.topic.unreadable = why
}

// topicReadable records that the topic can be read again.
func (a *Assignment) topicReadable() {
	if a == nil {
		return
	}
	a.topic.mu.Lock()
	defer a.topic.mu.Unlock()
	a.topic.unreadable = ""
}
