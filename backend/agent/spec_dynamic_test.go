package agent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/forwarder"
)

func TestDynamicForwardSpec(t *testing.T) {
	dyn := ForwardSpec{Dynamic: &forwarder.DynamicSpec{BindAddress: "127.0.0.1", BindPort: 1080}}
	if dyn.Kind() != ForwardDynamic || dyn.Kind().String() != "dynamic" || dyn.Key() != "dynamic:127.0.0.1:1080" {
		t.Fatalf("kind %v, key %q", dyn.Kind(), dyn.Key())
	}
	if ep := dyn.Endpoint(); ep != (forwarder.LocalSpec{BindAddress: "127.0.0.1", BindPort: 1080}) || dyn.BindPort() != 1080 {
		t.Fatalf("endpoint %+v", ep)
	}
	moved := dyn.withBindPort(2000)
	if moved.Dynamic.BindPort != 2000 || dyn.Dynamic.BindPort != 1080 {
		t.Fatal("withBindPort changed the original's DynamicSpec")
	}
	if !sameButPort(dyn, moved) || sameSpec(dyn, moved) || sameSpec(dyn, ForwardSpec{Local: dyn.Endpoint()}) {
		t.Fatal("sameSpec/sameButPort do not tell dynamic forwards apart by port and kind")
	}
	if c := dyn.clone(); c.Dynamic == dyn.Dynamic {
		t.Fatal("clone shares the DynamicSpec")
	}

	var k ForwardKind
	if err := k.UnmarshalText([]byte("dynamic")); err != nil || k != ForwardDynamic {
		t.Fatalf("UnmarshalText(dynamic) = %v, %v", k, err)
	}
	if err := k.UnmarshalText([]byte("socks")); err == nil || !strings.Contains(err.Error(), "local, web, dynamic") {
		t.Fatalf("UnmarshalText(socks) = %v; want the kinds listed", err)
	}
	b, err := json.Marshal(dyn)
	if err != nil {
		t.Fatal(err)
	}
	var back ForwardSpec
	if err := json.Unmarshal(b, &back); err != nil || !sameSpec(back, dyn) {
		t.Fatalf("JSON round trip %s = %+v, %v", b, back, err)
	}

	for _, tc := range []struct {
		name string
		f    ForwardSpec
		bad  string
	}{
		{"ok", dyn, ""},
		{"port zero picks one", ForwardSpec{Dynamic: &forwarder.DynamicSpec{}}, ""},
		{"bad port", ForwardSpec{Dynamic: &forwarder.DynamicSpec{BindPort: -1}}, "out of range"},
		{"with a local spec", ForwardSpec{Local: forwarder.LocalSpec{TargetHost: "h", TargetPort: 1}, Dynamic: &forwarder.DynamicSpec{}}, "a local and a dynamic"},
		{"with a web spec", ForwardSpec{Web: &forwarder.WebSpec{}, Dynamic: &forwarder.DynamicSpec{}}, "a web and a dynamic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Validate()
			if tc.bad == "" && err != nil || tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)) {
				t.Fatalf("Validate = %v, want %q", err, tc.bad)
			}
		})
	}
}
