// Package profiles keeps Porthole's server logins on disk, their secrets in
// the OS keyring, and imports logins from ~/.ssh/config.
//
// It imports no package of Porthole's own: what it needs from elsewhere (an
// ssh_config resolver) it declares as a small interface (Resolver).
//
// # The file
//
// Profiles live in one JSON file, by default
// os.UserConfigDir()/porthole/profiles.json (see DefaultPath):
//
//	{
//	  "schemaVersion": 2,
//	  "profiles": [ { "id": "…", "name": "gpu box", "host": "gpu.example.com", "port": 22, … } ]
//	}
//
// Choices made for the format:
//
//   - Durations (Options.PingThreshold, Options.IdleTimeout) are written as
//     Go duration strings ("30s", "1m30s"). When reading, a bare JSON number
//     is also accepted and means seconds (handy when editing by hand).
//   - Jump hosts are "[user@]host[:port]" strings, exactly like ssh -J /
//     ProxyJump (IPv6 as "[::1]:22"); a host may be an ~/.ssh/config alias,
//     resolved at connect time. They are not references to other profiles:
//     the same strings come straight from an imported ProxyJump, and a
//     profile stays meaningful when the profile it would refer to is deleted.
//   - Auth is an ordered list of methods; an empty list means DefaultAuthOrder.
//   - No secret is ever stored in a Profile or in the file: passwords and key
//     passphrases go to a SecretStore (the OS keyring), keyed by profile ID.
//
// Schema history: version 1 was a bare JSON array of profiles with the fields
// "hostname" and "username"; version 2 (current) is the object above. An
// older file is migrated in memory when loaded and written back in the new
// format only on the next change, after the original has been copied to
// profiles.json.v1.bak. A file written by a newer Porthole is opened
// read-only (ErrNewerSchema), never rewritten.
//
// # Robustness
//
// Writes are atomic (package atomicfile: a temporary file in the same
// directory, fsync, rename; mode 0600 in a 0700 directory) and serialised between processes by an
// advisory lock on profiles.json.lock; every change re-reads the file under
// that lock, so two Porthole processes adding profiles at the same time both
// keep their additions. A file that does not parse is left untouched, copied
// to profiles.json.corrupt-<timestamp>, and reported as a *ParseError (with
// line and column, errors.Is(err, ErrCorrupt)); the Store still opens, empty
// and read-only, so the app can start and show the problem.
package profiles
