package sshconn

// ForwardLines are the forward lines of one ssh_config destination: the
// values of its LocalForward, RemoteForward and DynamicForward lines, in
// file order ("8080 localhost:80"), unparsed (profiles.ParseSSHForward
// reads them).
type ForwardLines struct {
	Local, Remote, Dynamic []string
	// ClearAll: ClearAllForwardings yes (from -o or the config), which
	// tells ssh to drop the forward lines.
	ClearAll bool
}

// ConfigForwards returns the forward lines that apply to alias (a Host
// name, or a destination such as "user@host:port") in the config files opts
// names (every matching Host block contributes, as in ssh, where forward
// lines accumulate), and ClearAllForwardings (opts' overrides first).
func ConfigForwards(alias string, opts Options) (ForwardLines, error) {
	var out ForwardLines
	r, err := newResolver(opts)
	if err != nil {
		return out, err
	}
	if d, err := ParseDestination(alias); err == nil {
		alias = d.Host
	}
	if v, err := r.get(alias, "ClearAllForwardings", true); err != nil {
		return out, err
	} else if v != "" {
		if out.ClearAll, err = parseYesNo("ClearAllForwardings", v); err != nil {
			return out, err
		}
	}
	for _, f := range []struct {
		key string
		dst *[]string
	}{{"LocalForward", &out.Local}, {"RemoteForward", &out.Remote}, {"DynamicForward", &out.Dynamic}} {
		vs, err := r.getAll(alias, f.key, false)
		if err != nil {
			return out, err
		}
		*f.dst = vs
	}
	return out, nil
}
