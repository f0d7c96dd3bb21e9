package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/appliance/mqttrpc"
	"github.com/osgate/osgate/internal/redact"
)

// Call is one JSON-RPC call to run on many gateways.
type Call struct {
	Method string
	Params json.RawMessage // nil: none
	// Timeout is how long each gateway has to answer, from the moment
	// its request was published (default 10s).
	Timeout time.Duration
	// Expires is how long the signed request stays valid on the gateways
	// (default Timeout + 1m, at most 1h): a gateway that gets it later
	// (its link was down) does not run it.
	Expires time.Duration
}

// Answer is one gateway's outcome of a Call.
type Answer struct {
	Gateway string `json:"gateway"`
	// Outcome is "ok", "error" (a JSON-RPC error) or "silent" (no answer
	// within the timeout).
	Outcome string          `json:"outcome"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *CallError      `json:"error,omitempty"`
	// Took is from publishing the request to the answer.
	Took time.Duration `json:"-"`
	MS   int64         `json:"ms"`
}

// CallError is a JSON-RPC error object.
type CallError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// maxAnswer bounds an answer read (the gateways' rpc.max_body default).
const maxAnswer = 1 << 20

// Run signs the call for each gateway (the operator key of the settings),
// publishes the requests at QoS 1 and collects the answers, each gateway
// with its own timeout. Answers come back in the order of gateways.
func (c *Conn) Run(ctx context.Context, gateways []string, call Call) ([]Answer, error) {
	if call.Timeout <= 0 {
		call.Timeout = 10 * time.Second
	}
	if call.Expires <= 0 {
		call.Expires = min(call.Timeout+time.Minute, time.Hour)
	}
	if call.Expires > time.Hour {
		return nil, fmt.Errorf("expires %s: at most 1h (the gateways refuse more)", call.Expires)
	}
	priv, err := c.s.operator()
	if err != nil {
		return nil, err
	}
	req := map[string]any{"jsonrpc": "2.0", "method": call.Method, "id": 1}
	if len(call.Params) > 0 {
		if !json.Valid(call.Params) {
			return nil, fmt.Errorf("params are not valid JSON: %s", redact.Clip(string(call.Params), 80))
		}
		req["params"] = call.Params
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	// One request id for all: a signature covers the gateway too, so the
	// same id cannot be replayed elsewhere; and one subscription takes
	// every answer.
	id := "fleet-" + randomHex(8)
	type pending struct {
		sent, due time.Time
		answer    *Answer
	}
	var mu sync.Mutex
	state := make(map[string]*pending, len(gateways))
	for _, g := range gateways {
		state[g] = &pending{}
	}
	arrived := make(chan struct{}, 1)
	handle := func(_ mqtt.Client, m mqtt.Message) {
		levels := strings.Split(m.Topic(), "/")
		if len(levels) != 4 || len(m.Payload()) > maxAnswer {
			return
		}
		now := time.Now()
		mu.Lock()
		p := state[levels[1]]
		if p == nil || p.answer != nil || p.sent.IsZero() {
			mu.Unlock()
			return
		}
		p.answer = decodeAnswer(levels[1], m.Payload())
		p.answer.Took = now.Sub(p.sent)
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
	}
	respTopic := mqttrpc.ResponseTopic("+", id)
	if err := c.subscribe(ctx, 1, handle, respTopic); err != nil {
		return nil, err
	}
	defer c.client.Unsubscribe(respTopic)
	expires := time.Now().Add(call.Expires)
	toks := make([]mqtt.Token, 0, len(gateways))
	for _, g := range gateways {
		payload, err := mqttrpc.Sign(priv, c.s.Signer, g, id, expires, body)
		if err != nil {
			return nil, fmt.Errorf("sign the request for %s: %w", g, err)
		}
		now := time.Now()
		mu.Lock()
		state[g].sent, state[g].due = now, now.Add(call.Timeout)
		mu.Unlock()
		toks = append(toks, c.client.Publish(mqttrpc.RequestTopic(g, id), 1, false, payload))
	}
	for i, t := range toks {
		if !t.WaitTimeout(call.Timeout) {
			return nil, fmt.Errorf("publish the request for %s: the cloud broker did not acknowledge it within %s", gateways[i], call.Timeout)
		}
		if err := t.Error(); err != nil {
			return nil, fmt.Errorf("publish the request for %s: %w (may the fleet user publish rpc/+/request/+?)", gateways[i], err)
		}
	}
	for {
		mu.Lock()
		var next time.Time
		for _, p := range state {
			if p.answer == nil && (next.IsZero() || p.due.Before(next)) {
				next = p.due
			}
		}
		mu.Unlock()
		if next.IsZero() || !time.Now().Before(next) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-arrived:
		case <-time.After(time.Until(next)):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]Answer, len(gateways))
	for i, g := range gateways {
		if a := state[g].answer; a != nil {
			out[i] = *a
		} else {
			out[i] = Answer{Gateway: g, Outcome: "silent", Took: call.Timeout}
		}
		out[i].MS = out[i].Took.Milliseconds()
	}
	return out, nil
}

// decodeAnswer reads a JSON-RPC response.
func decodeAnswer(gw string, payload []byte) *Answer {
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *CallError      `json:"error"`
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		return &Answer{Gateway: gw, Outcome: "error", Error: &CallError{Code: -32700, Message: "the answer is not a JSON-RPC response: " + err.Error()}}
	}
	if r.Error != nil {
		return &Answer{Gateway: gw, Outcome: "error", Error: r.Error}
	}
	if r.Result == nil {
		return &Answer{Gateway: gw, Outcome: "error", Error: &CallError{Code: -32700, Message: "the answer is not a JSON-RPC response: it has neither result nor error"}}
	}
	return &Answer{Gateway: gw, Outcome: "ok", Result: r.Result}
}

// WriteAnswers writes one line per gateway (its outcome, time and result
// or error, clipped) and the summary.
func WriteAnswers(w io.Writer, answers []Answer, notAsked []string, took time.Duration) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, a := range answers {
		text := ""
		switch {
		case a.Error != nil:
			text = fmt.Sprintf("%d %s", a.Error.Code, a.Error.Message)
		case a.Result != nil:
			text = string(a.Result)
		}
		fmt.Fprintf(tw, "%s\t%s\t%dms\t%s\n", a.Gateway, a.Outcome, a.MS, redact.Clip(text, 200))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, AnswerSummary(answers, notAsked, took))
	return err
}

// AnswerSummary is "20 asked: 19 ok, 0 errors, 1 silent (gw-7) in 1.2s;
// 3 offline, not asked".
func AnswerSummary(answers []Answer, notAsked []string, took time.Duration) string {
	n := map[string]int{}
	var silent []string
	for _, a := range answers {
		n[a.Outcome]++
		if a.Outcome == "silent" {
			silent = append(silent, a.Gateway)
		}
	}
	s := fmt.Sprintf("%d asked: %d ok, %d errors, %d silent", len(answers), n["ok"], n["error"], n["silent"])
	if len(silent) > 0 {
		s += " (" + list(silent, 10) + ")"
	}
	s += fmt.Sprintf(", in %s", took.Round(time.Millisecond))
	if len(notAsked) > 0 {
		s += fmt.Sprintf("; %d offline, not asked (%s)", len(notAsked), list(notAsked, 10))
	}
	return s
}

// list names up to max items, then how many more.
func list(items []string, max int) string {
	items = slices.Clone(items)
	slices.Sort(items)
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:max], ", ") + fmt.Sprintf(" and %d more", len(items)-max)
}
