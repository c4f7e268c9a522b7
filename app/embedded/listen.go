package embedded

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Listen is net.Listen for kfake (kfake.ListenFn), except that kfake learns that a client has
// gone only disconnectHold later. kfake starts a group member's session timer when it delivers
// the member's JoinGroup answer; when the client died while its JoinGroup waited for the
// rebalance, kfake could not deliver it and kept the member for ever, with no session, holding
// every later rebalance of its group (Kafka starts the timer whatever became of the answer).
// Until kfake hears of the disconnect, an answer is taken and dropped, the timer starts, and the
// dead member leaves the group one session timeout later, as it would on Kafka.
// docs/reliability.md has the whole story.
func Listen(network, address string) (net.Listener, error) {
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return listener{l}, nil
}

// disconnectHold outlasts the wait of a JoinGroup sent just before its client died: the
// rebalance timeout (the service's is franz-go's 60 s) and its rejoins.
const disconnectHold = 5 * time.Minute

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, closed: make(chan struct{})}, nil
}

// conn is a client's connection as kfake sees it.
type conn struct {
	net.Conn
	gone      atomic.Bool // the client has gone: what kfake writes is dropped
	closeOnce sync.Once
	closed    chan struct{} // kfake closed the connection
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err == nil {
		return n, nil
	}
	c.gone.Store(true)
	_ = c.Conn.Close()
	if n > 0 {
		return n, nil
	}
	select {
	case <-c.closed:
	case <-time.After(disconnectHold):
	}
	return 0, err
}

func (c *conn) Write(b []byte) (int, error) {
	if c.gone.Load() {
		return len(b), nil
	}
	if _, err := c.Conn.Write(b); err != nil {
		c.gone.Store(true)
		_ = c.Conn.Close()
	}
	return len(b), nil
}

func (c *conn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
