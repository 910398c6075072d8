package appview

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/porthole-app/porthole/backend/ui"
)

// Downloads: an app view's download is written under a temporary name in
// the user's download folder (.NAME.XXXX.part, created by Porthole, so a
// folder it cannot write is known before any byte arrives) and, once
// complete and synced, renamed to NAME, or "NAME (1).ext", "NAME (2).ext"…
// without ever replacing a file (renameat2 RENAME_NOREPLACE, else link and
// unlink). A failed or cancelled download leaves nothing behind under
// either name. What is going on is published on ui.TopicDownloads.

// DownloadDir is the user's download folder: $XDG_DOWNLOAD_DIR, else
// XDG_DOWNLOAD_DIR in $XDG_CONFIG_HOME/user-dirs.dirs (what `xdg-user-dir
// DOWNLOAD` reads), else ~/Downloads.
func DownloadDir(getenv func(string) string) (string, error) {
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the download folder: %w", err)
		}
		home = h
	}
	if d := getenv("XDG_DOWNLOAD_DIR"); filepath.IsAbs(d) {
		return filepath.Clean(d), nil
	}
	cfg := getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(cfg) {
		cfg = filepath.Join(home, ".config")
	}
	if d := userDirsDownload(filepath.Join(cfg, "user-dirs.dirs"), home); d != "" {
		return d, nil
	}
	return filepath.Join(home, "Downloads"), nil
}

// userDirsDownload reads XDG_DOWNLOAD_DIR="$HOME/…" (or an absolute path)
// from a user-dirs.dirs file; "" when it has none. A folder set to $HOME
// itself means "no download folder" there, as xdg-user-dirs says.
func userDirsDownload(file, home string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		v, ok := strings.CutPrefix(line, "XDG_DOWNLOAD_DIR=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch {
		case strings.HasPrefix(v, "$HOME/"):
			v = filepath.Join(home, v[len("$HOME/"):])
		case v == "$HOME":
			return ""
		case !filepath.IsAbs(v):
			return ""
		}
		v = filepath.Clean(v)
		if v == filepath.Clean(home) {
			return ""
		}
		return v
	}
	return ""
}

// maxNameBytes keeps a file name (with " (999)" and the temporary affixes)
// under the usual 255-byte limit.
const maxNameBytes = 200

// SafeName makes a file name of what the server suggested (or, failing
// that, of the URL's last path segment): one path element, no control
// characters, not hidden, not "." or "..", at most 200 bytes (extension
// kept); "download" when nothing is left.
func SafeName(suggested, rawURL string) string {
	name := cleanName(suggested)
	if name == "" {
		if u, err := url.Parse(rawURL); err == nil {
			name = cleanName(path.Base(u.Path))
		}
	}
	if name == "" {
		return "download"
	}
	return name
}

func cleanName(s string) string {
	s = strings.ReplaceAll(s, "\\", "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || r == 0x7f {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(s), "."))
	if s == "" {
		return ""
	}
	if len(s) > maxNameBytes {
		base, ext := splitExt(s)
		if len(ext) > 20 {
			base, ext = s, ""
		}
		keep := maxNameBytes - len(ext)
		for keep > 0 && !utf8.RuneStart(base[keep]) {
			keep--
		}
		s = base[:keep] + ext
	}
	return s
}

// splitExt splits "report.tar.gz" into "report" and ".tar.gz", and
// "data.csv" into "data" and ".csv".
func splitExt(name string) (string, string) {
	lower := strings.ToLower(name)
	for _, double := range []string{".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst"} {
		if strings.HasSuffix(lower, double) && len(name) > len(double) {
			return name[:len(name)-len(double)], name[len(name)-len(double):]
		}
	}
	ext := filepath.Ext(name)
	if ext == name {
		return name, ""
	}
	return name[:len(name)-len(ext)], ext
}

// NumberedName is the n-th name to try: n 0 is name itself, then
// "name (1).ext", "name (2).ext"…
func NumberedName(name string, n int) string {
	if n == 0 {
		return name
	}
	base, ext := splitExt(name)
	return base + " (" + strconv.Itoa(n) + ")" + ext
}

// maxNumbered bounds the names tried before giving up.
const maxNumbered = 9999

// createTemp makes the empty temporary file a download is written to,
// in dir, for the file name; it never replaces one.
func createTemp(dir, name string) (string, error) {
	var b [4]byte
	for range 100 {
		_, _ = rand.Read(b[:])
		p := filepath.Join(dir, "."+name+"."+hex.EncodeToString(b[:])+".part")
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return p, f.Close()
	}
	return "", fmt.Errorf("create a temporary file in %s: every name is taken", dir)
}

// claimName syncs the finished temporary file and gives it the first free
// numbered name of name in dir; it never replaces a file. It returns the
// final path.
func claimName(temp, dir, name string) (string, error) {
	if f, err := os.OpenFile(temp, os.O_RDWR, 0); err == nil {
		err = f.Sync()
		_ = f.Close()
		if err != nil {
			return "", err
		}
	} else {
		return "", err
	}
	for n := 0; n <= maxNumbered; n++ {
		final := filepath.Join(dir, NumberedName(name, n))
		err := renameNoReplace(temp, final)
		if err == nil {
			syncDir(dir)
			return final, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s and %d numbered names after it are all taken in %s", name, maxNumbered, dir)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// DescribeWriteError says in words why a download could not be saved in
// dir, and what to do; cause is the system's error (or WebKit's message).
// freeBytes is the folder's free space (-1: unknown).
func DescribeWriteError(dir, name string, cause error, freeBytes int64) string {
	where := "Set another download folder (XDG_DOWNLOAD_DIR in ~/.config/user-dirs.dirs) or fix this one, then download again."
	switch {
	case errors.Is(cause, syscall.EROFS):
		return fmt.Sprintf("%s was not saved: the download folder %s is on a read-only file system. %s", name, dir, where)
	case errors.Is(cause, syscall.EACCES), errors.Is(cause, syscall.EPERM), errors.Is(cause, fs.ErrPermission):
		return fmt.Sprintf("%s was not saved: you may not write to the download folder %s. %s", name, dir, where)
	case errors.Is(cause, syscall.ENOSPC), errors.Is(cause, syscall.EDQUOT), freeBytes == 0:
		return fmt.Sprintf("%s was not saved: the disk holding %s is full. Free some space, then download again.", name, dir)
	case errors.Is(cause, syscall.ENOENT), errors.Is(cause, syscall.ENOTDIR):
		return fmt.Sprintf("%s was not saved: the download folder %s does not exist and could not be made. %s", name, dir, where)
	}
	return fmt.Sprintf("%s was not saved in %s: %v", name, dir, cause)
}

// errnoInWords finds the system error named in a message (WebKit's and
// GIO's carry strerror's text); 0 when none.
func errnoInWords(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	msg := err.Error()
	for _, e := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES} {
		if strings.Contains(msg, e.Error()) || strings.Contains(strings.ToLower(msg), strings.ToLower(e.Error())) {
			return e
		}
	}
	return 0
}

// maxDownloads is how many downloads the list keeps.
const maxDownloads = 50

// publishEvery bounds progress events per download.
const publishEvery = 250 * time.Millisecond

// Downloads keeps the window's downloads and publishes them. Its methods
// are safe from any goroutine (GTK's callbacks call them on GTK's thread).
type Downloads struct {
	log     *slog.Logger
	publish func(ui.DownloadList) // must not block (GTK's thread calls in)
	dir     func() (string, error)
	now     func() time.Time
	notify  func(d ui.Download) // a finished download (nil: none)

	mu      sync.Mutex
	seq     int
	list    []*download // newest first
	lastPub time.Time
}

type download struct {
	ui.Download
	temp string
}

// NewDownloads makes the list; publish gets every change (it must not
// block); dir gives the download folder (nil: the user's, DownloadDir of
// the environment); notify hears of each finished download (nil: none).
func NewDownloads(log *slog.Logger, publish func(ui.DownloadList), dir func() (string, error), notify func(ui.Download)) *Downloads {
	if dir == nil {
		dir = func() (string, error) { return DownloadDir(os.Getenv) }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Downloads{log: log, publish: publish, dir: dir, now: time.Now, notify: notify}
}

// displayURL is rawURL without its query, fragment or user info.
func displayURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// Begin starts a download from viewID: it finds the folder, makes the
// temporary file WebKit is to write, and lists the download. An error
// (a read-only, missing or full folder) is already in the list, in
// words; the caller cancels the transfer.
func (d *Downloads) Begin(viewID, rawURL, suggested string) (id, temp string, err error) {
	name := SafeName(suggested, rawURL)
	d.mu.Lock()
	d.seq++
	dl := &download{Download: ui.Download{ID: "dl-" + strconv.Itoa(d.seq), ViewID: viewID, Name: name,
		URL: displayURL(rawURL), State: ui.DownloadRunning, Started: d.now().UTC()}}
	d.list = append([]*download{dl}, d.list...)
	d.trimLocked()
	d.mu.Unlock()

	dir, err := d.dir()
	if err == nil {
		dl.Dir = dir
		if err = os.MkdirAll(dir, 0o755); err == nil {
			temp, err = createTemp(dir, name)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		dl.State = ui.DownloadFailed
		dl.Error = DescribeWriteError(dl.Dir, name, err, freeSpace(dl.Dir))
		d.log.Warn("download not started", "err", err, "dir", dl.Dir)
		d.publishLocked()
		return dl.ID, "", fmt.Errorf("%s", dl.Error)
	}
	dl.temp = temp
	d.publishLocked()
	return dl.ID, temp, nil
}

func (d *Downloads) getLocked(id string) *download {
	for _, dl := range d.list {
		if dl.ID == id {
			return dl
		}
	}
	return nil
}

// Progress notes the bytes received so far (total 0: unknown).
func (d *Downloads) Progress(id string, received, total int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dl := d.getLocked(id)
	if dl == nil || dl.State != ui.DownloadRunning {
		return
	}
	dl.Received, dl.Total = received, total
	if now := d.now(); now.Sub(d.lastPub) >= publishEvery {
		d.lastPub = now
		d.publishLocked()
	}
}

// Finish: the transfer is complete; the file gets its final name.
func (d *Downloads) Finish(id string) {
	d.mu.Lock()
	dl := d.getLocked(id)
	if dl == nil || dl.State != ui.DownloadRunning {
		d.mu.Unlock()
		return
	}
	temp, dir, name := dl.temp, dl.Dir, dl.Name
	d.mu.Unlock()

	final, err := claimName(temp, dir, name)
	d.mu.Lock()
	if err != nil {
		_ = os.Remove(temp)
		dl.State = ui.DownloadFailed
		dl.Error = DescribeWriteError(dir, name, err, freeSpace(dir))
		d.log.Warn("download not saved", "err", err)
	} else {
		d.log.Info("download saved", "path", final)
		dl.State, dl.Path, dl.Name = ui.DownloadDone, final, filepath.Base(final)
		if st, err := os.Stat(final); err == nil {
			dl.Received = st.Size()
			if dl.Total == 0 {
				dl.Total = dl.Received
			}
		}
	}
	done := dl.Download
	d.publishLocked()
	d.mu.Unlock()
	if err == nil && d.notify != nil {
		d.notify(done)
	}
}

// Fail: the transfer failed (cause: WebKit's message). Nothing is left
// under either name; the list says why in words.
func (d *Downloads) Fail(id string, cause error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dl := d.getLocked(id)
	if dl == nil || dl.State != ui.DownloadRunning {
		return
	}
	// Why did it fail? The folder says, before the partial file is gone
	// (removing it frees the space it took); else WebKit's words do (GIO
	// puts strerror's text in them).
	free := freeSpace(dl.Dir)
	if dl.temp != "" {
		_ = os.Remove(dl.temp)
	}
	if werr := writableErr(dl.Dir); werr != nil {
		cause = werr
	} else if free >= 0 && free < 64<<10 {
		cause = syscall.ENOSPC
	} else if errno := errnoInWords(cause); errno != 0 {
		cause = fmt.Errorf("%w (%v)", errno, cause)
	}
	dl.State = ui.DownloadFailed
	dl.Error = DescribeWriteError(dl.Dir, dl.Name, cause, free)
	d.log.Warn("download failed", "err", cause)
	d.publishLocked()
}

// Cancelled: the person (or Porthole) stopped it. Nothing is left behind.
// It reports whether the download was running.
func (d *Downloads) Cancelled(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	dl := d.getLocked(id)
	if dl == nil || dl.State != ui.DownloadRunning {
		return false
	}
	if dl.temp != "" {
		_ = os.Remove(dl.temp)
	}
	dl.State = ui.DownloadCancelled
	d.publishLocked()
	return true
}

// Get returns a download.
func (d *Downloads) Get(id string) (ui.Download, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dl := d.getLocked(id); dl != nil {
		return dl.Download, true
	}
	return ui.Download{}, false
}

// Clear forgets every download that is not running.
func (d *Downloads) Clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	kept := d.list[:0]
	for _, dl := range d.list {
		if dl.State == ui.DownloadRunning {
			kept = append(kept, dl)
		}
	}
	d.list = kept
	d.publishLocked()
}

func (d *Downloads) trimLocked() {
	if len(d.list) <= maxDownloads {
		return
	}
	kept := d.list[:0]
	for i, dl := range d.list {
		if i < maxDownloads || dl.State == ui.DownloadRunning {
			kept = append(kept, dl)
		}
	}
	d.list = kept
}

// List is the downloads, newest first.
func (d *Downloads) List() ui.DownloadList {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.listLocked()
}

func (d *Downloads) listLocked() ui.DownloadList {
	out := ui.DownloadList{Downloads: make([]ui.Download, 0, len(d.list))}
	for _, dl := range d.list {
		out.Downloads = append(out.Downloads, dl.Download)
	}
	return out
}

func (d *Downloads) publishLocked() {
	if d.publish != nil {
		d.publish(d.listLocked())
	}
}
