// Package appview is the Linux desktop window's app views: each app tab is
// a WebKitWebView of its own laid over the shell (see backend/ui's
// appviews.go for why), with what a browser tab does besides showing a
// page: downloads, find in page, zoom, print, HTTP authentication and the
// page's alert/confirm/prompt. The GTK/WebKit part (cgo) is built only into
// the Linux desktop window (tags desktop, linux); the rest of the package
// is plain Go, tested without a display.
package appview
