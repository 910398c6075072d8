// Package atomicfile writes, backs up and locks Porthole's small state files
// (settings, profiles, endpoints, tabs). It imports no package of Porthole's,
// so every room may use it.
//
// What it guarantees:
//
//   - WriteFile replaces a file atomically: the data goes to a temporary file
//     in the same directory, which is fsynced, given its mode and renamed over
//     the target. A reader (or a crash) sees the old content or the new, never
//     a mix or a truncated file. On Unix the directory is fsynced after the
//     rename, so the new name survives a power cut; on Windows the rename is
//     done write-through and retried for about a second while another process
//     has the target open without sharing. Missing parent directories are
//     created with mode 0700. On failure the old file is left as it was and
//     the temporary file is removed.
//   - WriteBackup and BackupCorrupt write a copy as a new file (never
//     replacing one), fsynced, mode 0600. BackupCorrupt keeps the bytes of a
//     file that failed to parse as <path>.corrupt-<UTC time>; the original is
//     left untouched, and backing up the same bytes again reuses the copy.
//   - Lock and TryLock take an exclusive advisory lock on a lock file:
//     flock(2) on Unix, LockFileEx on Windows. The lock excludes other
//     processes and other Lock calls of the same process alike (it belongs to
//     the open file, not to the process). Elsewhere (no platform Porthole
//     ships on) the lock is a no-op: writes stay atomic, but two writers may
//     lose one change. The lock file is never removed: removing it would let
//     two processes lock two different files.
//
// Every error is wrapped with %w (errors.Is(err, fs.ErrPermission) and the
// like keep working) and says which file and what to do.
package atomicfile
