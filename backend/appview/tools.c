//go:build desktop && linux

// The app views' browser-tab tools; see tools.h and tools_linux.go.

#include <stdlib.h>
#include <string.h>
#include <gtk/gtk.h>
#include <webkit2/webkit2.h>
#include "tools.h"
#include "_cgo_export.h"

static char *view_id(WebKitWebView *v) {
	return v ? (char *)g_object_get_data(G_OBJECT(v), "porthole-id") : NULL;
}

// ---- downloads ----

static const char *dl_id(WebKitDownload *d) { return g_object_get_data(G_OBJECT(d), "porthole-dl"); }

static gboolean on_decide_destination(WebKitDownload *d, gchar *suggested, gpointer x) {
	WebKitWebView *v = webkit_download_get_web_view(d);
	char *id = view_id(v);
	WebKitURIRequest *req = webkit_download_get_request(d);
	const char *uri = req ? webkit_uri_request_get_uri(req) : "";
	char *dlid = NULL;
	char *temp = portholeDownloadBegin(id ? id : "", (char *)(uri ? uri : ""), suggested ? suggested : "", (uintptr_t)d, &dlid);
	if (dlid != NULL) g_object_set_data_full(G_OBJECT(d), "porthole-dl", dlid, free);
	if (temp == NULL) {
		g_object_set_data(G_OBJECT(d), "porthole-failed", GINT_TO_POINTER(1));
		webkit_download_cancel(d);
		return TRUE;
	}
	char *dest = g_filename_to_uri(temp, NULL, NULL);
	free(temp);
	g_object_ref(d); // Go holds it (to cancel it) until "finished": ph_download_release
	webkit_download_set_allow_overwrite(d, TRUE); // Porthole made the temporary file
	webkit_download_set_destination(d, dest);
	g_free(dest);
	return TRUE;
}

static void on_received(WebKitDownload *d, guint64 len, gpointer x) {
	const char *id = dl_id(d);
	if (id == NULL) return;
	WebKitURIResponse *r = webkit_download_get_response(d);
	guint64 total = r ? webkit_uri_response_get_content_length(r) : 0;
	portholeDownloadProgress((char *)id, (int64_t)webkit_download_get_received_data_length(d), (int64_t)total);
}

static void on_failed(WebKitDownload *d, GError *err, gpointer x) {
	const char *id = dl_id(d);
	g_object_set_data(G_OBJECT(d), "porthole-failed", GINT_TO_POINTER(1));
	if (id == NULL) return;
	int cancelled = g_error_matches(err, WEBKIT_DOWNLOAD_ERROR, WEBKIT_DOWNLOAD_ERROR_CANCELLED_BY_USER);
	portholeDownloadFailed((char *)id, cancelled, (char *)(err && err->message ? err->message : "the download failed"));
}

static void on_finished(WebKitDownload *d, gpointer x) {
	const char *id = dl_id(d);
	if (id != NULL && g_object_get_data(G_OBJECT(d), "porthole-failed") == NULL) portholeDownloadFinished((char *)id);
	if (id != NULL) portholeDownloadGone((char *)id);
}

static void on_download_started(WebKitWebContext *c, WebKitDownload *d, gpointer x) {
	g_signal_connect(d, "decide-destination", G_CALLBACK(on_decide_destination), NULL);
	g_signal_connect(d, "received-data", G_CALLBACK(on_received), NULL);
	g_signal_connect(d, "failed", G_CALLBACK(on_failed), NULL);
	g_signal_connect(d, "finished", G_CALLBACK(on_finished), NULL);
}

static int downloads_installed = 0;

void ph_downloads_install(void) {
	if (downloads_installed) return;
	downloads_installed = 1;
	g_signal_connect(webkit_web_context_get_default(), "download-started", G_CALLBACK(on_download_started), NULL);
}

void ph_download_cancel(uintptr_t d) { webkit_download_cancel(WEBKIT_DOWNLOAD((gpointer)d)); }
void ph_download_release(uintptr_t d) { g_object_unref(G_OBJECT((gpointer)d)); }

// ---- find in page ----

#define PH_FIND_OPTS (WEBKIT_FIND_OPTIONS_CASE_INSENSITIVE | WEBKIT_FIND_OPTIONS_WRAP_AROUND)
#define PH_FIND_MAX 1000 // appview.FindMax

// report: 0 found-text, 1 counted-matches, 2 failed-to-find-text (appview.FindReport).
static void found(WebKitFindController *fc, WebKitWebView *v, guint n, int report) {
	char *id = view_id(v);
	const char *text = webkit_find_controller_get_search_text(fc);
	// More than PH_FIND_MAX comes as G_MAXUINT: -1.
	if (id) portholeAppViewFound(id, (char *)(text ? text : ""), n > PH_FIND_MAX ? -1 : (int)n, report);
}

static void on_found(WebKitFindController *fc, guint n, gpointer v) { found(fc, WEBKIT_WEB_VIEW(v), n, 0); }
static void on_counted(WebKitFindController *fc, guint n, gpointer v) { found(fc, WEBKIT_WEB_VIEW(v), n, 1); }
static void on_not_found(WebKitFindController *fc, gpointer v) { found(fc, WEBKIT_WEB_VIEW(v), 0, 2); }

// op: 0 find, 1 next, 2 previous, 3 close.
//
// WebKit searches from the page's selection (a click in the page leaves a
// caret there), so a new search first clears it: the first match is then
// the page's first, which is what appview.FindIndex counts from. The web
// process runs the script and then the search, in the order they are sent.
// Next and previous count the matches again: the page may have changed.
void ph_find(WebKitWebView *v, const char *text, int op) {
	WebKitFindController *fc = webkit_web_view_get_find_controller(v);
	switch (op) {
	case 0:
		if (text == NULL || text[0] == 0) {
			webkit_find_controller_search_finish(fc);
			return;
		}
		webkit_web_view_evaluate_javascript(v, "getSelection().removeAllRanges()", -1, "porthole", NULL, NULL, NULL, NULL);
		webkit_find_controller_search(fc, text, PH_FIND_OPTS, PH_FIND_MAX);
		webkit_find_controller_count_matches(fc, text, PH_FIND_OPTS, PH_FIND_MAX);
		break;
	case 1:
	case 2: {
		const char *t = webkit_find_controller_get_search_text(fc);
		if (t == NULL || t[0] == 0) return;
		char *copy = g_strdup(t); // count_matches replaces the controller's copy
		if (op == 1) webkit_find_controller_search_next(fc);
		else webkit_find_controller_search_previous(fc);
		webkit_find_controller_count_matches(fc, copy, PH_FIND_OPTS, PH_FIND_MAX);
		g_free(copy);
		break;
	}
	default: webkit_find_controller_search_finish(fc); break;
	}
}

// ---- zoom and print ----

void ph_zoom_set(WebKitWebView *v, double level) { webkit_web_view_set_zoom_level(v, level); }

void ph_print(WebKitWebView *v) {
	WebKitPrintOperation *op = webkit_print_operation_new(v);
	GtkWidget *top = gtk_widget_get_toplevel(GTK_WIDGET(v));
	webkit_print_operation_run_dialog(op, GTK_IS_WINDOW(top) ? GTK_WINDOW(top) : NULL);
	g_object_unref(op);
}

// ---- the page's dialogs ----

static gboolean on_script_dialog(WebKitWebView *v, WebKitScriptDialog *d, gpointer x) {
	char *id = view_id(v);
	if (id == NULL) return FALSE;
	// A page whose dialogs were stopped: handled here and now, untouched
	// (WebKit then answers Cancel: confirm false, prompt null).
	if (portholeDialogsStopped(id)) return TRUE;
	int kind = (int)webkit_script_dialog_get_dialog_type(d);
	const char *msg = webkit_script_dialog_get_message(d);
	const char *def = kind == WEBKIT_SCRIPT_DIALOG_PROMPT ? webkit_script_dialog_prompt_get_default_text(d) : NULL;
	const char *uri = webkit_web_view_get_uri(v);
	webkit_script_dialog_ref(d); // answered later (ph_dialog_answer)
	g_object_set_data(G_OBJECT(v), "porthole-dialog-kind", GINT_TO_POINTER(kind));
	portholeScriptDialog(id, kind, (char *)(msg ? msg : ""), (char *)(def ? def : ""), (char *)(uri ? uri : ""), (uintptr_t)d);
	return TRUE;
}

void ph_dialog_answer(uintptr_t p, int ok, const char *text) {
	WebKitScriptDialog *d = (WebKitScriptDialog *)p;
	switch (webkit_script_dialog_get_dialog_type(d)) {
	case WEBKIT_SCRIPT_DIALOG_CONFIRM:
	case WEBKIT_SCRIPT_DIALOG_BEFORE_UNLOAD_CONFIRM:
		webkit_script_dialog_confirm_set_confirmed(d, ok);
		break;
	case WEBKIT_SCRIPT_DIALOG_PROMPT:
		if (ok) webkit_script_dialog_prompt_set_text(d, text ? text : "");
		break;
	default:
		break;
	}
	webkit_script_dialog_close(d);
	webkit_script_dialog_unref(d);
}

// ---- HTTP authentication ----

static gboolean on_authenticate(WebKitWebView *v, WebKitAuthenticationRequest *r, gpointer x) {
	char *id = view_id(v);
	if (id == NULL) return FALSE;
	if (webkit_authentication_request_is_for_proxy(r)) return FALSE;
	const char *host = webkit_authentication_request_get_host(r);
	const char *realm = webkit_authentication_request_get_realm(r);
	const char *uri = webkit_web_view_get_uri(v);
	WebKitCredential *prev = webkit_authentication_request_get_proposed_credential(r);
	const char *user = prev ? webkit_credential_get_username(prev) : NULL;
	g_object_ref(r); // answered later (ph_auth_answer)
	portholeAuthenticate(id, (char *)(host ? host : ""), (int)webkit_authentication_request_get_port(r),
		(char *)(realm ? realm : ""), (char *)(uri ? uri : ""), (char *)(user ? user : ""),
		webkit_authentication_request_is_retry(r), (uintptr_t)r);
	if (prev) webkit_credential_free(prev);
	return TRUE;
}

void ph_auth_answer(uintptr_t p, int ok, const char *user, const char *password) {
	WebKitAuthenticationRequest *r = (WebKitAuthenticationRequest *)p;
	if (ok) {
		WebKitCredential *c = webkit_credential_new(user ? user : "", password ? password : "", WEBKIT_CREDENTIAL_PERSISTENCE_FOR_SESSION);
		webkit_authentication_request_authenticate(r, c);
		webkit_credential_free(c);
	} else {
		webkit_authentication_request_cancel(r);
	}
	g_object_unref(r);
}

// ---- per view ----

static void on_load_changed(WebKitWebView *v, WebKitLoadEvent e, gpointer x) {
	char *id = view_id(v);
	if (id && e == WEBKIT_LOAD_COMMITTED) portholeAppViewCommitted(id);
}

void ph_tools_attach(WebKitWebView *v) {
	WebKitFindController *fc = webkit_web_view_get_find_controller(v);
	g_signal_connect(fc, "found-text", G_CALLBACK(on_found), v);
	g_signal_connect(fc, "counted-matches", G_CALLBACK(on_counted), v);
	g_signal_connect(fc, "failed-to-find-text", G_CALLBACK(on_not_found), v);
	g_signal_connect(v, "script-dialog", G_CALLBACK(on_script_dialog), NULL);
	g_signal_connect(v, "authenticate", G_CALLBACK(on_authenticate), NULL);
	g_signal_connect(v, "load-changed", G_CALLBACK(on_load_changed), NULL);
}
