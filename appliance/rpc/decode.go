package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// request is one decoded JSON-RPC 2.0 request.
type request struct {
	method string
	params json.RawMessage // nil when absent or null
	id     json.RawMessage // nil for a notification; else a string, number or null
}

// decodeRequest checks one request object. When it is not a valid request,
// it returns the error to answer with and the id to answer to (null when the
// id itself could not be read).
func decodeRequest(raw json.RawMessage) (request, *Error) {
	members, twice, ok := objectMembers(raw)
	if !ok {
		return request{}, invalidRequest("a request must be a JSON object")
	}
	var req request
	if id, ok := members["id"]; ok && twice != "id" {
		if !validID(id) {
			return request{}, invalidRequest("id must be a string, a number or null, in UTF-8")
		}
		req.id = id
	}
	fail := func(msg string) (request, *Error) {
		if req.id == nil {
			req.id = json.RawMessage("null")
		}
		return request{id: req.id}, invalidRequest(msg)
	}
	if twice != "" {
		// The last one would win silently: one reader of the request
		// could see another method or params than the next.
		return fail(fmt.Sprintf("member %.64q appears twice", twice))
	}
	var version string
	if v, ok := members["jsonrpc"]; !ok || json.Unmarshal(v, &version) != nil || version != "2.0" {
		return fail(`jsonrpc must be "2.0"`)
	}
	m, ok := members["method"]
	if !ok || json.Unmarshal(m, &req.method) != nil || req.method == "" {
		return fail("method must be a non-empty string")
	}
	if p, ok := members["params"]; ok {
		switch first(p) {
		case '{', '[':
			req.params = p
		case 'n':
		default:
			return fail("params must be an object or an array")
		}
	}
	for k := range members {
		switch k {
		case "jsonrpc", "method", "params", "id":
		default:
			return fail(fmt.Sprintf("unknown member %.64q in request", k))
		}
	}
	return req, nil
}

// objectMembers reads a JSON object's members as raw values, and names the
// first member that appears twice ("" when none does).
func objectMembers(raw json.RawMessage) (members map[string]json.RawMessage, twice string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, "", false
	}
	members = map[string]json.RawMessage{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, "", false
		}
		k, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, "", false
		}
		if _, dup := members[k]; dup && twice == "" {
			twice = k
		}
		members[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, "", false
	}
	return members, twice, true
}

// validID reports whether a (valid JSON) id is a string, a number or null,
// and valid UTF-8: it is echoed as it came.
func validID(id json.RawMessage) bool {
	if !utf8.Valid(id) {
		return false
	}
	switch c := first(id); {
	case c == '"', c == 'n', c == '-', c >= '0' && c <= '9':
		return true
	}
	return false
}

// first is the first byte of a JSON value that is not white space.
func first(v json.RawMessage) byte {
	for _, c := range v {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

func invalidRequest(msg string) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "invalid request: " + msg}
}
