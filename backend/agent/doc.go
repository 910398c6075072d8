// Package agent is Porthole's sandbox: every server login runs in a
// `porthole agent` process of its own, which holds only that login's
// secrets, dies with the app and is restarted if it crashes, on the same
// local endpoints. On Linux the process is confined (seccomp, Landlock,
// no_new_privs) to what its login needs: see Sandbox.
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
//	              exec{command, limit}, probe{host, port, request, limit, timeoutNs}, stats, ping (health check → null), prewarm (→ null),
//	              openLink{forward, target} → {code}   a web forward's one-time link; the target (it may hold a token) is never logged
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
// (PATH, USER, locale… plus PORTHOLE_AGENT=1 and the app's PID; never a
// secret; SSH_AUTH_SOCK only for a login that may use ssh-agent through it;
// no HOME or XDG_RUNTIME_DIR: the spec carries the home directory), in a
// process group of its own. The agent exits at EOF on stdin. On Linux it
// also gets SIGKILL when the app dies (PR_SET_PDEATHSIG, set at exec and
// again by the agent, which then checks that its parent is still the app)
// and is sandboxed (below); on other Unix systems it polls for a changed
// parent; on Windows the agents live in a job object that kills them when
// the app's handle closes.
//
// # Sandbox (Linux)
//
// Before it reads a message, the agent sets PR_SET_NO_NEW_PRIVS on every
// thread and installs a seccomp filter on every thread (TSYNC) that answers
// EPERM to execve/execveat, ptrace, process_vm_readv/writev and a few
// kernel interfaces a login never uses (namespaces, mounts, modules,
// keyrings, BPF, perf, userfaultfd, kexec). Porthole never runs commands
// (sshconn refuses ProxyCommand), so no login needs exec. On init, before
// the login exists, Landlock (best effort: what the kernel supports) limits
// the file system to what the login's spec resolves to: read-only its
// ssh_config files and their Includes, identity files, known_hosts files
// and the system files name resolution reads; read and append (no
// truncation, no new files) the known_hosts file each hop saves new host
// keys to (created empty first if missing); nothing else. Landlock also
// keeps the agent from signalling processes outside its sandbox. A kernel
// without Landlock or seccomp is logged ("landlock unavailable: …") and the
// agent runs without that layer.
//
// A compromised agent can still use the login's SSH connection and the
// secrets it was handed, connect anywhere on the network, listen on local
// ports, read the files above and rewrite the known_hosts file it saves
// to. It cannot read other files in $HOME (other keys, shell history,
// browser data), create or change other files, run programs, ptrace or
// read the memory of other processes, or gain privileges (setuid binaries
// and file capabilities do nothing under no_new_privs). The policy is fixed
// when the agent starts: a file the ssh_config names later, or a config
// file replaced by rename, is readable after the agent is restarted.
//
// Every call to an agent has a deadline (SupervisorOptions.CallTimeout), so
// a crashed or hung agent never blocks the UI or another login. A crashed
// agent is restarted at once, then with backoff, with the same spec,
// secrets and forwards; five crashes within a minute stop it (the login is
// Failed, with the reason). A hung agent (stopped, deadlocked) is found by a
// ping every SupervisorOptions.HealthInterval: after HealthMisses pings in
// a row go unanswered (10 s by default) it is killed and restarted the same
// way, and the events say "the agent stopped answering for 10 s; restarted".
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
