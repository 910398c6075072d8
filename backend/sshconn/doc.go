// Package sshconn makes one SSH connection the way OpenSSH would, in-process
// with golang.org/x/crypto/ssh (no ssh binary is ever run).
//
// Resolve reads ~/.ssh/config (and /etc/ssh/ssh_config) with
// github.com/kevinburke/ssh_config and turns "user@host" plus explicit
// Options into a Config: HostName, User, Port, IdentityFile, IdentitiesOnly,
// ProxyJump chains (each hop resolved through the config too),
// ConnectTimeout, ServerAlive*, known_hosts files and StrictHostKeyChecking.
// ProxyCommand is refused (ErrUnsupported): Porthole never runs commands.
//
// Dialer.Dial connects hop by hop. Each hop's host key is checked against
// known_hosts with github.com/skeema/knownhosts (hashed entries, @revoked,
// @cert-authority); the key types known for a host are offered first so a
// known host is never mistaken for a changed one. A changed key is always
// refused (*HostKeyMismatchError); an unknown key is handled according to
// StrictMode (see there: "no" is treated as "ask", never as insecure).
// Authentication follows OpenSSH's order: ssh-agent, identity files (an
// encrypted key's passphrase is asked only when the server accepts the
// key), keyboard-interactive, password; everything the user must type goes
// through a Prompter.
//
// Client.Ping sends keepalive@openssh.com and closes the client when no
// answer comes in time.
package sshconn
