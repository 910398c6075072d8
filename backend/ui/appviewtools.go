package ui

import (
	"fmt"
	"time"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/events"
)

// What a browser tab does besides showing a page, for the Linux window's app
// views (backend/appview implements them): downloads, find in page, zoom,
// print, and the page's own dialogs (alert/confirm/prompt, HTTP
// authentication) shown as the shell's. In `porthole serve` the apps are
// iframes in a real browser, which does all of this itself.

// TopicDownloads carries the window's downloads, newest first.
var TopicDownloads = events.NewTopic[DownloadList]("downloads")

// TopicPageDialogs carries the app views' open dialogs (alert, confirm,
// prompt, HTTP authentication), oldest first; each is bound to its view.
var TopicPageDialogs = events.NewTopic[PageDialogList]("appview.dialogs")

// DownloadState is where a download is.
type DownloadState string

const (
	DownloadRunning   DownloadState = "running"
	DownloadDone      DownloadState = "done"
	DownloadFailed    DownloadState = "failed"
	DownloadCancelled DownloadState = "cancelled"
)

// Download is one file an app view saved (or is saving). Path is its final
// place, set once it is done; Error says in words what went wrong and what
// to do. URL is the origin and path it came from (never its query, which
// may hold a token).
type Download struct {
	ID       string        `json:"id"`
	ViewID   string        `json:"viewId"`
	Name     string        `json:"name"`
	Dir      string        `json:"dir"`
	Path     string        `json:"path,omitempty"`
	URL      string        `json:"url"`
	Received int64         `json:"received"`
	Total    int64         `json:"total"` // 0: unknown
	State    DownloadState `json:"state"`
	Error    string        `json:"error,omitempty"`
	Started  time.Time     `json:"started"`
}

// DownloadList is every download of this run, newest first (at most 50).
type DownloadList struct {
	Downloads []Download `json:"downloads"`
}

// PageDialogKind is what a page asks.
type PageDialogKind string

const (
	DialogAlert   PageDialogKind = "alert"
	DialogConfirm PageDialogKind = "confirm"
	DialogPrompt  PageDialogKind = "prompt"
	DialogLeave   PageDialogKind = "beforeunload"
	DialogAuth    PageDialogKind = "auth"
)

// PageDialog is a question a page in an app view asks. Flood: the page has
// asked several in a short while, so the dialog offers to stop them.
// Realm and User are an HTTP authentication's (User: a name to suggest);
// Retry says the last credentials were refused. Remember: the keyring can
// keep the credentials for this app.
type PageDialog struct {
	ID       string         `json:"id"`
	ViewID   string         `json:"viewId"`
	Kind     PageDialogKind `json:"kind"`
	Origin   string         `json:"origin"`
	Message  string         `json:"message"`
	Default  string         `json:"default,omitempty"`
	Flood    bool           `json:"flood,omitempty"`
	Realm    string         `json:"realm,omitempty"`
	User     string         `json:"user,omitempty"`
	Retry    bool           `json:"retry,omitempty"`
	Remember bool           `json:"remember,omitempty"`
}

// PageDialogList is every open page dialog.
type PageDialogList struct {
	Dialogs []PageDialog `json:"dialogs"`
}

// PageDialogAnswer is the person's answer: OK (else Cancel), a prompt's
// Text, an authentication's User and Password (Remember: keep them in the
// keyring for this app), or Stop: no more dialogs from this page until it
// loads again.
type PageDialogAnswer struct {
	OK       bool   `json:"ok"`
	Text     string `json:"text,omitempty"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	Remember bool   `json:"remember,omitempty"`
	Stop     bool   `json:"stop,omitempty"`
}

// FindOp is a find-in-page step.
type FindOp string

const (
	FindStart    FindOp = "find"
	FindNext     FindOp = "next"
	FindPrevious FindOp = "previous"
	FindClose    FindOp = "close"
)

// ZoomOp changes a view's zoom (kept per app).
type ZoomOp string

const (
	ZoomIn    ZoomOp = "in"
	ZoomOut   ZoomOp = "out"
	ZoomReset ZoomOp = "reset"
)

// AppViewTools is what the window's views do besides showing pages.
type AppViewTools interface {
	Find(id, text string, op FindOp)
	Zoom(id string, op ZoomOp)
	Print(id string)
	AnswerDialog(dialogID string, a PageDialogAnswer) error
	ShowDownload(id string) error
	CancelDownload(id string) error
	ClearDownloads()
}

func (a *App) tools() (AppViewTools, error) {
	t, ok := a.views.(AppViewTools)
	if a.views == nil || !ok {
		return nil, apperr.Mark(ErrNoAppViews, apperr.ErrBadInput)
	}
	return t, nil
}

const maxFindText = 1000

// FindInAppView finds text in a view's page: op "find" starts (or changes
// the text), "next" and "previous" move, "close" ends it. The match count
// comes back in the view's appviews event (Find).
func (a *App) FindInAppView(id, text, op string) error {
	t, err := a.tools()
	if err != nil {
		return err
	}
	if err := validateViewID(id); err != nil {
		return err
	}
	switch o := FindOp(op); o {
	case FindStart, FindNext, FindPrevious, FindClose:
		if len(text) > maxFindText {
			return apperr.BadInput("find: the text is %d bytes long; at most %d", len(text), maxFindText)
		}
		t.Find(id, text, o)
		return nil
	}
	return apperr.BadInput("find: unknown step %q (find, next, previous or close)", op)
}

// ZoomAppView zooms a view in, out, or back to 100 % ("in", "out",
// "reset"); the level is kept for the view's app and comes back in its
// appviews event (Zoom).
func (a *App) ZoomAppView(id, op string) error {
	t, err := a.tools()
	if err != nil {
		return err
	}
	if err := validateViewID(id); err != nil {
		return err
	}
	switch o := ZoomOp(op); o {
	case ZoomIn, ZoomOut, ZoomReset:
		t.Zoom(id, o)
		return nil
	}
	return apperr.BadInput("zoom: unknown step %q (in, out or reset)", op)
}

// PrintAppView opens the print dialog for a view's page.
func (a *App) PrintAppView(id string) error {
	t, err := a.tools()
	if err != nil {
		return err
	}
	if err := validateViewID(id); err != nil {
		return err
	}
	t.Print(id)
	return nil
}

// AnswerPageDialog answers a page's dialog (TopicPageDialogs).
func (a *App) AnswerPageDialog(id string, ans PageDialogAnswer) error {
	t, err := a.tools()
	if err != nil {
		return err
	}
	if len(ans.Text) > 1<<16 || len(ans.User) > 1024 || len(ans.Password) > 4096 {
		return apperr.BadInput("page dialog: the answer is too long")
	}
	return t.AnswerDialog(id, ans)
}

// ShowDownload shows a finished download in the file manager.
func (a *App) ShowDownload(id string) error {
	t, err := a.tools()
	if err != nil {
		return err
	}
	return t.ShowDownload(id)
}

// CancelDownload stops a running download (nothing is left under its name).
func (a *App) CancelDownload(id string) error {
	t, err := a.tools()
	if err != nil {
		return err
	}
	return t.CancelDownload(id)
}

// ClearDownloads forgets the finished downloads in the list (the files stay).
func (a *App) ClearDownloads() error {
	t, err := a.tools()
	if err != nil {
		return err
	}
	t.ClearDownloads()
	return nil
}

// ErrUnknownDownload and ErrUnknownDialog: the id names nothing (any more).
var (
	ErrUnknownDownload = apperr.Mark(fmt.Errorf("no such download (it may have been cleared)"), apperr.ErrNotFound)
	ErrUnknownDialog   = apperr.Mark(fmt.Errorf("no such page dialog (it was answered, or its page went away)"), apperr.ErrNotFound)
)
