// Package sigclient is the client side of Parley's signaling: it dials a server's /ws,
// reads its Welcome, and sends and receives protocol messages, answering pings itself.
package sigclient

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/parley-rtc/parley/protocol"
)

// Conn is one signaling connection. Send may be called from any goroutine; Read from one.
type Conn struct {
	ws      *websocket.Conn
	Welcome protocol.Welcome
}

// WebSocketURL turns a server's base URL (http://host:port, https://…, ws://…) into the URL
// of its signaling endpoint.
func WebSocketURL(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", server, err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("server URL %q: scheme must be http, https, ws or wss", server)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server URL %q: no host", server)
	}
	if !strings.HasSuffix(u.Path, "/ws") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
	}
	return u.String(), nil
}

// Dial connects to the server at its base URL and waits for the Welcome.
func Dial(ctx context.Context, server string) (*Conn, error) {
	wsURL, err := WebSocketURL(server)
	if err != nil {
		return nil, err
	}
	ws, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to signaling server %s: %w", wsURL, err)
	}
	ws.SetReadLimit(protocol.MaxMessageSize)
	c := &Conn{ws: ws}
	m, err := c.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("signaling server %s: waiting for welcome: %w", wsURL, err)
	}
	w, ok := m.(protocol.Welcome)
	if !ok {
		ws.CloseNow()
		return nil, fmt.Errorf("signaling server %s: first message is %q, not welcome", wsURL, m.Type())
	}
	if w.ProtocolVersion != protocol.Version {
		ws.CloseNow()
		return nil, fmt.Errorf("signaling server %s speaks protocol version %d; this client speaks %d",
			wsURL, w.ProtocolVersion, protocol.Version)
	}
	c.Welcome = w
	return c, nil
}

// Send writes one message.
func (c *Conn) Send(ctx context.Context, m protocol.Message) error {
	b, err := protocol.Encode(m)
	if err != nil {
		return err
	}
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("send %s: %w", m.Type(), err)
	}
	return nil
}

// ErrClosed is returned by Read once the server has closed the connection.
var ErrClosed = errors.New("signaling connection closed")

// Read returns the next message other than Ping, which it answers with Pong.
func (c *Conn) Read(ctx context.Context) (protocol.Message, error) {
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			if s := websocket.CloseStatus(err); s != -1 {
				return nil, fmt.Errorf("%w: status %d", ErrClosed, s)
			}
			return nil, fmt.Errorf("read signaling message: %w", err)
		}
		m, err := protocol.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("from server: %w", err)
		}
		if _, ok := m.(protocol.Ping); ok {
			if err := c.Send(ctx, protocol.Pong{}); err != nil {
				return nil, err
			}
			continue
		}
		return m, nil
	}
}

// Close says goodbye and closes the connection.
func (c *Conn) Close() error {
	return c.ws.Close(websocket.StatusNormalClosure, "bye")
}

// CloseNow closes the connection without the closing handshake.
func (c *Conn) CloseNow() error { return c.ws.CloseNow() }
