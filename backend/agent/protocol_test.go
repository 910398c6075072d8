package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// frameOf encodes a request (id > 0) or notification (id 0) the way the
// app and the agent do.
func frameOf(t testing.TB, id uint64, method string, params any) []byte {
	t.Helper()
	req := &jsonrpc2.Request{Method: method, ID: jsonrpc2.ID{Num: id}, Notif: id == 0}
	if params != nil {
		if err := req.SetParams(params); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := (codec{}).WriteObject(&b, req); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// realMessages are the messages of a session, both directions.
func realMessages(t testing.TB) [][]byte {
	spec := LoginSpec{
		ID: "p1", Name: "alice@gpu1", Host: "gpu1.example.com", Port: 22, User: "alice",
		IdentityFiles: []string{"/home/alice/.ssh/id_ed25519"}, AuthMethods: []AuthMethod{AuthAgent, AuthKey, AuthPassword},
		ProxyJump: "bastion", KnownHostsFiles: []string{"/home/alice/.ssh/known_hosts"},
		Session: SessionSettings{IdleTimeout: -1, PoolSize: 4, StatsInterval: time.Second},
		Forwards: []ForwardSpec{
			{ID: "jupyter", Local: forwarder.LocalSpec{BindAddress: "127.0.0.2", BindPort: 8888, TargetHost: "127.0.0.1", TargetPort: 8888}},
			{ID: "lab", Web: &forwarder.WebSpec{BindAddress: "127.0.0.2", BindPort: 8889, TargetHost: "localhost", TargetPort: 8889, ServerName: "gpu1", AllowedFrameAncestors: forwarder.WailsFrameAncestors}},
		},
	}
	state := forwarder.Event{Session: "alice@gpu1", State: forwarder.StateReady, Prev: forwarder.StateConnecting, Reason: "connected", Time: time.Unix(1700000000, 0), RTT: 3 * time.Millisecond}
	stats := Stats{Session: forwarder.StateInfo{State: forwarder.StateReady}, Forwards: []ForwardInfo{{ID: "jupyter", Kind: ForwardLocal, Spec: spec.Forwards[0].Local, Addr: "127.0.0.2:8888", Stats: forwarder.StatsSnapshot{TotalConns: 3, BytesIn: 1200}}}}
	return [][]byte{
		frameOf(t, 1, methodHello, helloParams{Protocol: ProtocolVersion}),
		frameOf(t, 2, methodInit, initParams{Spec: spec, Secrets: Secrets{Password: "pw"}, HasPrompter: true}),
		frameOf(t, 3, methodConnect, nil),
		frameOf(t, 4, methodSetForwards, setForwardsParams{Forwards: spec.Forwards}),
		frameOf(t, 5, methodExec, execParams{Command: "sh -c 'ss -ltnp'", Limit: 1 << 20}),
		frameOf(t, 6, methodProbe, probeParams{Host: "127.0.0.1", Port: 8888, Request: []byte("GET / HTTP/1.1\r\n\r\n"), Limit: 65536, Timeout: time.Second}),
		frameOf(t, 7, methodStats, nil),
		frameOf(t, 8, methodSetSecrets, secretsParams{Secrets: Secrets{Passphrase: "pp"}}),
		frameOf(t, 9, methodDisconnect, nil),
		frameOf(t, 0, methodCancel, cancelParams{ID: jsonrpc2.ID{Num: 5}}),
		frameOf(t, 0, methodEvent, eventParams{Event: Event{Kind: EventState, Login: "p1", State: &state}}),
		frameOf(t, 0, methodEvent, eventParams{Event: Event{Kind: EventStats, Login: "p1", Stats: &stats}}),
		frameOf(t, 0, methodEvent, eventParams{Event: Event{Kind: EventLog, Login: "p1", Log: &LogLine{Level: slog.LevelInfo, Message: "connected", Attrs: []LogAttr{{"dest", "alice@gpu1:22"}}}}}),
		frameOf(t, 0, methodEvent, eventParams{Event: Event{Kind: EventStep, Login: "p1", Step: &StepEvent{Step: sshconn.StepAuthenticating, Name: "authenticating"}}}),
		frameOf(t, 10, methodPromptPassword, passwordPromptParams{Prompt: sshconn.PasswordPrompt{Kind: sshconn.PasswordLogin, User: "alice", Host: "gpu1:22", Attempt: 1}, Info: PromptInfo{SavedRejected: true}}),
		frameOf(t, 11, methodPromptKI, kiPromptParams{Prompt: sshconn.KIPrompt{User: "alice", Questions: []sshconn.KIQuestion{{Prompt: "Code: ", Echo: true}}}}),
		frameOf(t, 12, methodPromptHostKey, hostKeyPromptParams{Prompt: sshconn.HostKeyPrompt{Host: "gpu1", KeyType: "ssh-ed25519", Fingerprint: "SHA256:abc"}}),
	}
}

func TestReadFrame(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		want  string // body; "" with wantErr
		err   error
	}{
		{"plain", "Content-Length: 2\r\n\r\n{}", "{}", nil},
		{"with content type", "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: 2\r\n\r\n[]", "[]", nil},
		{"case and spaces", "content-length:   3  \r\n\r\nnul", "nul", nil},
		{"eof", "", "", io.EOF},
		{"no length", "X: 1\r\n\r\n{}", "", ErrProtocol},
		{"zero length", "Content-Length: 0\r\n\r\n", "", ErrProtocol},
		{"negative", "Content-Length: -1\r\n\r\n", "", ErrProtocol},
		{"too large", "Content-Length: 999999999\r\n\r\n", "", ErrProtocol},
		{"two lengths", "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", "", ErrProtocol},
		{"bare newline", "Content-Length: 2\n\n{}", "", ErrProtocol},
		{"not a header", "hello\r\n\r\n", "", ErrProtocol},
		{"truncated body", "Content-Length: 10\r\n\r\n{}", "", ErrProtocol},
		{"truncated header", "Content-Len", "", ErrProtocol},
		{"long header", "X: " + strings.Repeat("a", 2000) + "\r\n", "", ErrProtocol},
		{"many headers", strings.Repeat("X: 1\r\n", 20), "", ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := readFrame(bufio.NewReader(strings.NewReader(tc.input)))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("readFrame = %q, %v; want %v", body, err, tc.err)
				}
				return
			}
			if err != nil || string(body) != tc.want {
				t.Fatalf("readFrame = %q, %v; want %q", body, err, tc.want)
			}
		})
	}
}

func TestDecodeParams(t *testing.T) {
	raw := func(s string) *json.RawMessage { m := json.RawMessage(s); return &m }
	for _, tc := range []struct {
		name, method string
		params       *json.RawMessage
		err          error
	}{
		{"hello", methodHello, raw(`{"protocol":1}`), nil},
		{"hello without version", methodHello, nil, errBadParams},
		{"unknown method", "rm -rf", raw(`{}`), errUnknownMethod},
		{"unknown field", methodStats, raw(`{"x":1}`), errBadParams},
		{"wrong type", methodExec, raw(`{"command":5}`), errBadParams},
		{"empty command", methodExec, raw(`{"command":""}`), errBadParams},
		{"exec limit", methodExec, raw(`{"command":"ls","limit":-1}`), errBadParams},
		{"probe port", methodProbe, raw(`{"host":"h","port":0}`), errBadParams},
		{"probe limit", methodProbe, raw(`{"host":"h","port":1,"limit":99999999}`), errBadParams},
		{"null params", methodConnect, raw(`null`), nil},
		{"array params", methodConnect, raw(`[]`), errBadParams},
		{"init bad spec", methodInit, raw(`{"spec":{"id":"x"}}`), errBadParams},
		{"init bad auth", methodInit, raw(`{"spec":{"id":"x","host":"h","authMethods":["telnet"]}}`), errBadParams},
		{"forward twice", methodSetForwards, raw(`{"forwards":[{"id":"a","local":{"bindPort":1,"targetHost":"h","targetPort":1}},{"id":"a","local":{"bindPort":2,"targetHost":"h","targetPort":1}}]}`), errBadParams},
		{"event with two payloads", methodEvent, raw(`{"kind":"log","log":{"msg":"x","level":"INFO","time":"2024-01-01T00:00:00Z"},"step":{"step":1,"name":"x"},"time":"2024-01-01T00:00:00Z"}`), errBadParams},
		{"event bad kind", methodEvent, raw(`{"kind":"boom","time":"2024-01-01T00:00:00Z"}`), errBadParams},
		{"password kind", methodPromptPassword, raw(`{"prompt":{"Kind":7},"info":{}}`), errBadParams},
		{"openLink", methodOpenLink, raw(`{"forward":"app-8888","target":"/lab?token=x"}`), nil},
		{"openLink without forward", methodOpenLink, raw(`{"target":"/"}`), errBadParams},
		{"openLink without target", methodOpenLink, raw(`{"forward":"app-8888"}`), errBadParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeParams(tc.method, tc.params)
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("decodeParams = %v, want %v", err, tc.err)
			}
		})
	}
	// Every real message decodes.
	for _, m := range realMessages(t) {
		var req jsonrpc2.Request
		if err := (codec{}).ReadObject(bufio.NewReader(bytes.NewReader(m)), &req); err != nil {
			t.Fatalf("ReadObject(%q): %v", m, err)
		}
		if _, err := decodeParams(req.Method, req.Params); err != nil {
			t.Errorf("decodeParams(%s): %v", req.Method, err)
		}
	}
}

// FuzzDecodeMessage: the decoder of incoming messages (framing, JSON-RPC,
// params) never panics, and what it accepts survives a round trip.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range realMessages(f) {
		f.Add(m)
	}
	f.Add([]byte("Content-Length: 2\r\n\r\n{}"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("Content-Length: 14\r\n\r\n[{\"id\":1},{}]x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < 16; i++ {
			var req jsonrpc2.Request
			err := (codec{}).ReadObject(br, &req)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrProtocol) {
					t.Fatalf("ReadObject error %v wraps neither io.EOF nor ErrProtocol", err)
				}
				return
			}
			p, err := decodeParams(req.Method, req.Params)
			if err != nil {
				if !errors.Is(err, errUnknownMethod) && !errors.Is(err, errBadParams) {
					t.Fatalf("decodeParams error %v is neither unknown method nor bad params", err)
				}
				continue
			}
			again, err := json.Marshal(p)
			if err != nil {
				t.Fatalf("accepted params do not encode: %v", err)
			}
			m := json.RawMessage(again)
			if _, err := decodeParams(req.Method, &m); err != nil {
				t.Fatalf("accepted params %s do not decode again: %v", again, err)
			}
		}
	})
}

// fakeLogin is a Login that touches no network, for protocol tests.
type fakeLogin struct {
	mu    sync.Mutex
	calls []string
	spec  LoginSpec
	hub   *hub
}

func newFakeLogin(spec LoginSpec, _ Secrets, _ sshconn.Prompter, _ *slog.Logger) (Login, error) {
	return &fakeLogin{spec: spec, hub: newHub()}, nil
}

func (f *fakeLogin) note(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}
func (f *fakeLogin) Spec() LoginSpec                           { return f.spec }
func (f *fakeLogin) Connect(context.Context) error             { f.note("connect"); return nil }
func (f *fakeLogin) Disconnect(context.Context) error          { f.note("disconnect"); return nil }
func (f *fakeLogin) State() forwarder.StateInfo                { return forwarder.StateInfo{} }
func (f *fakeLogin) Subscribe(fn func(Event)) func()           { return f.hub.subscribe(fn) }
func (f *fakeLogin) SetSecrets(context.Context, Secrets) error { f.note("secrets"); return nil }
func (f *fakeLogin) Close() error                              { f.hub.close(); return nil }
func (f *fakeLogin) Stats(context.Context) (Stats, error) {
	f.note("stats")
	return Stats{}, nil
}
func (f *fakeLogin) SetForwards(_ context.Context, fw []ForwardSpec) ([]ForwardInfo, error) {
	f.note("forwards")
	return nil, nil
}
func (f *fakeLogin) Exec(context.Context, string) ([]byte, error) {
	f.note("exec")
	return []byte("out"), &ExecError{Status: 1}
}
func (f *fakeLogin) Probe(context.Context, string, int, []byte, int) ([]byte, error) {
	f.note("probe")
	return []byte("HTTP/1.1 200 OK\r\n"), nil
}
func (f *fakeLogin) OpenLink(context.Context, string, string) (string, error) {
	f.note("openLink")
	return "code", nil
}

// syncBuffer is a Writer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// runServe feeds input to an in-process agent (with a fake login) and
// returns serve's error and what it wrote.
func runServe(t testing.TB, input []byte, opts serveOptions, wantAnswers int) (error, []byte) {
	if opts.newLogin == nil {
		opts.newLogin = newFakeLogin
	}
	inR, inW := io.Pipe()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- serve(context.Background(), inR, out, discardLogger(), opts) }()
	go func() {
		_, _ = inW.Write(input)
		// Let the answers go out before EOF ends the session.
		waitUntil(5*time.Second, func() bool { return countFrames(out.Bytes()) >= wantAnswers })
		_ = inW.Close()
	}()
	select {
	case err := <-done:
		return err, out.Bytes()
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not return after its input ended")
	}
	return nil, nil
}

// countFrames counts the complete frames in out.
func countFrames(out []byte) int {
	br := bufio.NewReader(bytes.NewReader(out))
	n := 0
	for {
		if _, err := readFrame(br); err != nil {
			return n
		}
		n++
	}
}

// answers parses what the agent wrote; every frame must be well-formed.
func answers(t testing.TB, out []byte) []map[string]json.RawMessage {
	br := bufio.NewReader(bytes.NewReader(out))
	var msgs []map[string]json.RawMessage
	for {
		body, err := readFrame(br)
		if errors.Is(err, io.EOF) {
			return msgs
		}
		if err != nil {
			t.Fatalf("the agent wrote a malformed frame: %v", err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("the agent wrote bad JSON %q: %v", body, err)
		}
		if string(m["jsonrpc"]) != `"2.0"` {
			t.Fatalf("the agent wrote a non JSON-RPC 2.0 message %q", body)
		}
		msgs = append(msgs, m)
	}
}

func TestServe(t *testing.T) {
	msgs := realMessages(t)
	hello, init := msgs[0], msgs[1]
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name    string
		input   []byte
		opts    serveOptions
		err     error  // serve's result
		answer  string // a substring of the answers
		answers int    // how many answers at least
	}{
		{"a whole session", cat(msgs[:9]...), serveOptions{}, nil, `"forwards":null`, 9},
		{"eof before hello", nil, serveOptions{}, nil, "", 0},
		{"mismatch", hello, serveOptions{protocol: ProtocolVersion + 1}, ErrProtocolMismatch, `"code":-32001`, 1},
		{"call before hello", msgs[6], serveOptions{}, ErrProtocol, `"code":-32002`, 1},
		{"init twice", cat(hello, init, init), serveOptions{}, ErrProtocol, `"code":-32002`, 3},
		{"unknown method", cat(hello, init, frameOf(t, 3, "shutdown-now", nil)), serveOptions{}, nil, `"code":-32601`, 3},
		{"bad params", cat(hello, init, frameOf(t, 3, methodExec, map[string]int{"command": 1})), serveOptions{}, nil, `"code":-32602`, 3},
		{"exec error keeps stdout", cat(hello, init, msgs[4]), serveOptions{}, nil, `"status":1`, 3},
		{"garbage after init", cat(hello, init, []byte("Content-Length: 3\r\n\r\n{x}")), serveOptions{}, ErrProtocol, "", 2},
		{"a response nobody asked for", cat(hello, []byte("Content-Length: 38\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":1}  ")), serveOptions{}, nil, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, out := runServe(t, tc.input, tc.opts, tc.answers)
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("serve = %v, want %v", err, tc.err)
			}
			got := answers(t, out)
			if len(got) < tc.answers {
				t.Fatalf("%d answers, want at least %d: %s", len(got), tc.answers, out)
			}
			if !bytes.Contains(out, []byte(tc.answer)) {
				t.Fatalf("answers do not contain %s: %s", tc.answer, out)
			}
		})
	}
}

// FuzzServe: whatever arrives on its stdin, the agent answers with
// well-formed messages and returns once the input ends; it never panics.
// (The login is a fake: fuzzed input must not reach the network.)
func FuzzServe(f *testing.F) {
	msgs := realMessages(f)
	f.Add(bytes.Join(msgs[:9], nil))
	f.Add(bytes.Join(msgs[:2], nil))
	f.Add(append(bytes.Clone(msgs[0]), "Content-Length: 3\r\n\r\n{x}"...))
	for _, m := range msgs {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err, out := runServe(t, data, serveOptions{}, 0)
		if err != nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrProtocolMismatch) {
			t.Fatalf("serve = %v, want nil or a protocol error", err)
		}
		answers(t, out)
	})
}
