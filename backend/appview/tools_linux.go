//go:build desktop && linux

package appview

/*
#cgo linux pkg-config: gtk+-3.0 webkit2gtk-4.0
#include <stdint.h>
#include <stdlib.h>
#include "tools.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/notify"
	"github.com/porthole-app/porthole/backend/ui"
)

// tools is the part of the host that does what a browser tab does besides
// showing a page. dls is touched only on GTK's main thread.
type tools struct {
	downloads *Downloads
	dialogs   *Dialogs
	zoom      *ZoomFile
	auth      *SavedAuth
	popups    Burst
	notifier  *notify.DBus

	dls   map[string]C.uintptr_t // download id → its WebKitDownload (a reference)
	finds map[string]*FindIndex  // view id → its find in page's current match
	dlPub chan ui.DownloadList   // latest only; deliver publishes
	dgPub chan ui.PageDialogList

	ctx    context.Context // for notifications and the file manager; ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines below
}

var _ ui.AppViewTools = (*gtkAppViews)(nil)

func (h *gtkAppViews) initTools() {
	h.dls = map[string]C.uintptr_t{}
	h.finds = map[string]*FindIndex{}
	h.dlPub = make(chan ui.DownloadList, 1)
	h.dgPub = make(chan ui.PageDialogList, 1)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.popups = Burst{Window: 5 * time.Second, Max: 3}
	h.notifier = notify.NewDBus(h.log, "")
	h.zoom = OpenZoomLogged(h.log)
	h.auth = NewSavedAuth(h.log)
	h.dialogs = NewDialogs(func(l ui.PageDialogList) { sendLatest(h.dgPub, l) })
	h.downloads = NewDownloads(h.log, func(l ui.DownloadList) { sendLatest(h.dlPub, l) }, nil, h.notifyDone)
}

func (h *gtkAppViews) closeTools() {
	h.cancel()
	h.wg.Wait()
	_ = h.notifier.Close()
}

// sendLatest puts v in ch (capacity 1), replacing what is waiting there.
func sendLatest[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
			select {
			case <-ch:
			default:
			}
		}
	}
}

// goTool runs f on a goroutine of the host's (Close waits for it).
func (h *gtkAppViews) goTool(f func(ctx context.Context)) {
	if h.ctx.Err() != nil { // closed: the window is gone
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		f(h.ctx)
	}()
}

// originOf is an http URL's origin, scheme://host:port.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// ---- downloads ----

//export portholeDownloadBegin
func portholeDownloadBegin(view, uri, suggested *C.char, d C.uintptr_t, dlid **C.char) *C.char {
	h := currentAppViews()
	if h == nil {
		return nil
	}
	id, temp, err := h.downloads.Begin(C.GoString(view), C.GoString(uri), C.GoString(suggested))
	*dlid = C.CString(id)
	if err != nil {
		return nil
	}
	h.dls[id] = d
	return C.CString(temp)
}

//export portholeDownloadProgress
func portholeDownloadProgress(id *C.char, received, total C.int64_t) {
	if h := currentAppViews(); h != nil {
		h.downloads.Progress(C.GoString(id), int64(received), int64(total))
	}
}

//export portholeDownloadFailed
func portholeDownloadFailed(id *C.char, cancelled C.int, msg *C.char) {
	h := currentAppViews()
	if h == nil {
		return
	}
	if cancelled != 0 {
		h.downloads.Cancelled(C.GoString(id))
		return
	}
	h.downloads.Fail(C.GoString(id), errors.New(C.GoString(msg)))
}

//export portholeDownloadFinished
func portholeDownloadFinished(id *C.char) {
	h := currentAppViews()
	if h == nil {
		return
	}
	dl := C.GoString(id)
	h.goTool(func(context.Context) { h.downloads.Finish(dl) }) // fsync and rename, off GTK's thread
}

//export portholeDownloadGone
func portholeDownloadGone(id *C.char) {
	h := currentAppViews()
	if h == nil {
		return
	}
	if d, ok := h.dls[C.GoString(id)]; ok {
		delete(h.dls, C.GoString(id))
		C.ph_download_release(d)
	}
}

func (h *gtkAppViews) notifyDone(d ui.Download) {
	h.goTool(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n := notify.Notification{Title: "Download finished", Body: fmt.Sprintf("%s is in %s", d.Name, d.Dir), Action: "Show in folder", Time: time.Now()}
		if err := h.notifier.Send(ctx, n, func() { _ = h.ShowDownload(d.ID) }); err != nil {
			h.log.Debug("no notification for a finished download (the downloads list shows it)", "err", err)
		}
	})
}

func (h *gtkAppViews) CancelDownload(id string) error {
	if d, ok := h.downloads.Get(id); !ok || d.State != ui.DownloadRunning {
		return ui.ErrUnknownDownload
	}
	onMain(func() {
		if d, ok := h.dls[id]; ok {
			C.ph_download_cancel(d)
		}
	})
	return nil
}

func (h *gtkAppViews) ClearDownloads() { h.downloads.Clear() }

// ShowDownload shows a finished download in the file manager
// (org.freedesktop.FileManager1.ShowItems), else opens its folder.
func (h *gtkAppViews) ShowDownload(id string) error {
	d, ok := h.downloads.Get(id)
	if !ok {
		return ui.ErrUnknownDownload
	}
	if d.State != ui.DownloadDone || d.Path == "" {
		return apperr.BadInput("%s is not saved (yet): there is nothing to show", d.Name)
	}
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	if err := showItem(ctx, d.Path); err == nil {
		return nil
	} else {
		h.log.Debug("no FileManager1 on the session bus; opening the folder", "err", err)
	}
	cmd := exec.Command("xdg-open", filepath.Dir(d.Path))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("open the folder %s: %w", filepath.Dir(d.Path), err)
	}
	h.goTool(func(context.Context) { _ = cmd.Wait() })
	return nil
}

func showItem(ctx context.Context, path string) error {
	conn, err := dbus.ConnectSessionBus(dbus.WithContext(ctx))
	if err != nil {
		return err
	}
	defer conn.Close()
	u := url.URL{Scheme: "file", Path: path}
	return conn.Object("org.freedesktop.FileManager1", "/org/freedesktop/FileManager1").
		CallWithContext(ctx, "org.freedesktop.FileManager1.ShowItems", 0, []string{u.String()}, "").Err
}

// ---- find, zoom, print ----

func (h *gtkAppViews) Find(id, text string, op ui.FindOp) {
	code := map[ui.FindOp]C.int{ui.FindStart: 0, ui.FindNext: 1, ui.FindPrevious: 2, ui.FindClose: 3}[op]
	onMain(func() {
		v := viewPtr(id)
		if v == nil {
			return
		}
		withCString(text, func(t *C.char) { C.ph_find(v, t, code) })
		f := h.findIndex(id)
		switch op {
		case ui.FindStart:
			f.Start(text)
			if text == "" {
				h.emitFind(id, f)
			}
		case ui.FindNext, ui.FindPrevious:
			f.Step(op)
			h.emitFind(id, f) // "n of m" at once; the view's reports follow
		default:
			delete(h.finds, id)
		}
	})
}

// findIndex is view id's find state. GTK's main thread.
func (h *gtkAppViews) findIndex(id string) *FindIndex {
	f := h.finds[id]
	if f == nil {
		f = &FindIndex{}
		h.finds[id] = f
	}
	return f
}

func (h *gtkAppViews) emitFind(id string, f *FindIndex) {
	r := f.Result()
	h.log.Debug("find in page", "view", id, "matches", r.Matches, "current", r.Current, "failed", r.Failed)
	h.emit(ui.AppViewEvent{ID: id, Find: &r})
}

//export portholeAppViewFound
func portholeAppViewFound(id, text *C.char, matches, report C.int) {
	h := currentAppViews()
	if h == nil {
		return
	}
	view := C.GoString(id)
	f := h.findIndex(view)
	f.Follow(C.GoString(text))
	f.Report(FindReport(report), int(matches))
	h.emitFind(view, f)
}

func (h *gtkAppViews) Zoom(id string, op ui.ZoomOp) { onMain(func() { h.zoomView(id, op) }) }

// zoomView steps id's app's zoom and applies it to every view of that app.
// GTK's main thread.
func (h *gtkAppViews) zoomView(id string, op ui.ZoomOp) {
	origin := originOf(h.loaded[id])
	if origin == "" {
		return
	}
	level, err := h.zoom.Step(origin, op)
	if err != nil {
		h.log.Warn("the zoom level is not kept", "err", err)
	}
	for other, u := range h.loaded {
		if originOf(u) == origin {
			if v := viewPtr(other); v != nil {
				C.ph_zoom_set(v, C.double(level))
				h.emit(ui.AppViewEvent{ID: other, Zoom: level})
			}
		}
	}
}

// applyZoom gives a new view its app's saved zoom. GTK's main thread.
func (h *gtkAppViews) applyZoom(id string) {
	level := h.zoom.Get(originOf(h.loaded[id]))
	if v := viewPtr(id); v != nil && level != 1 {
		C.ph_zoom_set(v, C.double(level))
	}
	h.emit(ui.AppViewEvent{ID: id, Zoom: level})
}

func (h *gtkAppViews) Print(id string) {
	onMain(func() {
		if v := viewPtr(id); v != nil {
			C.ph_print(v)
		}
	})
}

// localShortcut runs the shortcuts that act on the view itself (zoom,
// print); GTK's main thread. False: the shell's.
func (h *gtkAppViews) localShortcut(id, action string) bool {
	switch action {
	case "zoom-in", "zoom-out", "zoom-reset":
		h.zoomView(id, map[string]ui.ZoomOp{"zoom-in": ui.ZoomIn, "zoom-out": ui.ZoomOut, "zoom-reset": ui.ZoomReset}[action])
		return true
	case "print":
		h.Print(id) // after the key's handler returns: the dialog runs its own loop
		return true
	}
	return false
}

// ---- the pages' dialogs ----

var scriptKinds = map[C.int]ui.PageDialogKind{0: ui.DialogAlert, 1: ui.DialogConfirm, 2: ui.DialogPrompt, 3: ui.DialogLeave}

//export portholeScriptDialog
func portholeScriptDialog(id *C.char, kind C.int, msg, def, uri *C.char, d C.uintptr_t) {
	h := currentAppViews()
	// WebKit must not see the dialog closed while it is still emitting
	// "script-dialog" (it then unrefs a dialog that is gone): an answer
	// given at once (a stopped page's) waits for the handler to return.
	inHandler := true
	defer func() { inHandler = false }()
	answer := func(a ui.PageDialogAnswer) {
		ok := C.int(0)
		if a.OK {
			ok = 1
		}
		finish := func() { withCString(a.Text, func(t *C.char) { C.ph_dialog_answer(d, ok, t) }) }
		if inHandler {
			onMain(finish)
			return
		}
		finish()
	}
	if h == nil {
		answer(ui.PageDialogAnswer{})
		return
	}
	k, known := scriptKinds[kind]
	if !known {
		k = ui.DialogAlert
	}
	const maxMessage = 4000 // a page's text, shown as text; long ones are cut
	m := C.GoString(msg)
	if len(m) > maxMessage {
		m = m[:maxMessage] + "…"
	}
	pd, shown := h.dialogs.Open(ui.PageDialog{ViewID: C.GoString(id), Kind: k, Origin: originOf(C.GoString(uri)), Message: m, Default: C.GoString(def)}, answer)
	if shown {
		h.log.Debug("page dialog", "view", pd.ViewID, "dialog", pd.ID, "kind", string(pd.Kind), "flood", pd.Flood)
	} else {
		h.log.Debug("page dialog answered Cancel: its page's dialogs are stopped", "view", pd.ViewID)
	}
}

//export portholeAuthenticate
func portholeAuthenticate(id, host *C.char, port C.int, realm, uri, user *C.char, retry C.int, r C.uintptr_t) {
	h := currentAppViews()
	reply := func(a ui.PageDialogAnswer) { // GTK's main thread
		ok := C.int(0)
		if a.OK {
			ok = 1
		}
		withCString(a.User, func(u *C.char) {
			withCString(a.Password, func(p *C.char) { C.ph_auth_answer(r, ok, u, p) })
		})
	}
	if h == nil {
		reply(ui.PageDialogAnswer{})
		return
	}
	d := ui.PageDialog{ViewID: C.GoString(id), Kind: ui.DialogAuth, Origin: originOf(C.GoString(uri)),
		Message: fmt.Sprintf("%s:%d asks you to sign in", C.GoString(host), int(port)),
		Realm:   C.GoString(realm), User: C.GoString(user), Retry: retry != 0}
	// The keyring may take a while (or ask to be unlocked): off GTK's thread.
	h.goTool(func(context.Context) {
		if d.Retry {
			h.auth.Forget(d.Origin, d.Realm) // what it kept was refused
		} else if u, p, ok := h.auth.Lookup(d.Origin, d.Realm); ok {
			h.log.Info("signed in to an app with the sign-in kept in the keyring", "app", d.Origin)
			onMain(func() { reply(ui.PageDialogAnswer{OK: true, User: u, Password: p}) })
			return
		}
		d.Remember = h.auth.Available()
		onMain(func() {
			h.log.Debug("page dialog", "view", d.ViewID, "kind", string(d.Kind), "retry", d.Retry, "remember", d.Remember)
			_, _ = h.dialogs.Open(d, func(a ui.PageDialogAnswer) {
				reply(a)
				if a.OK && a.Remember && d.Remember {
					h.goTool(func(context.Context) {
						if err := h.auth.Save(d.Origin, d.Realm, a.User, a.Password); err != nil {
							h.log.Warn("sign-in not kept", "err", err)
						}
					})
				}
			})
		})
	})
}

// portholeDialogsStopped: view's page had its dialogs stopped (GTK's main
// thread, inside "script-dialog").
//
//export portholeDialogsStopped
func portholeDialogsStopped(id *C.char) C.int {
	if h := currentAppViews(); h != nil && h.dialogs.Stopped(C.GoString(id)) {
		h.log.Debug("page dialog answered Cancel: its page's dialogs are stopped", "view", C.GoString(id))
		return 1
	}
	return 0
}

//export portholeAppViewCommitted
func portholeAppViewCommitted(id *C.char) {
	if h := currentAppViews(); h != nil {
		h.dialogs.PageLoaded(C.GoString(id))
		delete(h.finds, C.GoString(id)) // a new page: its matches are counted anew
	}
}

func (h *gtkAppViews) AnswerDialog(id string, a ui.PageDialogAnswer) error {
	f, err := h.dialogs.Take(id, a)
	if err != nil {
		return err
	}
	if a.Stop {
		h.log.Info("page dialogs stopped for this page until it loads again", "dialog", id)
	}
	onMain(func() { f(a) })
	return nil
}
