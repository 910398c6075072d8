//go:build desktop && linux

// Persistent cookies for the Linux window (WebKitGTK). Only the desktop build
// links it; the plain build (serve, forward, agents) links no GTK/WebKit.

package appview

/*
#cgo linux pkg-config: gtk+-3.0 webkit2gtk-4.0
// The directory getters are deprecated in 2.4x but the only way to ask.
#cgo CFLAGS: -Wno-deprecated-declarations

#include <stdlib.h>
#include <gtk/gtk.h>
#include <webkit2/webkit2.h>

// porthole_web_data prepares the web context the Wails window will use and
// turns on persistent (SQLite) cookie storage in it. It runs on the thread
// that then runs GTK (the caller locks it), before wails.Run creates the
// window. It returns NULL, or a message (g_free it).
//
// Wails v2 (internal/frontend/desktop/linux/window.c, SetupWebview) creates
// its WebView with webkit_web_view_new_with_user_content_manager, so the view
// uses the default WebKitWebContext; Wails registers its wails:// scheme on
// that same context (webkit_web_context_get_default). That context is created
// here first, so the prgname it derives its data directories from is set
// before: $XDG_DATA_HOME/<prgname>/ for localStorage, IndexedDB and HSTS,
// $XDG_CACHE_HOME/<prgname>/ for the HTTP cache.
static char *porthole_web_data(const char *prgname, const char *cookies, char **localStorage, char **indexedDB) {
	*localStorage = NULL;
	*indexedDB = NULL;
	g_set_prgname(prgname);
	if (!gtk_init_check(NULL, NULL)) {
		return g_strdup("GTK could not be initialised (no display?)");
	}
	WebKitWebContext *ctx = webkit_web_context_get_default();
	if (ctx == NULL) {
		return g_strdup("WebKit has no default web context");
	}
	WebKitWebsiteDataManager *dm = webkit_web_context_get_website_data_manager(ctx);
	if (dm != NULL) {
		if (webkit_website_data_manager_is_ephemeral(dm)) {
			return g_strdup("the web context is ephemeral: WebKit keeps nothing on disk");
		}
		*localStorage = g_strdup(webkit_website_data_manager_get_local_storage_directory(dm));
		*indexedDB = g_strdup(webkit_website_data_manager_get_indexeddb_directory(dm));
	}
	WebKitCookieManager *cm = webkit_web_context_get_cookie_manager(ctx);
	if (cm == NULL) {
		return g_strdup("WebKit has no cookie manager");
	}
	webkit_cookie_manager_set_persistent_storage(cm, cookies, WEBKIT_COOKIE_PERSISTENT_STORAGE_SQLITE);
	// Every app runs in an iframe of wails://wails, so for WebKit its
	// cookies are third-party, and WebKitGTK's default policy
	// (ACCEPT_NO_THIRD_PARTY) would drop them all: no app could stay logged
	// in. The window only frames Porthole's own endpoints; accept them.
	webkit_cookie_manager_set_accept_policy(cm, WEBKIT_COOKIE_POLICY_ACCEPT_ALWAYS);
	return NULL;
}

static char *porthole_user_data_dir(void) { return g_strdup(g_get_user_data_dir()); }
*/
import "C"

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"
)

// webProgramName is the GLib program name: WebKit keeps the window's web
// data under $XDG_DATA_HOME/porthole (it must match the Wails
// options.Linux.ProgramName, which Wails sets only after creating the view).
const webProgramName = "porthole"

// webDataDir is where the window's web data lives: $XDG_DATA_HOME/porthole
// (~/.local/share/porthole), the directory WebKitGTK uses for the default
// context's localStorage and IndexedDB; cookies.sqlite goes next to them.
func webDataDir() string {
	p := C.porthole_user_data_dir()
	defer C.g_free(C.gpointer(p))
	return filepath.Join(C.GoString(p), webProgramName)
}

// SetupWebData turns on persistent cookies for the window: WebKitGTK keeps
// cookies in memory unless the app names a cookie file, and Wails v2 does
// not, so without this every app in a tab would be logged out at every
// start. It also accepts the apps' cookies, which WebKit sees as
// third-party (the apps are framed by wails://wails). It must run on the goroutine that then calls wails.Run: it locks
// that goroutine to its OS thread, which becomes GTK's (and WebKit's) main
// thread, exactly as Wails' own GTK initialisation does.
func SetupWebData(log *slog.Logger) error {
	runtime.LockOSThread() // Wails locks it too; GTK must stay on this thread
	// What Wails does before gtk_init, so that GTK comes up the same way.
	if os.Getenv("GDK_BACKEND") == "" {
		if st := os.Getenv("XDG_SESSION_TYPE"); st == "" || st == "unspecified" || st == "x11" {
			_ = os.Setenv("GDK_BACKEND", "x11")
		}
	}
	dir := webDataDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the web data directory %s: %w", dir, err)
	}
	cookies := filepath.Join(dir, "cookies.sqlite")
	// The cookies are the apps' logins: only the user may read them. An
	// empty file is an empty SQLite database; WebKit keeps the mode.
	if f, err := os.OpenFile(cookies, os.O_CREATE|os.O_RDONLY, 0o600); err == nil {
		_ = f.Close()
	}
	if err := os.Chmod(cookies, 0o600); err != nil {
		log.Warn("cannot make the cookie file private", "path", cookies, "err", err)
	}
	cPrg, cCookies := C.CString(webProgramName), C.CString(cookies)
	defer C.free(unsafe.Pointer(cPrg))
	defer C.free(unsafe.Pointer(cCookies))
	var ls, idb *C.char
	msg := C.porthole_web_data(cPrg, cCookies, &ls, &idb)
	defer C.g_free(C.gpointer(ls))
	defer C.g_free(C.gpointer(idb))
	if msg != nil {
		defer C.g_free(C.gpointer(msg))
		return fmt.Errorf("%w: %s", errWebData, C.GoString(msg))
	}
	log.Info("web data kept on disk", "cookies", cookies, "localStorage", C.GoString(ls), "indexedDB", C.GoString(idb))
	return nil
}

var errWebData = errors.New("cannot keep the window's cookies on disk")
