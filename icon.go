//go:build desktop

package main

import _ "embed"

//go:embed build/appicon.png
var appIcon []byte
