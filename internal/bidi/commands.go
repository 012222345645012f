package bidi

import (
	"context"
	"encoding/json"
	"fmt"
)

// NewSession starts the connection's session (#command-session-new), with no required
// capabilities but acceptInsecureCerts: a test server's certificate is self-signed.
func (c *Client) NewSession(ctx context.Context) error {
	return c.Call(ctx, "session.new", map[string]any{
		"capabilities": map[string]any{"alwaysMatch": map[string]any{"acceptInsecureCerts": true}},
	}, nil)
}

// EndSession ends the session (#command-session-end); the browser stays up.
func (c *Client) EndSession(ctx context.Context) error {
	return c.Call(ctx, "session.end", nil, nil)
}

// Subscribe asks for the events named (#command-session-subscribe): "log.entryAdded".
func (c *Client) Subscribe(ctx context.Context, events ...string) error {
	return c.Call(ctx, "session.subscribe", map[string]any{"events": events}, nil)
}

// TopContext returns the ID of the browser's first top-level browsing context, its
// first tab (#command-browsingContext-getTree).
func (c *Client) TopContext(ctx context.Context) (string, error) {
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := c.Call(ctx, "browsingContext.getTree", map[string]any{"maxDepth": 0}, &tree); err != nil {
		return "", err
	}
	if len(tree.Contexts) == 0 {
		return "", fmt.Errorf("bidi browsingContext.getTree: no top-level browsing context")
	}
	return tree.Contexts[0].Context, nil
}

// Navigate loads url in the browsing context and waits until its document has loaded
// (#command-browsingContext-navigate, wait "complete").
func (c *Client) Navigate(ctx context.Context, context, url string) error {
	return c.Call(ctx, "browsingContext.navigate",
		map[string]any{"context": context, "url": url, "wait": "complete"}, nil)
}

// EvaluateError is a JavaScript exception thrown by an evaluated expression
// (#type-script-EvaluateResult, "exception").
type EvaluateError struct{ Text string }

func (e *EvaluateError) Error() string { return "bidi script.evaluate: exception: " + e.Text }

// Evaluate evaluates the JavaScript expression in the browsing context's page, awaits it
// if it is a promise, and unmarshals its value, passed through JSON.stringify, into out
// (#command-script-evaluate). JSON spares decoding BiDi's own serialization of values
// (#type-script-RemoteValue); out may be nil to ignore the value.
func (c *Client) Evaluate(ctx context.Context, context, expr string, out any) error {
	var r struct {
		Type   string `json:"type"` // "success" or "exception"
		Result struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := c.Call(ctx, "script.evaluate", map[string]any{
		"expression":   "(async () => JSON.stringify(await (" + expr + "\n)))()",
		"target":       map[string]any{"context": context},
		"awaitPromise": true,
		// The page's own activation rules do not gate what the test does.
		"userActivation": true,
	}, &r)
	switch {
	case err != nil:
		return err
	case r.Type == "exception":
		return &EvaluateError{Text: r.ExceptionDetails.Text}
	case out == nil:
		return nil
	case r.Result.Type != "string": // undefined, or a value JSON cannot hold
		return fmt.Errorf("bidi script.evaluate: the expression's value has no JSON form (%s)", r.Result.Type)
	}
	if err := json.Unmarshal([]byte(r.Result.Value), out); err != nil {
		return fmt.Errorf("bidi script.evaluate: value %.200q: %w", r.Result.Value, err)
	}
	return nil
}
