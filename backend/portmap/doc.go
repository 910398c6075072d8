// Package portmap owns Porthole's local endpoints: which local address
// serves which (login, remote endpoint), and who holds a local port when it
// is taken.
//
// # Stable endpoints
//
// A web app's cookies and localStorage belong to its origin
// (http://IP:port), so an app must keep its local endpoint across restarts.
// Map persists (login ID, remote host, remote port) → local endpoint in
// os.UserConfigDir()/porthole/endpoints.json (format in format.go). Once
// assigned, an endpoint is reused for as long as it is in the file — a login
// idle for months gets the same endpoint back — until Forget or ForgetLogin.
//
// # Per-login loopback addresses
//
// Browsers scope cookies by host name, not port: two servers' apps on
// 127.0.0.1:8888 and 127.0.0.1:8889 see each other's cookies. Where the OS
// lets a program bind any 127.x.y.z (Linux and Windows by default; macOS only
// with `ifconfig lo0 alias`), every login gets its own address — the first
// 127.0.0.2, the next 127.0.0.3 — saved in the same file and never given to
// another login, even after the first is forgotten. 127.0.0.1 ("this
// computer") is never given to a login in that mode, nor is 127.80.72.1,
// `porthole serve`'s own address (see ServeAddr). Open finds out by
// binding 127.0.0.2:0 once (WithLoopbackProbe replaces the test); where that
// fails, every login shares 127.0.0.1 with distinct ports (SharedLoopback),
// and cookies of different servers are not kept apart.
//
// # Per-app loopback addresses
//
// Two apps of one server on 127.0.0.2:8888 and 127.0.0.2:8889 share
// cookies too (RFC 6265 ignores ports), which breaks apps that set a
// cookie of the same name (Jupyter's _xsrf: jupyter/notebook#6278). With
// SetPerApp on (the user's "separate cookies per app", on by default), each
// new endpoint gets an address of its own: every login gets a block
// 127.N.0.0/16 (N from 1, never 80, which holds serve's address; a forgotten
// login's block is never handed out again) and its apps take 127.N.0.1,
// 127.N.1.1, 127.N.2.1… Endpoints assigned before keep their address, so
// upgrading never moves an app (its cookies and logins stay). Where a new
// address cannot be bound, or no block is left, the app uses its login's
// address. In SharedLoopback mode per-app addresses are never used.
//
// # Choosing a port
//
// A new endpoint takes the remote port number when it is 1024 or more, free
// on the login's address, and not assigned to another app; otherwise the
// first such port of a sequence determined by the key alone (a hash picks a
// start in 20000–29999, then linear probing), so the same inputs give the same
// endpoint wherever that port is free.
//
// # A taken port
//
// Map.Bind listens on an endpoint. If something else holds it, Bind names the
// holder (via gopsutil) and listens on a temporary alternative, with a notice
// such as "port 8888 on 127.0.0.2 is held by jupyter (pid 4121); Porthole will
// use 8889". The move is not saved: the app returns to its own endpoint as
// soon as the port is free (see Bind for the cookie trade-off).
//
// # The file
//
// Changes take an advisory lock on endpoints.json.lock (flock; LockFileEx on
// Windows), re-read the file, and write it atomically (temporary file, fsync,
// rename, mode 0600; both through package atomicfile), so several Porthole processes can share it. A file
// that does not parse is left in place, copied to
// endpoints.json.corrupt-<time>, and reported with its line and column (a
// *FileError); the Map then keeps working in memory without saving, and
// ReadOnly says why. Map.Reload leaves that state once the file is fixed or
// removed.
package portmap
