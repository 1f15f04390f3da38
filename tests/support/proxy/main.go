// Command proxy is the recording, fault-injecting HTTP proxy of the benchmark
// and the fault tests. One instance sits in front of one server (the Consul
// agent, or the moto server that plays AWS) on a loopback port. It counts every
// request by operation, so the numbers come from the wire and not from the
// code under test, and it can inject faults on the requests that match a rule.
//
// Standard library only. Control endpoints (never forwarded):
//
//	GET    /_proxy/stats   counts: {requests, reads, writes, injected, held, holding, ops: {op: {...}}};
//	                       each op also has first_ms, last_ms, busy_ms (since the reset)
//	POST   /_proxy/reset   zero the counts and the clock (the fault rules stay)
//	PUT    /_proxy/faults  replace the fault rules with a JSON list (see Rule)
//	DELETE /_proxy/faults  remove every fault rule
//	GET    /_proxy/log     the transcript: every request that reached the proxy, in
//	                       arrival order, as a JSON list of Entry (see Entry)
//	DELETE /_proxy/log     clear the transcript
//
// The transcript never holds a header (so never X-Consul-Token or an AWS
// signature) and never a PutParameter value (extension data holds private keys):
// its Value is recorded as "<redacted>". It keeps at most -log-max entries; the
// ones past that are counted in the X-Proxy-Log-Dropped header of GET /_proxy/log.
//
// Replacing or removing the rules releases every request a "hold" rule holds.
//
// A request the server gives no answer to (refused, reset) ends with a reset of
// the client's connection too, counted with status "unreachable".
//
// Operations: for AWS, the API action (GetResources, GetFunction, ListFunctions,
// PutParameter...) from X-Amz-Target, the Lambda REST path or the query-protocol
// Action; for Consul, "METHOD /path" with names replaced by ":name"
// ("PUT /v1/config", "GET /v1/catalog/node-services/:node").
//
// Usage: proxy -kind consul|aws -target http://127.0.0.1:8500 [-listen 127.0.0.1:0] [-log-max 20000]
// It prints one line, the address it listens on, then serves until killed.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Rule injects a fault on the requests whose operation matches Match.
type Rule struct {
	// Match is a regular expression on the operation ("GetResources",
	// "PUT /v1/catalog/register", "^GET "). Empty matches everything.
	Match string `json:"match"`
	// URI and Body, when set, are regular expressions the raw request URI
	// (path?query, as received) and the request body must match as well
	// ("cas=0", `"Name":"orders"`): a fault on one service's request.
	URI  string `json:"uri,omitempty"`
	Body string `json:"body,omitempty"`
	// MinBody, when set, limits the rule to request bodies of at least that
	// many bytes: a server's request size limit (Consul's txn_max_req_len).
	MinBody int `json:"min_body,omitempty"`
	// Action: "status" (answer with Status, no forwarding), "reset" (close the
	// connection with a TCP RST before answering), "delay" (wait DelayMs, then
	// forward), "drop" (forward, then reset instead of answering: the request
	// may have been applied, the client never learns), "side" (send Side to the
	// target first, then forward: another writer acting just before ours), "hold"
	// (wait until the rules are replaced or removed, then forward: a test acts
	// while the client's next requests wait, e.g. kills a server after exactly
	// After writes; "holding" in the stats counts the requests waiting).
	Action string `json:"action"`
	// Status for "status" (and "answer"): 429 answers as a throttling error (AWS: the
	// protocol's throttling exception), anything else as a server error.
	Status int `json:"status,omitempty"`
	// Code and Message, for an AWS "status" answer, replace the error code
	// and message the protocol would carry ("TooManyRequestsException",
	// "Rate exceeded"): the spellings AWS services really use differ.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	DelayMs int    `json:"delay_ms,omitempty"`
	// Headers are added to a "status" or "answer" answer ({"Retry-After": "1"}).
	Headers map[string]string `json:"headers,omitempty"`
	// File and Size, for "answer": answer Status (default 200; no forwarding) with the bytes of
	// File (a crafted answer, e.g. 100,000 services), else with Size bytes (blanks
	// then "{}"); Chunked leaves out Content-Length (the body only grows).
	File    string `json:"file,omitempty"`
	Size    int    `json:"size,omitempty"`
	Chunked bool   `json:"chunked,omitempty"`
	// Side is the request "side" sends to the target before forwarding.
	Side *SideRequest `json:"side,omitempty"`
	// After skips the first After matching requests; Times bounds the number of
	// injections (0: no bound); Every injects on every Every-th match (default 1).
	After int `json:"after,omitempty"`
	Times int `json:"times,omitempty"`
	Every int `json:"every,omitempty"`

	re       *regexp.Regexp
	uriRe    *regexp.Regexp
	bodyRe   *regexp.Regexp
	seen     int
	injected int
}

// SideRequest is a request of another client, sent by a "side" rule straight
// to the target (its answer is logged on stderr, not returned).
type SideRequest struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"` // with its query, e.g. "/v1/config"
	Body    json.RawMessage   `json:"body,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// Entry is one request of the transcript.
type Entry struct {
	Method string `json:"method"`
	// Path as received (still percent-encoded), without the query.
	Path string `json:"path"`
	// Query: each parameter decoded, a string (a list when repeated).
	Query map[string]any `json:"query"`
	// Body: parsed JSON, the decoded form of a form-encoded body, else the text;
	// null when empty.
	Body any    `json:"body"`
	Op   string `json:"op"`
	// Fault: what a rule did to the request ("status 503", "reset", "drop",
	// "delay", "side"), absent when it was forwarded untouched.
	Fault string `json:"fault,omitempty"`
}

type opStats struct {
	Count    int            `json:"count"`
	Write    bool           `json:"write"`
	Status   map[string]int `json:"status"`
	Injected int            `json:"injected"`
	// Times in ms since the last reset: the first request's arrival, the last
	// answer's end, and the sum of the requests' durations (the wave of one
	// operation: LastMs - FirstMs).
	FirstMs float64 `json:"first_ms"`
	LastMs  float64 `json:"last_ms"`
	BusyMs  float64 `json:"busy_ms"`
}

type proxy struct {
	kind   string // "consul" or "aws"
	target *url.URL
	rp     *httputil.ReverseProxy

	mu       sync.Mutex
	ops      map[string]*opStats
	requests int
	reads    int
	writes   int
	injected int
	held     int // requests held by a "hold" rule, ever (until a reset)
	holding  int // requests held by the current rules (0 once they are replaced)
	rules    []*Rule

	transcript []Entry
	logMax     int
	logDropped int
	since      time.Time // the last reset
	// release is closed when the rules are replaced or removed; generation counts
	// the replacements (a request let go by one no longer counts as holding).
	release    chan struct{}
	generation int
}

// maxHold bounds a hold, should a test never release it.
const maxHold = 5 * time.Minute

var (
	lambdaFunctions = regexp.MustCompile(`^/20[0-9-]+/functions/?$`)
	lambdaFunction  = regexp.MustCompile(`^/20[0-9-]+/functions/[^/]+/?$`)
	lambdaTags      = regexp.MustCompile(`^/20[0-9-]+/tags/`)
	lambdaSub       = regexp.MustCompile(`^/20[0-9-]+/functions/[^/]+/([a-z-]+)`)
	lambdaAlias     = regexp.MustCompile(`^/20[0-9-]+/functions/[^/]+/aliases/[^/]+/?$`)
	lambdaAliases   = regexp.MustCompile(`^/20[0-9-]+/functions/[^/]+/aliases/?$`)
)

// awsWrites are the AWS actions that change state.
var awsWrites = map[string]bool{
	"PutParameter": true, "DeleteParameter": true, "DeleteParameters": true,
	"TagResource": true, "UntagResource": true, "CreateFunction": true, "DeleteFunction": true,
	"TagResources": true, "UntagResources": true,
}

// operation names a request; body is only read for the AWS query protocol.
func (p *proxy) operation(r *http.Request, body []byte) (string, bool) {
	if p.kind == "consul" {
		return consulOp(r.Method, r.URL.Path), r.Method != http.MethodGet && r.Method != http.MethodHead
	}
	op := awsOp(r, body)
	return op, awsWrites[op]
}

func awsOp(r *http.Request, body []byte) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		if i := strings.LastIndexByte(t, '.'); i >= 0 {
			return t[i+1:]
		}
		return t
	}
	path := r.URL.Path
	switch {
	case lambdaFunctions.MatchString(path):
		if r.Method == http.MethodPost {
			return "CreateFunction"
		}
		return "ListFunctions"
	case lambdaFunction.MatchString(path):
		switch r.Method {
		case http.MethodGet:
			return "GetFunction"
		case http.MethodDelete:
			return "DeleteFunction"
		}
	case lambdaTags.MatchString(path):
		switch r.Method {
		case http.MethodGet:
			return "ListTags"
		case http.MethodPost:
			return "TagResource"
		case http.MethodDelete:
			return "UntagResource"
		}
	case lambdaAlias.MatchString(path) && r.Method == http.MethodGet:
		return "GetAlias"
	case lambdaAliases.MatchString(path) && r.Method == http.MethodGet:
		return "ListAliases"
	case lambdaSub.MatchString(path):
		return "Lambda " + r.Method + " " + lambdaSub.FindStringSubmatch(path)[1]
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
			return v.Get("Action")
		}
	}
	return r.Method + " " + path
}

// consulOp keeps the API route and replaces names with placeholders.
func consulOp(method, path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	keep := len(parts)
	name := ":name"
	switch {
	case len(parts) >= 3 && parts[1] == "catalog" && (parts[2] == "node-services" || parts[2] == "node" || parts[2] == "service"):
		keep, name = 3, ":"+strings.TrimSuffix(parts[2], "s")
		if parts[2] == "node-services" {
			name = ":node"
		}
	case len(parts) >= 3 && parts[1] == "config":
		// /v1/config/:kind[/:name]
		if len(parts) >= 4 {
			keep = 3
		}
	case len(parts) >= 5 && parts[1] == "agent" && parts[2] == "connect" && parts[4] == "leaf":
		keep, name = 5, ":service"
	case len(parts) >= 3 && (parts[1] == "kv" || parts[1] == "health"):
		keep = 3
	}
	out := "/" + strings.Join(parts[:keep], "/")
	if keep < len(parts) {
		out += "/" + name
	}
	return method + " " + out
}

// formValues flattens decoded query or form values: one value as a string,
// repeated ones as a list.
func formValues(v url.Values) map[string]any {
	out := make(map[string]any, len(v))
	for k, vs := range v {
		if len(vs) == 1 {
			out[k] = vs[0]
		} else {
			out[k] = vs
		}
	}
	return out
}

// entry is the transcript's record of a request (no header, no secret).
func (p *proxy) entry(r *http.Request, body []byte, op string) Entry {
	path, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		query = url.Values{"<unparsed>": {rawQuery}}
	}
	e := Entry{Method: r.Method, Path: path, Query: formValues(query), Op: op}
	if len(body) == 0 {
		return e
	}
	var parsed any
	if json.Unmarshal(body, &parsed) == nil {
		e.Body = parsed
	} else if form, err := url.ParseQuery(string(body)); err == nil &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		e.Body = formValues(form)
	} else {
		e.Body = string(body)
	}
	if p.kind == "aws" && op == "PutParameter" {
		switch b := e.Body.(type) {
		case map[string]any:
			if _, ok := b["Value"]; ok {
				b["Value"] = "<redacted>"
			}
		case string:
			e.Body = "<redacted>" // not JSON: never keep what may be a key
		}
	}
	return e
}

// pick returns the rule to apply to this request, if any: the first rule that
// matches and is due to inject.
func (p *proxy) pick(op, uri string, body []byte) *Rule {
	for _, rule := range p.rules {
		if rule.re != nil && !rule.re.MatchString(op) {
			continue
		}
		if rule.uriRe != nil && !rule.uriRe.MatchString(uri) {
			continue
		}
		if rule.bodyRe != nil && !rule.bodyRe.Match(body) {
			continue
		}
		if len(body) < rule.MinBody {
			continue
		}
		rule.seen++
		if rule.seen <= rule.After {
			continue
		}
		if rule.Times > 0 && rule.injected >= rule.Times {
			continue
		}
		every := rule.Every
		if every <= 0 {
			every = 1
		}
		if (rule.seen-rule.After-1)%every != 0 {
			continue
		}
		rule.injected++
		return rule
	}
	return nil
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_proxy/") {
		p.control(w, r)
		return
	}
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "proxy: reading the request: "+err.Error(), http.StatusBadGateway)
			return
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	op, write := p.operation(r, body)
	entry := p.entry(r, body, op)
	start := time.Now()

	p.mu.Lock()
	p.requests++
	if write {
		p.writes++
	} else {
		p.reads++
	}
	st := p.ops[op]
	if st == nil {
		st = &opStats{Write: write, Status: map[string]int{}, FirstMs: ms(start.Sub(p.since))}
		p.ops[op] = st
	}
	st.Count++
	rule := p.pick(op, r.RequestURI, body)
	var action string
	var rcopy Rule
	release, generation := p.release, p.generation
	if rule != nil {
		rcopy = *rule
		action = rule.Action
		switch action {
		case "delay", "side":
		case "hold":
			p.held++
			p.holding++
		default:
			p.injected++
			st.Injected++
		}
		entry.Fault = action
		if action == "status" {
			entry.Fault = fmt.Sprint("status ", rule.Status)
		}
	}
	if len(p.transcript) < p.logMax {
		p.transcript = append(p.transcript, entry)
	} else {
		p.logDropped++
	}
	p.mu.Unlock()

	switch action {
	case "delay":
		time.Sleep(time.Duration(rcopy.DelayMs) * time.Millisecond)
	case "side":
		p.side(rcopy.Side)
	case "hold":
		select {
		case <-release:
		case <-time.After(maxHold):
		}
		p.mu.Lock()
		if p.generation == generation {
			p.holding-- // not let go: held past maxHold
		}
		p.mu.Unlock()
	case "answer":
		p.record(op, "answer", start)
		answer(w, &rcopy)
		return
	case "reset":
		p.record(op, "reset", start)
		resetConn(w)
		return
	case "status":
		p.record(op, fmt.Sprint(rcopy.Status), start)
		for k, v := range rcopy.Headers {
			w.Header().Set(k, v)
		}
		p.fail(w, r, &rcopy)
		return
	case "drop":
		rec := &discard{header: http.Header{}}
		p.rp.ServeHTTP(rec, r)
		p.record(op, "drop", start)
		resetConn(w)
		return
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	p.rp.ServeHTTP(sw, r)
	if sw.unreachable {
		p.record(op, "unreachable", start)
		return
	}
	p.record(op, fmt.Sprint(sw.status), start)
}

func (p *proxy) record(op, status string, start time.Time) {
	end := time.Now()
	p.mu.Lock()
	if st := p.ops[op]; st != nil {
		st.Status[status]++
		st.BusyMs += ms(end.Sub(start))
		if last := ms(end.Sub(p.since)); last > st.LastMs {
			st.LastMs = last
		}
	}
	p.mu.Unlock()
}

// answer writes a crafted 200: the rule's file, or Size bytes of JSON padding,
// with or without Content-Length.
func answer(w http.ResponseWriter, rule *Rule) {
	w.Header().Set("Content-Type", "application/json")
	for k, v := range rule.Headers {
		w.Header().Set(k, v)
	}
	status := http.StatusOK
	if rule.Status != 0 {
		status = rule.Status
	}
	if rule.File != "" {
		f, err := os.Open(rule.File)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && !rule.Chunked {
			w.Header().Set("Content-Length", fmt.Sprint(st.Size()))
		}
		w.WriteHeader(status)
		_, _ = io.Copy(w, f)
		return
	}
	size := rule.Size
	if size < 2 {
		size = 2
	}
	if !rule.Chunked {
		w.Header().Set("Content-Length", fmt.Sprint(size))
	}
	w.WriteHeader(status)
	blank := bytes.Repeat([]byte(" "), 1<<16)
	for left := size - 2; left > 0; {
		n := min(left, len(blank))
		if _, err := w.Write(blank[:n]); err != nil {
			return // the client stopped reading: what the test wants
		}
		left -= n
	}
	_, _ = w.Write([]byte("{}"))
}

// side sends another client's request straight to the target and waits for
// its answer (logged on stderr).
func (p *proxy) side(s *SideRequest) {
	if s == nil {
		return
	}
	var body io.Reader
	if len(s.Body) > 0 {
		body = bytes.NewReader(s.Body)
	}
	req, err := http.NewRequest(s.Method, strings.TrimSuffix(p.target.String(), "/")+s.Path, body)
	if err != nil {
		log.Printf("side request: %v", err)
		return
	}
	if len(s.Body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range s.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Printf("side request %s %s: %v", s.Method, s.Path, err)
		return
	}
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	_ = resp.Body.Close()
	log.Printf("side request %s %s: %d %s", s.Method, s.Path, resp.StatusCode, bytes.TrimSpace(out))
}
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fail answers like the real server would for a throttle or a server error.
func (p *proxy) fail(w http.ResponseWriter, r *http.Request, rule *Rule) {
	status := rule.Status
	if p.kind == "consul" {
		if status == http.StatusTooManyRequests {
			http.Error(w, "rate limit exceeded (injected by the bench proxy)", status)
		} else {
			http.Error(w, "injected fault (bench proxy)", status)
		}
		return
	}
	throttle := status == http.StatusTooManyRequests
	message := "injected by the bench proxy"
	if rule.Message != "" {
		message = rule.Message
	}
	// pick: the rule's code, else the protocol's throttling or server error
	// (a throttle is answered 400 where the protocol does so).
	pick := func(server, throttled string, throttledStatus int) (string, int) {
		switch {
		case rule.Code != "":
			return rule.Code, status
		case throttle:
			return throttled, throttledStatus
		}
		return server, status
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" { // AWS JSON 1.1 protocol
		code, st := pick("InternalServerError", "ThrottlingException", http.StatusBadRequest)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(st)
		fmt.Fprintf(w, `{"__type":%q,"message":%q}`, code, message)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/20") { // Lambda REST-JSON
		code, st := pick("ServiceException", "TooManyRequestsException", status)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", code)
		w.WriteHeader(st)
		fmt.Fprintf(w, `{"Type":"Service","message":%q}`, message)
		return
	}
	code, st := pick("InternalFailure", "Throttling", http.StatusBadRequest) // query protocol (STS)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(st)
	fmt.Fprintf(w, `<ErrorResponse><Error><Type>Receiver</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>bench</RequestId></ErrorResponse>`, code, html.EscapeString(message))
}

// letGo releases every held request (p.mu held).
func (p *proxy) letGo() {
	close(p.release)
	p.release = make(chan struct{})
	p.generation++
	p.holding = 0
}

// resetConn closes the client connection with a TCP RST, no HTTP answer.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

func (p *proxy) control(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/_proxy/stats" && r.Method == http.MethodGet:
		p.mu.Lock()
		out := map[string]any{
			"kind": p.kind, "requests": p.requests, "reads": p.reads, "writes": p.writes,
			"injected": p.injected, "held": p.held, "holding": p.holding, "ops": p.ops,
		}
		data, err := json.Marshal(out)
		p.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(data)
	case r.URL.Path == "/_proxy/reset" && r.Method == http.MethodPost:
		p.mu.Lock()
		p.ops = map[string]*opStats{}
		p.requests, p.reads, p.writes, p.injected, p.held = 0, 0, 0, 0, 0
		p.since = time.Now()
		p.mu.Unlock()
		_, _ = w.Write([]byte(`{"ok":true}`))
	case r.URL.Path == "/_proxy/faults" && r.Method == http.MethodPut:
		var rules []*Rule
		if err := json.NewDecoder(r.Body).Decode(&rules); err != nil {
			http.Error(w, "bad rules: "+err.Error(), http.StatusBadRequest)
			return
		}
		for _, rule := range rules {
			switch rule.Action {
			case "status", "reset", "delay", "drop", "hold", "answer":
			case "side":
				if rule.Side == nil || rule.Side.Method == "" || !strings.HasPrefix(rule.Side.Path, "/") {
					http.Error(w, "a side rule needs side.method and side.path", http.StatusBadRequest)
					return
				}
			default:
				http.Error(w, "bad action "+rule.Action, http.StatusBadRequest)
				return
			}
			for _, m := range []struct {
				expr string
				re   **regexp.Regexp
			}{{rule.URI, &rule.uriRe}, {rule.Body, &rule.bodyRe}} {
				if m.expr == "" {
					continue
				}
				re, err := regexp.Compile(m.expr)
				if err != nil {
					http.Error(w, "bad uri/body: "+err.Error(), http.StatusBadRequest)
					return
				}
				*m.re = re
			}
			if rule.Action == "status" && rule.Status == 0 {
				rule.Status = http.StatusInternalServerError
			}
			if rule.Match != "" {
				re, err := regexp.Compile(rule.Match)
				if err != nil {
					http.Error(w, "bad match: "+err.Error(), http.StatusBadRequest)
					return
				}
				rule.re = re
			}
		}
		p.mu.Lock()
		p.rules = rules
		p.letGo()
		p.mu.Unlock()
		_, _ = w.Write([]byte(`{"ok":true}`))
	case r.URL.Path == "/_proxy/faults" && r.Method == http.MethodDelete:
		p.mu.Lock()
		p.rules = nil
		p.letGo()
		p.mu.Unlock()
		_, _ = w.Write([]byte(`{"ok":true}`))
	case r.URL.Path == "/_proxy/log" && r.Method == http.MethodGet:
		p.mu.Lock()
		data, err := json.Marshal(append([]Entry{}, p.transcript...))
		dropped := p.logDropped
		p.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Proxy-Log-Dropped", fmt.Sprint(dropped))
		_, _ = w.Write(data)
	case r.URL.Path == "/_proxy/log" && r.Method == http.MethodDelete:
		p.mu.Lock()
		p.transcript, p.logDropped = nil, 0
		p.mu.Unlock()
		_, _ = w.Write([]byte(`{"ok":true}`))
	default:
		http.Error(w, "unknown control request", http.StatusNotFound)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status      int
	unreachable bool // the server gave no answer: the client's connection was reset
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func main() {
	kind := flag.String("kind", "consul", "consul or aws")
	target := flag.String("target", "", "the server to forward to, e.g. http://127.0.0.1:8500")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	logMax := flag.Int("log-max", 20000, "the most requests the transcript keeps (GET /_proxy/log)")
	flag.Parse()
	if *kind != "consul" && *kind != "aws" {
		log.Fatalf("-kind must be consul or aws")
	}
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		log.Fatalf("-target must be a URL: %q", *target)
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !(host == "127.0.0.1" || host == "localhost" || host == "::1") {
		log.Fatalf("-listen must be a loopback address: %q", *listen)
	}
	p := &proxy{kind: *kind, target: u, ops: map[string]*opStats{}, logMax: *logMax, since: time.Now(), release: make(chan struct{})}
	transport := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // AWS signatures and moto's routing see the original host
		},
		Transport: transport,
		ErrorLog:  log.New(io.Discard, "", 0),
		// The server gave no answer (refused, reset, closed): without the proxy the
		// client would have had no answer either, so it gets a reset, not a 502.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if sw, ok := w.(*statusWriter); ok {
				sw.unreachable = true
				resetConn(sw.ResponseWriter)
				return
			}
			http.Error(w, "bench proxy: upstream unreachable: "+err.Error(), http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	_ = os.Stdout.Sync()
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	log.Fatal(srv.Serve(ln))
}
