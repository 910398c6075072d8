package main

/*
#cgo pkg-config: x11
#include <stdlib.h>
#include <string.h>
#include <X11/Xlib.h>

// ph_close asks window w to close as a window manager's close button does:
// a WM_DELETE_WINDOW client message (WM_PROTOCOLS). 0 on success.
static int ph_close(const char *display, unsigned long w) {
	Display *d = XOpenDisplay(display);
	if (d == NULL) return 1;
	XEvent ev;
	memset(&ev, 0, sizeof ev);
	ev.xclient.type = ClientMessage;
	ev.xclient.window = (Window)w;
	ev.xclient.message_type = XInternAtom(d, "WM_PROTOCOLS", False);
	ev.xclient.format = 32;
	ev.xclient.data.l[0] = XInternAtom(d, "WM_DELETE_WINDOW", False);
	ev.xclient.data.l[1] = CurrentTime;
	Status ok = XSendEvent(d, (Window)w, False, NoEventMask, &ev);
	XSync(d, False);
	XCloseDisplay(d);
	return ok ? 0 : 2;
}
*/
import "C"

import (
	"fmt"
	"strconv"
	"unsafe"
)

// closeWindow sends win (an xdotool window id) WM_DELETE_WINDOW on display,
// as the title bar's close button (or Alt+F4) does through a window manager;
// Xvfb has none.
func closeWindow(display, win string) error {
	id, err := strconv.ParseUint(win, 10, 64)
	if err != nil {
		return fmt.Errorf("window id %q: %w", win, err)
	}
	cd := C.CString(display)
	defer C.free(unsafe.Pointer(cd))
	if rc := C.ph_close(cd, C.ulong(id)); rc != 0 {
		return fmt.Errorf("WM_DELETE_WINDOW to %s on %s failed (%d)", win, display, int(rc))
	}
	return nil
}
