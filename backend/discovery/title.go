package discovery

import (
	"path"
	"strings"
)

// titleSep separates an app's name from what it serves.
const titleSep = " — "

// displayTitle builds the title shown on the Start page, without the port:
// "Jupyter Lab — ~/project", "TensorBoard — runs/", "Streamlit — app.py".
func displayTitle(kind Kind, proc *Process, pr *probeResult, home string) string {
	name := kind.String()
	toks := cmdTokens(proc)
	cwd := ""
	if proc != nil {
		cwd = proc.Cwd
	}
	with := func(detail string) string {
		if detail == "" {
			return name
		}
		return name + titleSep + detail
	}
	switch kind {
	case KindJupyterLab, KindJupyterNotebook, KindJupyterServer, KindJupyterKernel:
		root := cmdOption(toks, "root_dir", "notebook_dir", "notebook-dir")
		if root == "" || (!strings.HasPrefix(root, "/") && !strings.HasPrefix(root, "~")) {
			if root != "" && cwd != "" {
				root = path.Join(cwd, root)
			} else if root == "" {
				root = cwd
			}
		}
		return with(tildePath(root, home))
	case KindTensorBoard:
		dir := cmdOption(toks, "logdir", "logdir_spec")
		if dir == "" {
			return name
		}
		dir = tildePath(dir, home)
		if !strings.HasSuffix(dir, "/") && !strings.Contains(dir, ",") && !strings.Contains(dir, "://") {
			dir += "/"
		}
		return with(dir)
	case KindStreamlit:
		return with(tildePath(argAfter(toks, "run"), home))
	case KindGradio:
		return with(scriptName(toks))
	case KindMLflow, KindCodeServer:
		if kind == KindCodeServer {
			if f := lastPathArg(toks); f != "" {
				return with(tildePath(f, home))
			}
		}
		if cwd == "/" {
			cwd = ""
		}
		return with(tildePath(cwd, home))
	case KindHTTP, KindHTTPS:
		t := ""
		if pr != nil && pr.first != nil {
			t = pr.last().title
		}
		prog := programName(proc)
		switch {
		case t != "" && kind == KindHTTPS:
			return with(t)
		case t != "":
			return t
		case prog != "" && kind == KindHTTPS:
			return prog + " (HTTPS)"
		case prog != "":
			return prog
		}
		return name
	case KindNotHTTP, KindUnknown:
		if p := programName(proc); p != "" {
			return p
		}
		return name
	}
	return name
}

// tildePath shortens home to "~".
func tildePath(p, home string) string {
	home = strings.TrimSuffix(home, "/")
	if p == "" || home == "" {
		return p
	}
	if p == home {
		return "~"
	}
	if strings.HasPrefix(p, home+"/") {
		return "~" + p[len(home):]
	}
	return p
}

// argAfter returns the first non-option argument after word ("run").
func argAfter(toks []string, word string) string {
	for i, t := range toks {
		if t != word {
			continue
		}
		for _, a := range toks[i+1:] {
			if !strings.HasPrefix(a, "-") {
				return a
			}
		}
	}
	return ""
}

// lastPathArg returns the last argument that is not an option and looks
// like a path (code-server's folder).
func lastPathArg(toks []string) string {
	for i := len(toks) - 1; i >= 1; i-- {
		t := toks[i]
		if strings.HasPrefix(t, "-") {
			return ""
		}
		if strings.HasPrefix(t, "/") || strings.HasPrefix(t, "~") || strings.HasPrefix(t, ".") {
			if i > 0 && strings.HasPrefix(toks[i-1], "--") && !strings.Contains(toks[i-1], "=") {
				return "" // the value of an option such as --config
			}
			return t
		}
	}
	return ""
}

// interpreters run a script or module named by a later argument.
var interpreters = []string{"python", "node", "nodejs", "ruby", "perl", "java", "bun", "deno", "rscript", "php", "uvicorn", "gunicorn", "flask"}

func isInterpreter(base string) bool {
	b := strings.ToLower(base)
	for _, i := range interpreters {
		if b == i || strings.HasPrefix(b, i) && strings.Trim(b[len(i):], "0123456789.") == "" {
			return true
		}
	}
	return false
}

// scriptName returns what an interpreter runs: "app.py" for
// "python app.py", "http.server" for "python -m http.server 8000".
func scriptName(toks []string) string {
	if len(toks) == 0 {
		return ""
	}
	if !isInterpreter(path.Base(toks[0])) {
		return ""
	}
	for i := 1; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t == "-m" || t == "-jar":
			if i+1 < len(toks) {
				return path.Base(toks[i+1])
			}
			return ""
		case t == "-c" || t == "-e":
			return ""
		case strings.HasPrefix(t, "-"):
			continue
		}
		return path.Base(t)
	}
	return ""
}

// programName names a process for generic titles: "python3 — app.py",
// "node — server.js", "caddy".
func programName(p *Process) string {
	if p == nil {
		return ""
	}
	toks := cmdTokens(p)
	prog := p.Name
	if prog == "" && len(toks) > 0 {
		prog = path.Base(toks[0])
	}
	if s := scriptName(toks); s != "" && s != prog {
		if prog == "" {
			return s
		}
		return prog + titleSep + s
	}
	return prog
}
