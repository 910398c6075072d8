//go:build desktop && linux

// The Linux window's app views (see appviews.go): one WebKitWebView per app
// tab, on the window's default web context (so the persistent cookie jar and
// the on-disk localStorage/IndexedDB of cookies_linux.go), laid over Wails'
// own view in a GtkOverlay. Every GTK call runs on GTK's main thread.

package appview

/*
#cgo linux pkg-config: gtk+-3.0 webkit2gtk-4.0

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <gtk/gtk.h>
#include <gdk/gdkkeysyms.h>
#include <webkit2/webkit2.h>
#include "tools.h"

extern void portholeMainCall(uintptr_t h);
extern void portholeAppViewChanged(char *id, char *title, char *uri, int back, int fwd, int loading);
extern void portholeAppViewShortcut(char *id, char *action);
extern void portholeAppViewOpen(char *id, char *uri);
extern int portholeAppViewDecide(char *id, char *uri, int user);
extern void portholeAppViewScroll(uintptr_t token, char *result);

static gboolean ph_idle(gpointer p) {
	portholeMainCall((uintptr_t)p);
	return G_SOURCE_REMOVE;
}

// ph_invoke runs Go's function h on GTK's main thread (in order).
static void ph_invoke(uintptr_t h) { g_main_context_invoke(NULL, ph_idle, (gpointer)h); }

static GtkWidget *ph_overlay = NULL;
static WebKitWebView *ph_shell = NULL; // Wails' own view
static GHashTable *ph_views = NULL;    // id -> WebKitWebView*

static WebKitWebView *ph_find_webview(GtkWidget *w) {
	if (WEBKIT_IS_WEB_VIEW(w)) return WEBKIT_WEB_VIEW(w);
	WebKitWebView *found = NULL;
	if (GTK_IS_CONTAINER(w)) {
		GList *kids = gtk_container_get_children(GTK_CONTAINER(w));
		for (GList *l = kids; l != NULL && found == NULL; l = l->next) found = ph_find_webview(GTK_WIDGET(l->data));
		g_list_free(kids);
	}
	return found;
}

// Each view gets exactly the rectangle the shell gave it (a view's natural
// size is its page's, which GtkOverlay would otherwise use).
static gboolean ph_child_position(GtkOverlay *o, GtkWidget *w, GdkRectangle *out, gpointer d) {
	GdkRectangle *r = g_object_get_data(G_OBJECT(w), "porthole-rect");
	if (r == NULL) return FALSE;
	*out = *r;
	return TRUE;
}

// ph_install wraps Wails' web view in a GtkOverlay (once). NULL or a message.
static const char *ph_install(void) {
	if (ph_overlay != NULL) return NULL;
	WebKitWebView *wv = NULL;
	GList *tops = gtk_window_list_toplevels();
	for (GList *l = tops; l != NULL && wv == NULL; l = l->next) wv = ph_find_webview(GTK_WIDGET(l->data));
	g_list_free(tops);
	if (wv == NULL) return "the window has no web view";
	GtkWidget *parent = gtk_widget_get_parent(GTK_WIDGET(wv));
	if (parent == NULL || !GTK_IS_BOX(parent)) return "the web view is not in a GtkBox";
	g_object_ref(wv);
	gtk_container_remove(GTK_CONTAINER(parent), GTK_WIDGET(wv));
	ph_overlay = gtk_overlay_new();
	g_signal_connect(ph_overlay, "get-child-position", G_CALLBACK(ph_child_position), NULL);
	gtk_container_add(GTK_CONTAINER(ph_overlay), GTK_WIDGET(wv));
	g_object_unref(wv);
	gtk_box_pack_start(GTK_BOX(parent), ph_overlay, TRUE, TRUE, 0);
	gtk_widget_show_all(ph_overlay);
	gtk_widget_grab_focus(GTK_WIDGET(wv));
	ph_shell = wv;
	ph_views = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	return NULL;
}

static void ph_report(WebKitWebView *v) {
	char *id = g_object_get_data(G_OBJECT(v), "porthole-id");
	if (id == NULL) return;
	const char *title = webkit_web_view_get_title(v);
	const char *uri = webkit_web_view_get_uri(v);
	portholeAppViewChanged(id, (char *)(title ? title : ""), (char *)(uri ? uri : ""),
		webkit_web_view_can_go_back(v), webkit_web_view_can_go_forward(v), webkit_web_view_is_loading(v));
}

static void ph_on_notify(GObject *o, GParamSpec *p, gpointer d) { ph_report(WEBKIT_WEB_VIEW(o)); }


// A shell shortcut pressed in an app goes to the shell, as in a browser.
static gboolean ph_on_key(GtkWidget *w, GdkEventKey *e, gpointer d) {
	GdkModifierType mods = e->state & gtk_accelerator_get_default_mod_mask();
	const char *action = NULL;
	guint k = gdk_keyval_to_lower(e->keyval);
	if (mods == GDK_CONTROL_MASK) {
		switch (k) {
		case GDK_KEY_t: action = "new-tab"; break;
		case GDK_KEY_w: action = "close-tab"; break;
		case GDK_KEY_r: action = "reload"; break;
		case GDK_KEY_l: action = "focus-url"; break;
		case GDK_KEY_q: action = "quit"; break;
		case GDK_KEY_comma: action = "settings"; break;
		case GDK_KEY_Tab: case GDK_KEY_Page_Down: action = "next-tab"; break;
		case GDK_KEY_ISO_Left_Tab: case GDK_KEY_Page_Up: action = "prev-tab"; break;
		case GDK_KEY_f: action = "find"; break;
		case GDK_KEY_g: action = "find-next"; break;
		case GDK_KEY_p: action = "print"; break;
		case GDK_KEY_k: action = "palette"; break;
		case GDK_KEY_plus: case GDK_KEY_equal: case GDK_KEY_KP_Add: action = "zoom-in"; break;
		case GDK_KEY_minus: case GDK_KEY_KP_Subtract: action = "zoom-out"; break;
		case GDK_KEY_0: case GDK_KEY_KP_0: action = "zoom-reset"; break;
		}
	} else if (mods == 0 && k == GDK_KEY_F5) {
		action = "reload";
	} else if (mods == GDK_MOD1_MASK && (k == GDK_KEY_Left || k == GDK_KEY_Right)) {
		action = k == GDK_KEY_Left ? "back" : "forward";
	} else if (mods == (GDK_CONTROL_MASK | GDK_SHIFT_MASK)) {
		switch (k) {
		case GDK_KEY_t: action = "reopen-tab"; break;
		case GDK_KEY_Tab: case GDK_KEY_ISO_Left_Tab: action = "prev-tab"; break;
		case GDK_KEY_g: action = "find-previous"; break;
		case GDK_KEY_plus: case GDK_KEY_equal: action = "zoom-in"; break;
		case GDK_KEY_p: action = "palette"; break;
		}
	}
	if (action == NULL) return FALSE;
	char *id = g_object_get_data(G_OBJECT(w), "porthole-id");
	portholeAppViewShortcut(id ? id : "", (char *)action);
	return TRUE;
}

// window.open and target=_blank: the shell decides (same endpoint: this tab;
// elsewhere: the system browser).
static GtkWidget *ph_on_create(WebKitWebView *v, WebKitNavigationAction *a, gpointer d) {
	WebKitURIRequest *r = webkit_navigation_action_get_request(a);
	char *id = g_object_get_data(G_OBJECT(v), "porthole-id");
	const char *uri = r ? webkit_uri_request_get_uri(r) : NULL;
	if (uri != NULL && id != NULL) portholeAppViewOpen(id, (char *)uri);
	return NULL;
}

// Navigations (the main frame's and its frames', redirects included) stay on
// the view's own origin; Go decides (ui.DecideAppViewNavigation).
static gboolean ph_on_decide(WebKitWebView *v, WebKitPolicyDecision *d, WebKitPolicyDecisionType t, gpointer x) {
	if (t != WEBKIT_POLICY_DECISION_TYPE_NAVIGATION_ACTION) return FALSE;
	WebKitNavigationAction *a = webkit_navigation_policy_decision_get_navigation_action(WEBKIT_NAVIGATION_POLICY_DECISION(d));
	WebKitURIRequest *r = webkit_navigation_action_get_request(a);
	const char *uri = r ? webkit_uri_request_get_uri(r) : NULL;
	char *id = g_object_get_data(G_OBJECT(v), "porthole-id");
	if (uri != NULL && id != NULL && portholeAppViewDecide(id, (char *)uri, webkit_navigation_action_is_user_gesture(a))) return FALSE;
	webkit_policy_decision_ignore(d);
	return TRUE;
}

// No page reads or writes the clipboard from script; the inspector only if the user turned it on.
static void ph_set_inspector(WebKitWebView *v, int on) {
	WebKitSettings *s = webkit_web_view_get_settings(v);
	webkit_settings_set_javascript_can_access_clipboard(s, FALSE);
	webkit_settings_set_enable_developer_extras(s, on);
	if (!on) webkit_web_inspector_close(webkit_web_view_get_inspector(v));
}

static void ph_inspector_each(gpointer k, gpointer v, gpointer on) { ph_set_inspector(WEBKIT_WEB_VIEW(v), GPOINTER_TO_INT(on)); }
static void ph_inspector_all(int on) { if (ph_views) g_hash_table_foreach(ph_views, ph_inspector_each, GINT_TO_POINTER(on)); }

// A view that was discarded scrolls back where it was once its page loaded
// (in Porthole's own script world: the page's globals are not used).
static void ph_on_load(WebKitWebView *v, WebKitLoadEvent e, gpointer d) {
	if (e != WEBKIT_LOAD_FINISHED) return;
	char *js = g_object_steal_data(G_OBJECT(v), "porthole-restore");
	if (js == NULL) return;
	webkit_web_view_evaluate_javascript(v, js, -1, "porthole", NULL, NULL, NULL, NULL);
	g_free(js);
}

static WebKitWebView *ph_get(const char *id);

// ph_create makes view id. related (or NULL) is a view of the same app: the
// new view shares its web process (one process per app, not per tab). The
// shell's view is never related to an app's, so no binding is ever shared.
static void ph_create(const char *id, int inspector, const char *related, int gpu) {
	WebKitWebView *rel = related ? ph_get(related) : NULL;
	// The default web context: the window's cookies and storage.
	GtkWidget *w = rel ? webkit_web_view_new_with_related_view(rel) : webkit_web_view_new();
	WebKitWebView *v = WEBKIT_WEB_VIEW(w);
	// Software-GL compositing costs ~150 MB per web process (gpu.go).
	webkit_settings_set_hardware_acceleration_policy(webkit_web_view_get_settings(v),
		gpu ? WEBKIT_HARDWARE_ACCELERATION_POLICY_ON_DEMAND : WEBKIT_HARDWARE_ACCELERATION_POLICY_NEVER);
	g_object_set_data_full(G_OBJECT(v), "porthole-id", g_strdup(id), g_free);
	ph_set_inspector(v, inspector);
	g_object_set_data_full(G_OBJECT(v), "porthole-rect", g_new0(GdkRectangle, 1), g_free);
	g_signal_connect(v, "notify::title", G_CALLBACK(ph_on_notify), NULL);
	g_signal_connect(v, "notify::uri", G_CALLBACK(ph_on_notify), NULL);
	g_signal_connect(v, "notify::is-loading", G_CALLBACK(ph_on_notify), NULL);
	g_signal_connect(v, "key-press-event", G_CALLBACK(ph_on_key), NULL);
	g_signal_connect(v, "create", G_CALLBACK(ph_on_create), NULL);
	g_signal_connect(v, "decide-policy", G_CALLBACK(ph_on_decide), NULL);
	g_signal_connect(v, "load-changed", G_CALLBACK(ph_on_load), NULL);
	ph_tools_attach(v);
	gtk_overlay_add_overlay(GTK_OVERLAY(ph_overlay), w);
	gtk_widget_hide(w);
	g_hash_table_insert(ph_views, g_strdup(id), v);
}

static WebKitWebView *ph_get(const char *id) {
	return ph_views ? (WebKitWebView *)g_hash_table_lookup(ph_views, id) : NULL;
}

static void ph_load(const char *id, const char *uri) {
	WebKitWebView *v = ph_get(id);
	if (v) webkit_web_view_load_uri(v, uri);
}

static void ph_reload(const char *id) {
	WebKitWebView *v = ph_get(id);
	if (v) webkit_web_view_reload(v);
}

static void ph_nav(const char *id, int op) {
	WebKitWebView *v = ph_get(id);
	if (!v) return;
	if (op == 1) webkit_web_view_go_back(v);
	else if (op == 2) webkit_web_view_go_forward(v);
	else if (op == 3) webkit_web_view_stop_loading(v);
}

static void ph_destroy(const char *id) {
	WebKitWebView *v = ph_get(id);
	if (!v) return;
	g_hash_table_remove(ph_views, id);
	gtk_widget_destroy(GTK_WIDGET(v));
}

static void ph_place(const char *id, int show, int x, int y, int w, int h) {
	WebKitWebView *v = ph_get(id);
	if (!v) return;
	GtkWidget *g = GTK_WIDGET(v);
	if (!show || w <= 0 || h <= 0) {
		if (gtk_widget_has_focus(g) && ph_shell) gtk_widget_grab_focus(GTK_WIDGET(ph_shell));
		gtk_widget_hide(g);
		return;
	}
	GdkRectangle *r = g_object_get_data(G_OBJECT(g), "porthole-rect");
	if (r != NULL) {
		r->x = x;
		r->y = y;
		r->width = w;
		r->height = h;
	}
	gtk_widget_show(g);
	gtk_widget_queue_resize(g);
}

static void ph_set_restore(const char *id, const char *js) {
	WebKitWebView *v = ph_get(id);
	if (v) g_object_set_data_full(G_OBJECT(v), "porthole-restore", g_strdup(js), g_free);
}

static void ph_scroll_done(GObject *o, GAsyncResult *r, gpointer d) {
	GError *err = NULL;
	JSCValue *val = webkit_web_view_evaluate_javascript_finish(WEBKIT_WEB_VIEW(o), r, &err);
	char *s = NULL;
	if (val != NULL) {
		if (jsc_value_is_string(val)) s = jsc_value_to_string(val);
		g_object_unref(val);
	}
	if (err != NULL) g_error_free(err);
	portholeAppViewScroll((uintptr_t)d, s ? s : "");
	g_free(s);
}

// ph_ask_scroll asks view id's page where it is scrolled to; the answer goes
// to portholeAppViewScroll with token. 0: no such view.
static int ph_ask_scroll(const char *id, const char *js, uintptr_t token) {
	WebKitWebView *v = ph_get(id);
	if (!v) return 0;
	webkit_web_view_evaluate_javascript(v, js, -1, "porthole", NULL, NULL, ph_scroll_done, (gpointer)token);
	return 1;
}

// ph_info is view id's title and URL (g_free both; NULL: no view).
static void ph_info(const char *id, char **title, char **uri) {
	WebKitWebView *v = ph_get(id);
	*title = v && webkit_web_view_get_title(v) ? g_strdup(webkit_web_view_get_title(v)) : NULL;
	*uri = v && webkit_web_view_get_uri(v) ? g_strdup(webkit_web_view_get_uri(v)) : NULL;
}

static void ph_focus_shell(void) {
	if (ph_shell) gtk_widget_grab_focus(GTK_WIDGET(ph_shell));
}
*/
import "C"

import (
	"log/slog"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/porthole-app/porthole/backend/browseropen"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/settings"
	"github.com/porthole-app/porthole/backend/ui"
)

// gtkAppViews is the ui.AppViewHost of the Linux window. Its maps are only
// touched on GTK's main thread.
type gtkAppViews struct {
	log *slog.Logger
	bus *events.Bus

	loaded  map[string]string // id -> URL last loaded on the shell's word
	reloads map[string]int
	failed  atomic.Bool
	onFail  func() // tells the shell the views failed (it opens apps in the browser)

	inspector atomic.Int32 // 1: settings.Settings.Inspector is on
	gpu       int          // 1: composite with OpenGL (GPU, gpu.go)
	unsub     func()
	opens     chan string // pages that leave their app's origin, for the browser

	events chan ui.AppViewEvent
	done   chan struct{}
	stop   sync.Once

	// Discarding background views (discard.go); GTK's main thread only,
	// but tick (how often to look, ns), read by sleepLoop.
	now        func() time.Time
	sleep      *sleeper
	tick       atomic.Int64
	retick     chan struct{} // the tick changed: sleepLoop starts a new wait
	visible    string
	origins    map[string]string         // live view id -> its app's origin (views of one app are related)
	asleep     map[string]keptTab        // discarded views
	discarding map[string]pendingDiscard // views whose page was asked for its scroll position
	tokens     uint64

	tools // downloads, find, zoom, print, the pages' dialogs (tools_linux.go)
}

// The one host: GTK's callbacks find it here.
var (
	appViewsMu sync.Mutex
	appViews   *gtkAppViews
)

// New makes the window's app view host; GTK work waits for
// the first Sync (after the window exists). onFail runs if the window
// cannot take views.
func New(log *slog.Logger, bus *events.Bus, onFail func()) ui.AppViewHost {
	h := &gtkAppViews{
		log: log.With("component", "appviews"), bus: bus, onFail: onFail,
		loaded: map[string]string{}, reloads: map[string]int{},
		events: make(chan ui.AppViewEvent, 256), done: make(chan struct{}),
		opens: make(chan string, 16),
		now:   time.Now, sleep: newSleeper(settings.DefaultTabDiscard),
		retick: make(chan struct{}, 1), origins: map[string]string{}, asleep: map[string]keptTab{}, discarding: map[string]pendingDiscard{},
	}
	if GPU() {
		h.gpu = 1
	}
	h.tick.Store(int64(h.sleep.Tick()))
	h.initTools()
	appViewsMu.Lock()
	appViews = h
	appViewsMu.Unlock()
	h.unsub = events.Subscribe(bus, settings.Topic, func(s settings.Settings) {
		on := int32(0)
		if s.Inspector {
			on = 1
		}
		if h.inspector.Swap(on) != on {
			onMain(func() { C.ph_inspector_all(C.int(on)) })
		}
		after := s.TabDiscard()
		if tick := int64(newSleeper(after).Tick()); h.tick.Swap(tick) != tick {
			select {
			case h.retick <- struct{}{}:
			default:
			}
		}
		onMain(func() { h.sleep.SetAfter(after) })
	})
	go h.deliver()
	go h.sleepLoop()
	return h
}

// deliver publishes the views' events off GTK's thread (publishing reaches
// the shell through Wails, which must not be waited on from that thread).
func (h *gtkAppViews) deliver() {
	for {
		select {
		case e := <-h.events:
			events.Publish(h.bus, ui.TopicAppViews, e)
		case u := <-h.opens:
			// Another site (a link out of the app): its URL is the site's
			// own, with nothing of Porthole's in it, so it goes as it is.
			if err := browseropen.Open(u); err != nil {
				h.log.Warn("could not open a page an app view left for in the browser", "err", err)
			}
		case l := <-h.dlPub:
			events.Publish(h.bus, ui.TopicDownloads, l)
		case l := <-h.dgPub:
			events.Publish(h.bus, ui.TopicPageDialogs, l)
		case <-h.done:
			return
		}
	}
}

func (h *gtkAppViews) emit(e ui.AppViewEvent) {
	select {
	case h.events <- e:
	default:
		h.log.Warn("app view event dropped: the shell is not reading them", "view", e.ID)
	}
}

// Close stops delivering events (the window is gone).
func (h *gtkAppViews) Close() {
	h.stop.Do(func() { h.unsub(); close(h.done); h.closeTools() })
}

// onMain runs f on GTK's main thread, after what was queued before it.
func onMain(f func()) {
	C.ph_invoke(C.uintptr_t(cgo.NewHandle(f)))
}

//export portholeMainCall
func portholeMainCall(h C.uintptr_t) {
	hh := cgo.Handle(h)
	f := hh.Value().(func())
	hh.Delete()
	f()
}

func withCString(s string, f func(*C.char)) {
	c := C.CString(s)
	defer C.free(unsafe.Pointer(c))
	f(c)
}

func (h *gtkAppViews) Available() bool { return !h.failed.Load() }

func (h *gtkAppViews) Sync(spec ui.AppViewSpec) {
	onMain(func() { h.apply(spec) })
}

// apply runs on GTK's main thread.
func (h *gtkAppViews) apply(spec ui.AppViewSpec) {
	if h.failed.Load() {
		return
	}
	if msg := C.ph_install(); msg != nil {
		h.failed.Store(true)
		h.log.Error("app tabs cannot get views of their own; apps open in the system browser", "err", C.GoString(msg))
		if h.onFail != nil {
			go h.onFail()
		}
		return
	}
	C.ph_downloads_install()
	want := make(map[string]bool, len(spec.Views))
	h.sleep.Saw(spec, h.now())
	h.visible = spec.Visible
	for _, v := range spec.Views {
		want[v.ID] = true
		if v.ID == spec.Visible {
			delete(h.discarding, v.ID) // it shows: the page's answer is ignored
		}
		if k, ok := h.asleep[v.ID]; ok { // discarded: made again when it shows
			h.loaded[v.ID], h.reloads[v.ID] = v.URL, v.Reloads
			if v.ID == spec.Visible {
				h.wake(v.ID, k, v.URL)
			}
			continue
		}
		withCString(v.ID, func(id *C.char) {
			last, exists := h.loaded[v.ID]
			reloads := h.reloads[v.ID]
			h.loaded[v.ID], h.reloads[v.ID] = v.URL, v.Reloads // the origin rule's before the load
			switch {
			case !exists:
				h.create(v.ID, v.URL, "")
				h.log.Debug("app view opened", "view", v.ID)
			case last != v.URL:
				withCString(v.URL, func(u *C.char) { C.ph_load(id, u) })
			case v.Reloads > reloads:
				C.ph_reload(id)
			}
		})
	}
	for id := range h.loaded {
		if !want[id] {
			h.dialogs.DropView(id) // its page's open dialogs are cancelled first
			delete(h.finds, id)
			withCString(id, func(c *C.char) { C.ph_destroy(c) })
			delete(h.loaded, id)
			delete(h.reloads, id)
			delete(h.origins, id)
			delete(h.asleep, id)
			delete(h.discarding, id)
		}
	}
	h.log.Debug("app views", "views", len(spec.Views), "visible", spec.Visible, "x", spec.X, "y", spec.Y, "w", spec.W, "h", spec.H)
	for _, v := range spec.Views {
		show := C.int(0)
		if v.ID == spec.Visible {
			show = 1
		}
		withCString(v.ID, func(id *C.char) {
			C.ph_place(id, show, C.int(spec.X), C.int(spec.Y), C.int(spec.W), C.int(spec.H))
		})
	}
}

func (h *gtkAppViews) Nav(id string, n ui.AppViewNav) {
	onMain(func() { withCString(id, func(c *C.char) { C.ph_nav(c, C.int(n)) }) })
}

func (h *gtkAppViews) FocusShell() {
	onMain(func() { C.ph_focus_shell() })
}

func currentAppViews() *gtkAppViews {
	appViewsMu.Lock()
	defer appViewsMu.Unlock()
	return appViews
}

//export portholeAppViewChanged
func portholeAppViewChanged(id, title, uri *C.char, back, fwd, loading C.int) {
	if h := currentAppViews(); h != nil {
		h.emit(ui.AppViewEvent{ID: C.GoString(id), Title: C.GoString(title), URL: C.GoString(uri),
			CanGoBack: back != 0, CanGoForward: fwd != 0, Loading: loading != 0})
	}
}

//export portholeAppViewShortcut
func portholeAppViewShortcut(id, action *C.char) {
	h := currentAppViews()
	if h == nil {
		return
	}
	view, a := C.GoString(id), C.GoString(action)
	if h.localShortcut(view, a) { // zoom and print act on the view itself
		return
	}
	h.emit(ui.AppViewEvent{ID: view, Shortcut: a})
}

//export portholeAppViewOpen
func portholeAppViewOpen(id, uri *C.char) {
	h := currentAppViews()
	if h == nil {
		return
	}
	// A page opening windows in a loop opens a few, then nothing.
	if !h.popups.Allow(C.GoString(id), time.Now()) {
		h.log.Debug("app view window refused: too many in a short while", "view", C.GoString(id))
		return
	}
	h.emit(ui.AppViewEvent{ID: C.GoString(id), Open: C.GoString(uri)})
}

// portholeAppViewDecide runs on GTK's main thread: 1 lets a view navigate,
// 0 cancels (and maybe opens the page in the system browser).
//
//export portholeAppViewDecide
func portholeAppViewDecide(id, uri *C.char, user C.int) C.int {
	h := currentAppViews()
	if h == nil {
		return 0
	}
	target := C.GoString(uri)
	switch d := ui.DecideAppViewNavigation(h.loaded[C.GoString(id)], target, user != 0); d {
	case ui.NavAllow:
		return 1
	case ui.NavOpenInBrowser:
		select {
		case h.opens <- target:
		default: // a page opening windows in a loop: drop the rest
		}
	}
	h.log.Debug("app view navigation cancelled: another origin", "view", C.GoString(id))
	return 0
}

// viewPtr is view id's WebKitWebView (nil: none). GTK's main thread only.
func viewPtr(id string) (v *C.WebKitWebView) {
	withCString(id, func(c *C.char) { v = C.ph_get(c) })
	return v
}

// pendingDiscard is a discard waiting for the page's scroll position.
type pendingDiscard struct {
	token uint64
	since time.Time
}

// create makes view id and loads url in it; restore (or "") runs once the
// page has loaded. A view of an app that has a view already is related to
// it: they share one web process. GTK's main thread.
func (h *gtkAppViews) create(id, url, restore string) {
	origin := originOf(url)
	related := ""
	for other, o := range h.origins {
		if o == origin && other != id {
			related = other
			break
		}
	}
	withCString(id, func(c *C.char) {
		var rel *C.char
		if related != "" {
			rel = C.CString(related)
			defer C.free(unsafe.Pointer(rel))
		}
		C.ph_create(c, C.int(h.inspector.Load()), rel, C.int(h.gpu))
		h.origins[id] = origin
		h.applyZoom(id)
		if restore != "" {
			withCString(restore, func(js *C.char) { C.ph_set_restore(c, js) })
		}
		withCString(url, func(u *C.char) { C.ph_load(c, u) })
	})
}

// sleepLoop asks, every tick, on GTK's main thread, which views to discard.
// It ends with the host (Close).
func (h *gtkAppViews) sleepLoop() {
	t := time.NewTimer(time.Duration(h.tick.Load()))
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-h.retick:
			t.Stop()
			t.Reset(time.Duration(h.tick.Load()))
		case <-t.C:
			onMain(h.discardDue)
			t.Reset(time.Duration(h.tick.Load()))
		}
	}
}

// discardDue starts discarding the views that are due: it asks each page
// where it is scrolled to (portholeAppViewScroll finishes). A page that does
// not answer in discardAnswerWait is discarded without. GTK's main thread.
func (h *gtkAppViews) discardDue() {
	now := h.now()
	for id, p := range h.discarding {
		if now.Sub(p.since) >= discardAnswerWait {
			h.discard(id, 0, 0)
		}
	}
	due := h.sleep.Due(now, func(id string) bool {
		_, pending := h.discarding[id]
		_, live := h.origins[id]
		return live && !pending
	})
	for _, id := range due {
		h.tokens++
		h.discarding[id] = pendingDiscard{token: h.tokens, since: now}
		asked := C.int(0)
		withCString(id, func(c *C.char) {
			withCString(scrollScript, func(js *C.char) { asked = C.ph_ask_scroll(c, js, C.uintptr_t(h.tokens)) })
		})
		if asked == 0 {
			delete(h.discarding, id)
		}
	}
}

// portholeAppViewScroll is a page's answer to ph_ask_scroll: the view is
// discarded now, unless it showed meanwhile (its token is gone).
//
//export portholeAppViewScroll
func portholeAppViewScroll(token C.uintptr_t, result *C.char) {
	h := currentAppViews()
	if h == nil {
		return
	}
	for id, p := range h.discarding {
		if p.token != uint64(token) {
			continue
		}
		x, y, err := parseScroll(C.GoString(result))
		if err != nil {
			h.log.Debug("app view discarded without its scroll position", "view", id, "err", err)
		}
		h.discard(id, x, y)
		return
	}
}

// discard ends view id's web view, keeping its page, title and scroll
// position. GTK's main thread.
func (h *gtkAppViews) discard(id string, x, y int) {
	delete(h.discarding, id)
	if id == h.visible {
		return
	}
	var title, uri *C.char
	withCString(id, func(c *C.char) { C.ph_info(c, &title, &uri) })
	k := keptTab{Title: C.GoString(title), URL: C.GoString(uri), ScrollX: x, ScrollY: y, Shell: h.loaded[id]}
	C.g_free(C.gpointer(title))
	C.g_free(C.gpointer(uri))
	h.asleep[id] = k
	h.dialogs.DropView(id)
	delete(h.finds, id)
	withCString(id, func(c *C.char) { C.ph_destroy(c) })
	delete(h.origins, id)
	h.log.Debug("app view discarded to save memory", "view", id)
	h.emit(ui.AppViewEvent{ID: id, Title: k.Title, URL: k.URL, Life: ui.AppViewDiscarded})
}

// wake makes discarded view id again, at its kept page and scroll position
// (or at shell, the URL the shell gives the tab now, if that changed).
func (h *gtkAppViews) wake(id string, k keptTab, shell string) {
	u, scroll := wakeURL(k, shell)
	restore := ""
	if scroll {
		restore = restoreScript(k.ScrollX, k.ScrollY)
	}
	delete(h.asleep, id)
	h.create(id, u, restore)
	h.sleep.Woke(id, h.now())
	h.log.Debug("discarded app view made again", "view", id)
	h.emit(ui.AppViewEvent{ID: id, Title: k.Title, URL: u, Life: ui.AppViewRestored})
}
