// The app views' browser-tab tools (tools.c): downloads, find, zoom, print,
// the page's dialogs and HTTP authentication. GTK's main thread only.
#ifndef PORTHOLE_APPVIEW_TOOLS_H
#define PORTHOLE_APPVIEW_TOOLS_H

#include <stdint.h>
#include <webkit2/webkit2.h>

void ph_tools_attach(WebKitWebView *v);
void ph_downloads_install(void);
void ph_download_cancel(uintptr_t d);
void ph_download_release(uintptr_t d);
void ph_find(WebKitWebView *v, const char *text, int op);
void ph_zoom_set(WebKitWebView *v, double level);
void ph_print(WebKitWebView *v);
void ph_dialog_answer(uintptr_t d, int ok, const char *text);
void ph_auth_answer(uintptr_t r, int ok, const char *user, const char *password);

#endif
