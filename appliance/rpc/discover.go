package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/strict"
)

// Discover is the method that describes every method: it returns an
// OpenRPC document (https://spec.open-rpc.org).
const Discover = "rpc.discover"

// openRPCVersion is the OpenRPC specification the document follows.
const openRPCVersion = "1.3.2"

// Doc describes a method for rpc.discover.
type Doc struct {
	// Summary is one line: what the method does.
	Summary string
	// Description says more, if needed.
	Description string
	// Params is a value of the struct the method decodes its params into
	// (nil: no params); see ParamsOf. ExtraParams come after its fields.
	Params      any
	ExtraParams []ContentDescriptor
	// Result is a value of the result's type (nil: any JSON value), and
	// ResultDoc says what it is.
	Result    any
	ResultDoc string
}

// Describe documents method name for rpc.discover. A method may be
// described before or after it is registered; rpc.discover lists only
// registered ones.
func (s *Server) Describe(name string, d Doc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[name] = d
}

// Document is the OpenRPC document of the methods registered now.
type Document struct {
	OpenRPC string         `json:"openrpc"`
	Info    Info           `json:"info"`
	Methods []MethodObject `json:"methods"`
}

// Info names the service.
type Info struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Version     string `json:"version"`
}

// MethodObject is one method of a Document (an OpenRPC "method object").
type MethodObject struct {
	Name           string              `json:"name"`
	Summary        string              `json:"summary,omitempty"`
	Description    string              `json:"description,omitempty"`
	ParamStructure string              `json:"paramStructure"`
	Params         []ContentDescriptor `json:"params"`
	Result         ContentDescriptor   `json:"result"`
	// Scope is what a caller's key needs to call it: read, write or admin
	// (an OpenRPC extension field).
	Scope string `json:"x-scope"`
}

// Document returns the OpenRPC document rpc.discover answers with: every
// registered method, rpc.discover included, sorted by name.
func (s *Server) Document() Document {
	s.mu.RLock()
	defer s.mu.RUnlock()
	doc := Document{
		OpenRPC: openRPCVersion,
		Info: Info{Title: "osgate JSON-RPC", Version: s.version,
			Description: "The gateway's JSON-RPC 2.0 service: over HTTP (POST /rpc, Authorization: Bearer KEY) and from the cloud over MQTT."},
		Methods: []MethodObject{discoverMethod()},
	}
	for name, m := range s.methods {
		mo := methodOf(name, s.docs[name])
		mo.Scope = m.Scope.String()
		doc.Methods = append(doc.Methods, mo)
	}
	sort.Slice(doc.Methods, func(i, j int) bool { return doc.Methods[i].Name < doc.Methods[j].Name })
	return doc
}

func methodOf(name string, d Doc) MethodObject {
	m := MethodObject{Name: name, Summary: d.Summary, Description: d.Description, ParamStructure: "by-name",
		Params: append(ParamsOf(d.Params), d.ExtraParams...),
		Result: ContentDescriptor{Name: "result", Description: d.ResultDoc, Schema: SchemaOf(d.Result)}}
	return m
}

func discoverMethod() MethodObject {
	return MethodObject{
		Name:           Discover,
		Scope:          scope.Read.String(),
		Summary:        "Describe every method of this gateway: an OpenRPC document with each method's params and result as JSON Schema.",
		ParamStructure: "by-name",
		Params:         []ContentDescriptor{},
		Result: ContentDescriptor{Name: "OpenRPC document",
			Schema: map[string]any{"$ref": "https://raw.githubusercontent.com/open-rpc/meta-schema/master/schema.json"}},
	}
}

// discover answers rpc.discover.
func (s *Server) discover(_ context.Context, params json.RawMessage) (any, error) {
	if err := Params(params, &struct{}{}); err != nil {
		return nil, err
	}
	return s.Document(), nil
}

// notFound is the error for a method nobody registered, naming the
// nearest ones: likely typos of it, else methods whose last part is the
// same ("status": gateway.status, ota.status).
func (s *Server) notFound(method string) *Error {
	s.mu.RLock()
	names := make([]string, 0, len(s.methods)+1)
	for n := range s.methods {
		names = append(names, n)
	}
	s.mu.RUnlock()
	names = append(names, Discover)
	sort.Strings(names)
	near := strict.Nearest(method, names, 3)
	if len(near) == 0 {
		last := method[strings.LastIndexByte(method, '.')+1:]
		for _, n := range names {
			if last != "" && n[strings.LastIndexByte(n, '.')+1:] == last && len(near) < 3 {
				near = append(near, n)
			}
		}
	}
	msg := fmt.Sprintf("method not found: %.64q", method)
	if len(near) > 0 {
		quoted := make([]string, len(near))
		for i, n := range near {
			quoted[i] = fmt.Sprintf("%q", n)
		}
		list := quoted[len(quoted)-1]
		if len(quoted) > 1 {
			list = strings.Join(quoted[:len(quoted)-1], ", ") + " or " + list
		}
		msg += " (did you mean " + list + "?)"
	}
	msg += "; " + Discover + " lists every method"
	return &Error{Code: CodeMethodNotFound, Message: msg, Data: map[string]any{"nearest": append([]string{}, near...)}}
}
