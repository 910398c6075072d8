// Package agent is Porthole's sandbox: every server login runs in a
// `porthole agent` process of its own, which holds only that login's
// secrets, dies with the app and is restarted if it crashes, on the same
// local endpoints.
//
// # Login
//
// Login is what the app sees of a server login: connect and disconnect,
// forwards on assigned local endpoints (raw -L forwards, or HTTP-aware web
// forwards for apps in tabs: ForwardSpec.Web), Exec and Probe for
// discovery, stats, and events. NewLocalLogin runs one in this process (tests, `porthole
// forward`, and the agent itself); Supervisor.Start runs one in an agent
// process and returns a RemoteLogin. Both pass the same contract tests.
//
// # Protocol
//
// App and agent speak JSON-RPC 2.0 (github.com/sourcegraph/jsonrpc2) over
// the agent's stdin and stdout, framed like the Language Server Protocol
// ("Content-Length: N\r\n\r\n" + JSON), in both directions:
//
//	app → agent   hello{protocol}          → {protocol, pid}   first; another version: error, the agent exits (ExitProtocol)
//	              init{spec, secrets, hasPrompter} → {forwards}   once; the only way secrets travel
//	              connect, disconnect, setForwards{forwards}, setSecrets{secrets},
//	              exec{command, limit}, probe{host, port, request, limit, timeoutNs}, stats
//	agent → app   event{…}  (notification: state, stats, log, step)
//	              prompt/password, prompt/keyboardInteractive, prompt/unknownHost
//	both          $/cancelRequest{id}  (notification: the caller gave up)
//
// A malformed message (bad framing, bad JSON, not JSON-RPC, a call out of
// order) closes the connection: the agent exits with ExitProtocol, the
// Supervisor logs it and treats it like a crash. A call with unknown method
// or bad params is answered with an error. Errors keep their identity
// across the pipe (RemoteError; the fixed table in errors.go).
//
// # Process hygiene
//
// The Supervisor starts `<this program> agent` with a minimal environment
// (SSH_AUTH_SOCK, HOME, PATH, locale… plus PORTHOLE_AGENT=1 and the app's
// PID; never a secret), in a process group of its own. The agent exits at
// EOF on stdin. On Linux it also gets SIGKILL when the app dies
// (PR_SET_PDEATHSIG, set at exec and again by the agent, which then checks
// that its parent is still the app) and runs with PR_SET_NO_NEW_PRIVS; on
// other Unix systems it polls for a changed parent; on Windows the agents
// live in a job object that kills them when the app's handle closes.
//
// Every call to an agent has a deadline (SupervisorOptions.CallTimeout), so
// a crashed or hung agent never blocks the UI or another login. A crashed
// agent is restarted at once, then with backoff, with the same spec,
// secrets and forwards; five crashes within a minute stop it (the login is
// Failed, with the reason).
//
// # Measuring (make bench)
//
// Start an agent from the built binary and read RemoteLogin.Process():
//
//	sup := agent.NewSupervisor(agent.SupervisorOptions{Exe: "build/bin/porthole"})
//	l, err := sup.Start(ctx, agent.LoginSpec{ID: "bench", Host: "127.0.0.1", Port: 22,
//		SSHConfigPath: "none", AgentSocket: "none"}, agent.Secrets{}, nil)
//	pi := l.Process() // pi.ReadyIn: exec → answer to init; pi.PID: read /proc/PID/status VmRSS when idle
//
// Start does not connect, so no server is needed. By hand, the same
// handshake is two messages on `porthole agent`'s stdin (see hello and init
// above); it answers each with one message on stdout.
package agent
