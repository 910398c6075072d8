package profiles

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// Resolved is what an ssh_config resolver says about one alias.
type Resolved struct {
	HostName string `json:"hostName"`
	User     string `json:"user"`
	Port     int    `json:"port"` // 0 = not set (22)
	// IdentityFiles are the alias's IdentityFile entries in order; leave out
	// OpenSSH's default identities (ToProfile uses the first as KeyPath).
	IdentityFiles []string `json:"identityFiles"`
	ProxyJump     string   `json:"proxyJump"` // "host1,user@host2:2222"; "" or "none" = direct
	// LocalForwards, RemoteForwards and DynamicForwards are the values of
	// the alias's LocalForward, RemoteForward and DynamicForward lines, in
	// order ("8080 localhost:80"); ToProfile makes them rules.
	LocalForwards   []string `json:"localForwards,omitempty"`
	RemoteForwards  []string `json:"remoteForwards,omitempty"`
	DynamicForwards []string `json:"dynamicForwards,omitempty"`
}

// ForwardRules turns the forward lines of r into rules (ParseSSHForward),
// in the order LocalForward, RemoteForward, DynamicForward; each line it
// cannot hold is left out and named in skipped, with the reason.
func (r Resolved) ForwardRules() (rules []ForwardRule, skipped []string) {
	for _, group := range []struct {
		kind    ForwardKind
		keyword string
		values  []string
	}{
		{ForwardLocal, "LocalForward", r.LocalForwards},
		{ForwardRemote, "RemoteForward", r.RemoteForwards},
		{ForwardDynamic, "DynamicForward", r.DynamicForwards},
	} {
		for _, v := range group.values {
			rule, err := ParseSSHForward(group.kind, v)
			if err != nil {
				skipped = append(skipped, group.keyword+" "+v+": "+err.Error())
				continue
			}
			rules = append(rules, rule)
		}
	}
	return rules, skipped
}

// Resolver resolves an ssh_config alias the way ssh would (the real one is
// in backend/sshconn, which this package must not import).
type Resolver interface {
	Resolve(alias string) (Resolved, error)
}

// Candidate is one concrete Host entry of the ssh config, offered for import.
type Candidate struct {
	Alias      string   `json:"alias"`
	Resolved   Resolved `json:"resolved"`
	SourceFile string   `json:"sourceFile"` // the file with the Host line
	Line       int      `json:"line"`       // 1-based line of the Host line
	// ResolveError is set when the resolver failed; Resolved is then empty.
	ResolveError string `json:"resolveError,omitempty"`
	// AlreadyImported is set by MarkImported.
	AlreadyImported bool `json:"alreadyImported"`
}

// maxIncludeDepth matches OpenSSH's READCONF_MAX_DEPTH.
const maxIncludeDepth = 16

// ImportCandidates lists the concrete Host entries of the ssh config file
// at configPath and of the files it Includes, in file order, each alias once
// (the first Host line naming it wins, as in ssh), and resolves each through r.
//
// A Host line's wildcard patterns ("*", "*.corp", "web?") and negations
// ("!bastion") are not hosts and are skipped: "Host a b*" yields "a". Match
// blocks are skipped. Include is followed (globs, several per line, nested
// up to 16 levels, each file once); a relative Include path is relative to
// the directory of configPath (~/.ssh for ~/.ssh/config, as in OpenSSH), and
// "~/" is the home directory. A missing configPath is an error wrapping
// fs.ErrNotExist; a missing or unreadable Included file is skipped like ssh
// does for globs that match nothing, except that an unreadable one is an error.
//
// A resolver error does not stop the listing: it is reported in the
// candidate's ResolveError.
func ImportCandidates(configPath string, r Resolver) ([]Candidate, error) {
	w := &configWalker{
		base:    filepath.Dir(configPath),
		visited: map[string]bool{},
		seen:    map[string]bool{},
	}
	if err := w.walk(configPath, 0); err != nil {
		return nil, err
	}
	for i := range w.out {
		c := &w.out[i]
		res, err := r.Resolve(c.Alias)
		if err != nil {
			c.ResolveError = err.Error()
			continue
		}
		c.Resolved = res
	}
	return w.out, nil
}

// MarkImported sets AlreadyImported on every candidate that an existing
// profile links to (SSHConfigAlias) or that has the same host, port and
// user as an existing profile.
func MarkImported(cands []Candidate, existing []Profile) {
	for i := range cands {
		c := &cands[i]
		c.AlreadyImported = false
		for _, p := range existing {
			if p.SSHConfigAlias != "" && p.SSHConfigAlias == c.Alias {
				c.AlreadyImported = true
				break
			}
			if c.ResolveError == "" && c.Resolved.HostName != "" &&
				strings.EqualFold(p.Host, c.Resolved.HostName) &&
				p.Port == portOrDefault(c.Resolved.Port) && p.User == c.Resolved.User {
				c.AlreadyImported = true
				break
			}
		}
	}
}

// ToProfile turns the candidate into a new profile (no ID: Store.Add
// assigns one), with its forward lines as rules (Resolved.ForwardRules). With linkAlias the profile keeps SSHConfigAlias = Alias, so
// the alias is resolved again at each connection; the resolved values are
// filled in either way, for display.
func (c Candidate) ToProfile(linkAlias bool) Profile {
	p := Profile{
		Name: c.Alias,
		Host: c.Resolved.HostName,
		Port: portOrDefault(c.Resolved.Port),
		User: c.Resolved.User,
	}
	if p.Host == "" {
		p.Host = c.Alias
	}
	if len(c.Resolved.IdentityFiles) > 0 {
		p.KeyPath = c.Resolved.IdentityFiles[0]
	}
	if pj := strings.TrimSpace(c.Resolved.ProxyJump); pj != "" && !strings.EqualFold(pj, "none") {
		for _, hop := range strings.Split(pj, ",") {
			if hop = strings.TrimSpace(hop); hop != "" {
				p.JumpHosts = append(p.JumpHosts, hop)
			}
		}
	}
	p.Forwards, _ = c.Resolved.ForwardRules()
	for i := range p.Forwards {
		p.Forwards[i].ID = NewID()
	}
	if linkAlias {
		p.SSHConfigAlias = c.Alias
	}
	return p
}

func portOrDefault(p int) int {
	if p == 0 {
		return DefaultPort
	}
	return p
}

// configWalker reads the Host and Include lines itself:
// github.com/kevinburke/ssh_config parses Include'd files but keeps them
// unexported (it cannot list their Host entries) and resolves relative
// Include paths against the real home directory, which tests cannot move.
type configWalker struct {
	base    string          // directory for relative Include paths
	visited map[string]bool // files already read
	seen    map[string]bool // aliases already listed
	out     []Candidate
}

func (w *configWalker) walk(path string, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("ssh config %s: Include nested more than %d levels deep; is there a loop?", path, maxIncludeDepth)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("ssh config %s: %w", path, err)
	}
	if w.visited[abs] {
		return nil
	}
	w.visited[abs] = true
	data, err := os.ReadFile(abs)
	if err != nil {
		if depth > 0 && errors.Is(err, fs.ErrNotExist) {
			return nil // removed between the glob and the read
		}
		return fmt.Errorf("reading ssh config %s: %w", path, err)
	}
	for i, line := range strings.Split(string(data), "\n") {
		kw, args := parseConfigLine(line)
		switch kw {
		case "host":
			for _, alias := range ConcreteHosts(args) {
				if w.seen[alias] {
					continue
				}
				w.seen[alias] = true
				w.out = append(w.out, Candidate{Alias: alias, SourceFile: abs, Line: i + 1})
			}
		case "include":
			for _, pattern := range args {
				files, err := w.includeFiles(pattern)
				if err != nil {
					return fmt.Errorf("ssh config %s line %d: Include %s: %w", path, i+1, pattern, err)
				}
				for _, f := range files {
					if st, err := os.Stat(f); err == nil && st.IsDir() {
						continue
					}
					if err := w.walk(f, depth+1); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func (w *configWalker) includeFiles(pattern string) ([]string, error) {
	switch {
	case pattern == "~" || strings.HasPrefix(pattern, "~/"):
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, err
		}
		pattern = filepath.Join(home, pattern[1:])
	case !filepath.IsAbs(pattern):
		pattern = filepath.Join(w.base, pattern)
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("bad pattern: %w", err)
	}
	slices.Sort(files)
	return files, nil
}

// parseConfigLine splits one ssh_config line into its lower-cased keyword
// and its arguments ("Keyword arg…" or "Keyword=arg…"; double quotes group
// an argument; a '#' at the start of a word begins a comment). An empty or
// comment line gives "".
func parseConfigLine(line string) (string, []string) {
	line = strings.TrimRightFunc(line, unicode.IsSpace)
	line = strings.TrimLeftFunc(line, unicode.IsSpace)
	if line == "" || line[0] == '#' {
		return "", nil
	}
	end := strings.IndexFunc(line, func(r rune) bool { return unicode.IsSpace(r) || r == '=' })
	if end == 0 {
		return "", nil // no keyword
	}
	if end < 0 {
		return strings.ToLower(line), nil
	}
	kw := strings.ToLower(line[:end])
	rest := strings.TrimLeftFunc(line[end:], unicode.IsSpace)
	if strings.HasPrefix(rest, "=") {
		rest = rest[1:]
	}
	return kw, splitConfigArgs(rest)
}

// splitConfigArgs splits on unquoted whitespace; "…" groups (an
// unterminated quote runs to the end of the line); an unquoted '#' at the
// start of a word ends the line. Empty arguments ("") are dropped.
func splitConfigArgs(s string) []string {
	var args []string
	var cur strings.Builder
	inWord, inQuote := false, false
	flush := func() {
		if cur.Len() > 0 {
			args = append(args, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	for _, r := range s {
		switch {
		case inQuote:
			if r == '"' {
				inQuote = false
			} else {
				cur.WriteRune(r)
			}
		case r == '"':
			inQuote, inWord = true, true
		case unicode.IsSpace(r):
			if inWord {
				flush()
			}
		case r == '#' && !inWord:
			return args
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	flush()
	return args
}

// ConcreteHosts returns the patterns of a Host line that name one host:
// not wildcards ('*', '?'), not negations ('!'), not empty, no whitespace,
// control characters, ',' or '='; in order, without duplicates.
func ConcreteHosts(patterns []string) []string {
	var out []string
	for _, p := range patterns {
		if p == "" || strings.ContainsAny(p, "*?!,=") ||
			strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar }) ||
			slices.Contains(out, p) {
			continue
		}
		out = append(out, p)
	}
	return out
}
