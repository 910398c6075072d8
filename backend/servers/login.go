package servers

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// StartLoginFunc starts one server login: agent.Supervisor.Start in the app
// (a sandboxed `porthole agent` process), or LocalLogins for tests. Both
// are agent.Login, the one login interface.
type StartLoginFunc func(ctx context.Context, spec agent.LoginSpec, secrets agent.Secrets, prompter sshconn.Prompter) (agent.Login, error)

// SupervisorLogins starts every login in an agent process of sup.
func SupervisorLogins(sup *agent.Supervisor) StartLoginFunc {
	return func(ctx context.Context, spec agent.LoginSpec, secrets agent.Secrets, prompter sshconn.Prompter) (agent.Login, error) {
		return sup.Start(ctx, spec, secrets, prompter)
	}
}

// LocalLogins runs every login in this process (agent.LocalLogin), logging
// to log; for tests and for tools without agents.
func LocalLogins(log *slog.Logger) StartLoginFunc {
	return func(_ context.Context, spec agent.LoginSpec, secrets agent.Secrets, prompter sshconn.Prompter) (agent.Login, error) {
		return agent.NewLocalLogin(spec, secrets, prompter, log)
	}
}

// SSHBase is what every login's ssh_config resolution and dial share.
type SSHBase struct {
	HomeDir          string // "" = the user's home
	ConfigPath       string // "" = ~/.ssh/config; "none" = no user config
	SystemConfigPath string // "" = /etc/ssh/ssh_config (when ConfigPath is ""); "none" = none
	AgentSocket      string // "" = $SSH_AUTH_SOCK / IdentityAgent; "none" = no agent
	KnownHostsFiles  []string
}

// runnerEnv is what one server's runner needs from the Manager.
type runnerEnv struct {
	log            *slog.Logger // writes to the server's log (and the app log)
	prompter       prompts.LoginEnv
	ssh            SSHBase
	onStep         func(step sshconn.Step, detail string)
	onEvent        func(forwarder.Event)
	onStats        func(agent.Stats)      // the agent's EventStats (about 1/s while counters change)
	onAgent        func(agent.AgentEvent) // events of the login's agent process
	connectTimeout time.Duration          // one attempt, every question included
}

// LoginSpec maps a profile to the login's spec (no secrets in it). It is
// the one place a profile becomes connection options: the agent resolves
// the spec against ssh_config (agent.LoginSpec.Resolve) at every dial.
//
// A profile linked to an ~/.ssh/config alias is resolved from the alias
// alone, so edits to the config apply at every connection. Otherwise the
// profile's fields are explicit options (like ssh -p/-l/-i/-J) over what
// ssh_config says for the host, as `ssh host` would do. An empty Auth list
// leaves the method order to ssh_config (PreferredAuthentications, else
// OpenSSH's default), as `ssh` does.
func LoginSpec(p profiles.Profile, base SSHBase, connectTimeout time.Duration) agent.LoginSpec {
	s := agent.LoginSpec{
		ID:               p.ID,
		Name:             p.Name,
		HomeDir:          base.HomeDir,
		SSHConfigPath:    base.ConfigPath,
		SystemConfigPath: base.SystemConfigPath,
		KnownHostsFiles:  base.KnownHostsFiles,
		AgentSocket:      base.AgentSocket,
		Session: agent.SessionSettings{
			IdleTimeout:       p.Options.IdleTimeout.D(),
			PingIdleThreshold: p.Options.PingThreshold.D(),
			ConnectTimeout:    connectTimeout,
			PoolSize:          p.Options.PoolSize,
		},
	}
	if s.Session.IdleTimeout <= 0 {
		s.Session.IdleTimeout = -1 // stay connected until the user disconnects
	}
	if p.SSHConfigAlias != "" {
		s.SSHConfigAlias = p.SSHConfigAlias
	} else {
		s.Host, s.Port, s.User = p.Host, p.Port, p.User
		if p.KeyPath != "" {
			s.IdentityFiles = []string{p.KeyPath}
		}
		s.ProxyJump = strings.Join(p.JumpHosts, ",")
		for _, m := range p.Auth {
			switch m {
			case profiles.AuthAgent:
				s.AuthMethods = append(s.AuthMethods, agent.AuthAgent)
			case profiles.AuthKey:
				s.AuthMethods = append(s.AuthMethods, agent.AuthKey)
			case profiles.AuthPassword:
				s.AuthMethods = append(s.AuthMethods, agent.AuthPassword)
			case profiles.AuthKeyboardInteractive:
				s.AuthMethods = append(s.AuthMethods, agent.AuthKeyboardInteractive)
			}
		}
	}
	if !s.UsesAgent() {
		s.AgentSocket = "none"
	}
	return s
}

// hostPort is "host:port" with IPv6 in brackets.
func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
