package rpc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/osgate/osgate/internal/strict"
)

// JSON-RPC 2.0 error codes, and osgate's own in the server range.
const (
	CodeParseError     = -32700 // the body is not JSON
	CodeInvalidRequest = -32600 // not a JSON-RPC 2.0 request (or too large)
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603 // the handler panicked or its result did not encode
	CodeServerError    = -32000 // the handler returned an error; Message says what
	CodeUnauthorized   = -32001 // missing, malformed or wrong API key (HTTP 401)
	CodeForbidden      = -32005 // the key's scope does not allow the method
)

// Error is a JSON-RPC error object. A Handler returns one (possibly
// wrapped) to choose the code; Client.Call returns one when the server
// answered with an error.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message)
}

// InvalidParams returns a -32602 error with msg, for a handler whose params
// decode but make no sense ("unknown device \"meter-9\"").
func InvalidParams(msg string) *Error {
	return &Error{Code: CodeInvalidParams, Message: msg}
}

// asError turns what a handler returned into the error object sent back.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeServerError, Message: err.Error()}
}

// paramsError is the -32602 error for strict decoding problems: the message
// lists them, Data holds one string per problem with its path below
// "params".
func paramsError(err error) *Error {
	var es strict.Errors
	if !errors.As(err, &es) {
		return &Error{Code: CodeInvalidParams, Message: "invalid params: " + err.Error()}
	}
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = strict.Error{Path: strict.Join("params", e.Path), Msg: e.Msg}.Error()
	}
	return &Error{Code: CodeInvalidParams, Message: "invalid params: " + strings.Join(lines, "; "), Data: lines}
}

// outcome is the metrics label of an error code.
func outcome(code int) string {
	switch code {
	case CodeParseError:
		return "parse_error"
	case CodeInvalidRequest:
		return "invalid_request"
	case CodeMethodNotFound:
		return "not_found"
	case CodeInvalidParams:
		return "invalid_params"
	case CodeInternalError:
		return "internal_error"
	case CodeForbidden:
		return "forbidden"
	}
	return "error"
}
