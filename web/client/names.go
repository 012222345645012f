//go:build js && wasm

package main

// Display names (docs/protocol.md: the name of create_session and join_session, the names
// of joined, the name of peer_joined). The person's own name is typed in the lobby and
// remembered in the browser's localStorage; the others' come from the server. A participant
// without a name is shown by a short form of its user ID.

import (
	"maps"
	"syscall/js"

	"github.com/parley-rtc/parley/protocol"
)

// nameKey is where localStorage keeps the name between visits.
const nameKey = "parley.name"

// ownName is the name to send with a create or join: what the name field holds, cleaned
// as the server wants it ("" for none).
func (c *client) ownName() string {
	return protocol.CleanName(c.ui.displayName.Get("value").String())
}

// loadName fills the name field with the remembered name, so that a link opened later
// joins under it.
func (c *client) loadName() {
	if v := storage("getItem", nameKey); v.Type() == js.TypeString {
		c.ui.displayName.Set("value", v.String())
	}
}

// onNameInput remembers the name as it is typed.
func (c *client) onNameInput() {
	if name := c.ownName(); name != "" {
		storage("setItem", nameKey, name)
	} else {
		storage("removeItem", nameKey)
	}
}

// storage calls a method of window.localStorage, which may be missing or throw (storage
// disabled, a sandboxed page): the name is then not remembered, and that is all.
func storage(method string, args ...any) (v js.Value) {
	defer func() {
		if recover() != nil {
			v = js.Undefined()
		}
	}()
	ls := js.Global().Get("localStorage")
	if !ls.Truthy() {
		return js.Undefined()
	}
	return ls.Call(method, args...)
}

// setNames replaces what is known of the others' names with what joined says.
func (c *client) setNames(names map[string]string) {
	c.names = maps.Clone(names)
}

// notePeerName records the name a peer_joined carries.
func (c *client) notePeerName(id, name string) {
	if name == "" {
		delete(c.names, id)
		return
	}
	if c.names == nil {
		c.names = map[string]string{}
	}
	c.names[id] = name
}

// displayName is how participant id is labelled: its name, or a short form of its user ID;
// for a screen share's stream ID ("<user ID>~<n>"), whose screen it is.
func (c *client) displayName(id string) string {
	if isScreen(id) {
		return c.displayName(screenOwner(id)) + "'s screen"
	}
	if name := c.names[id]; name != "" {
		return name
	}
	return shortName(id)
}

// shortName labels a participant without a name: "Guest " and the first characters of
// its user ID.
func shortName(id string) string {
	if len(id) > 4 {
		id = id[:4]
	}
	return "Guest " + id
}

// namesObject is window.parley.names: the other participants' names, by user ID.
func (c *client) namesObject() map[string]any {
	o := make(map[string]any, len(c.names))
	for id, name := range c.names {
		o[id] = name
	}
	return o
}
