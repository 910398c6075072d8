package profiles

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kevinburke/ssh_config"
)

// sshConfigResolver resolves aliases with github.com/kevinburke/ssh_config,
// reading only the given file (and what it Includes by absolute path; the
// library resolves relative Includes against the real home directory).
type sshConfigResolver struct{ cfg *ssh_config.Config }

func newSSHConfigResolver(t *testing.T, path string) *sshConfigResolver {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		t.Fatalf("ssh_config.Decode: %v", err)
	}
	return &sshConfigResolver{cfg: cfg}
}

func (r *sshConfigResolver) Resolve(alias string) (Resolved, error) {
	get := func(key string) string {
		v, _ := r.cfg.Get(alias, key)
		return v
	}
	res := Resolved{HostName: get("HostName"), User: get("User"), ProxyJump: get("ProxyJump")}
	if res.HostName == "" {
		res.HostName = alias
	}
	if p := get("Port"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return Resolved{}, fmt.Errorf("port %q: %w", p, err)
		}
		res.Port = n
	}
	ids, _ := r.cfg.GetAll(alias, "IdentityFile")
	res.IdentityFiles = ids
	return res, nil
}

// mapResolver is a fake: fixed answers, an error for unknown aliases.
type mapResolver map[string]Resolved

func (m mapResolver) Resolve(alias string) (Resolved, error) {
	r, ok := m[alias]
	if !ok {
		return Resolved{}, fmt.Errorf("alias %s: cannot resolve", alias)
	}
	return r, nil
}

type wantCand struct {
	alias string
	file  string // relative to the test dir
	line  int
	res   Resolved
	err   bool // ResolveError expected
}

var importCases = []struct {
	name     string
	files    map[string]string // relative path -> content; "{{dir}}" = test dir
	resolver mapResolver       // nil = resolve with ssh_config
	want     []wantCand
}{
	{
		name: "basic",
		files: map[string]string{"config": `# my servers
Host gpu
    HostName gpu.example.com
    User alice
    Port 2222
    IdentityFile ~/.ssh/id_gpu

Host db
    HostName 10.0.0.5

Host *
    User fallback
`},
		want: []wantCand{
			{alias: "gpu", file: "config", line: 2, res: Resolved{HostName: "gpu.example.com", User: "alice", Port: 2222, IdentityFiles: []string{"~/.ssh/id_gpu"}}},
			{alias: "db", file: "config", line: 8, res: Resolved{HostName: "10.0.0.5", User: "fallback"}},
		},
	},
	{
		// "*" on the first line matches every alias, so all get User u.
		name: "wildcards and negations",
		files: map[string]string{"config": `Host a b* !c *.corp web? *
    User u
Host *
    Port 2200
Host !x
Host  =  eq1   eq2
Host "quoted" "two words"
Host a
Match host foo
    User m
`},
		want: []wantCand{
			{alias: "a", file: "config", line: 1, res: Resolved{HostName: "a", User: "u", Port: 2200}},
			{alias: "eq1", file: "config", line: 6, res: Resolved{HostName: "eq1", User: "u", Port: 2200}},
			{alias: "eq2", file: "config", line: 6, res: Resolved{HostName: "eq2", User: "u", Port: 2200}},
			{alias: "quoted", file: "config", line: 7, res: Resolved{HostName: "quoted", User: "u", Port: 2200}},
		},
	},
	{
		name: "ProxyJump",
		files: map[string]string{"config": `Host inner
    HostName 192.168.1.10
    ProxyJump jumper@bastion.example.com:2222,second
Host direct
    ProxyJump none
Host bastion.example.com
    User jumper
`},
		want: []wantCand{
			{alias: "inner", file: "config", line: 1, res: Resolved{HostName: "192.168.1.10", ProxyJump: "jumper@bastion.example.com:2222,second"}},
			{alias: "direct", file: "config", line: 4, res: Resolved{HostName: "direct", ProxyJump: "none"}},
			{alias: "bastion.example.com", file: "config", line: 6, res: Resolved{HostName: "bastion.example.com", User: "jumper"}},
		},
	},
	{
		name: "Include absolute glob, nested, first wins",
		files: map[string]string{
			"config": `Include {{dir}}/conf.d/*.conf
Host top
    HostName top.example.com
Host dup
    HostName from-top
`,
			"conf.d/10-work.conf": `Include {{dir}}/nested/inner
Host work1 work2
    User worker
`,
			"conf.d/20-home.conf": `Host home
    HostName home.lan
Host dup
    HostName from-include
`,
			"conf.d/ignored.txt": "Host notincluded\n",
			"nested/inner":       "Host deep\n    Port 2022\n",
		},
		want: []wantCand{
			{alias: "deep", file: "nested/inner", line: 1, res: Resolved{HostName: "deep", Port: 2022}},
			{alias: "work1", file: "conf.d/10-work.conf", line: 2, res: Resolved{HostName: "work1", User: "worker"}},
			{alias: "work2", file: "conf.d/10-work.conf", line: 2, res: Resolved{HostName: "work2", User: "worker"}},
			{alias: "home", file: "conf.d/20-home.conf", line: 1, res: Resolved{HostName: "home.lan"}},
			{alias: "dup", file: "conf.d/20-home.conf", line: 3, res: Resolved{HostName: "from-include"}},
			{alias: "top", file: "config", line: 2, res: Resolved{HostName: "top.example.com"}},
		},
	},
	{
		name: "Include relative to the config dir and ~, loops and missing files",
		files: map[string]string{
			"config": `Include conf.d/*
Include ~/home-extra missing-file nothing/*
Host main
`,
			"conf.d/a":   "Include conf.d/b\nHost fromA\n",
			"conf.d/b":   "Include conf.d/a\nHost fromB\n", // a loop: a -> b -> a
			"home-extra": "Host fromHome\n",
		},
		resolver: mapResolver{
			"fromA":    {HostName: "a.example.com"},
			"fromB":    {HostName: "b.example.com", User: "bee"},
			"fromHome": {HostName: "home.example.com"},
		},
		want: []wantCand{
			{alias: "fromB", file: "conf.d/b", line: 2, res: Resolved{HostName: "b.example.com", User: "bee"}},
			{alias: "fromA", file: "conf.d/a", line: 2, res: Resolved{HostName: "a.example.com"}},
			{alias: "fromHome", file: "home-extra", line: 1, res: Resolved{HostName: "home.example.com"}},
			{alias: "main", file: "config", line: 3, err: true},
		},
	},
	{
		name:  "no hosts",
		files: map[string]string{"config": "# nothing\nHost *\n  User x\n\n"},
	},
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		content = strings.ReplaceAll(content, "{{dir}}", dir)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImportCandidates(t *testing.T) {
	for _, tc := range importCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("HOME", dir)
			writeTree(t, dir, tc.files)
			cfg := filepath.Join(dir, "config")
			var r Resolver = tc.resolver
			if tc.resolver == nil {
				r = newSSHConfigResolver(t, cfg)
			}
			got, err := ImportCandidates(cfg, r)
			if err != nil {
				t.Fatalf("ImportCandidates: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d candidates %v, want %d", len(got), aliases(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Alias != w.alias || g.SourceFile != filepath.Join(dir, filepath.FromSlash(w.file)) || g.Line != w.line {
					t.Errorf("candidate %d = %s %s:%d, want %s %s:%d", i, g.Alias, g.SourceFile, g.Line, w.alias, w.file, w.line)
				}
				if (g.ResolveError != "") != w.err {
					t.Errorf("%s: ResolveError = %q", g.Alias, g.ResolveError)
				}
				if !w.err && !reflect.DeepEqual(g.Resolved, w.res) {
					t.Errorf("%s resolved to %+v, want %+v", g.Alias, g.Resolved, w.res)
				}
			}
		})
	}
}

func aliases(cs []Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Alias)
	}
	return out
}

func TestImportCandidatesErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ImportCandidates(filepath.Join(dir, "none"), mapResolver{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing config: %v", err)
	}
	writeTree(t, dir, map[string]string{"config": "Include [\nHost a\n"})
	if _, err := ImportCandidates(filepath.Join(dir, "config"), mapResolver{}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad Include pattern: %v", err)
	}
}

func TestCandidateToProfile(t *testing.T) {
	c := Candidate{Alias: "inner", Resolved: Resolved{
		HostName: "192.168.1.10", User: "alice", Port: 0,
		IdentityFiles: []string{"~/.ssh/id_inner", "~/.ssh/id_rsa"},
		ProxyJump:     "jumper@bastion:2222, second",
	}}
	p := c.ToProfile(true)
	want := Profile{Name: "inner", Host: "192.168.1.10", Port: 22, User: "alice", KeyPath: "~/.ssh/id_inner",
		JumpHosts: []string{"jumper@bastion:2222", "second"}, SSHConfigAlias: "inner"}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("ToProfile(true) = %+v\nwant %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("imported profile invalid: %v", err)
	}
	unlinked := c.ToProfile(false)
	if unlinked.SSHConfigAlias != "" || unlinked.Host != "192.168.1.10" {
		t.Fatalf("ToProfile(false) = %+v", unlinked)
	}
	none := Candidate{Alias: "x", Resolved: Resolved{ProxyJump: "none", Port: 2200}}.ToProfile(false)
	if none.JumpHosts != nil || none.Host != "x" || none.Port != 2200 {
		t.Fatalf("ProxyJump none / empty HostName: %+v", none)
	}

	// Importing into a store and marking what is already there.
	s := mustOpen(t, testPath(t))
	if _, err := s.Add(p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(Profile{Name: "manual", Host: "db.example.com", Port: 22, User: "pg"}); err != nil {
		t.Fatal(err)
	}
	cands := []Candidate{
		{Alias: "inner"},
		{Alias: "db", Resolved: Resolved{HostName: "DB.example.com", User: "pg"}},
		{Alias: "other", Resolved: Resolved{HostName: "db.example.com", User: "root"}},
	}
	MarkImported(cands, s.List())
	if got := []bool{cands[0].AlreadyImported, cands[1].AlreadyImported, cands[2].AlreadyImported}; !slices.Equal(got, []bool{true, true, false}) {
		t.Fatalf("AlreadyImported = %v", got)
	}
}

func TestParseConfigLine(t *testing.T) {
	cases := []struct {
		line string
		kw   string
		args []string
	}{
		{"Host a b", "host", []string{"a", "b"}},
		{"  host\ta\t", "host", []string{"a"}},
		{"Host=a", "host", []string{"a"}},
		{"Host = a b", "host", []string{"a", "b"}},
		{`Host "a b" c`, "host", []string{"a b", "c"}},
		{"Host a # comment b", "host", []string{"a"}},
		{"Host a#b", "host", []string{"a#b"}},
		{"# Host a", "", nil},
		{"", "", nil},
		{"HOST", "host", nil},
		{"==", "", nil},
		{`Host "" a "unterminated`, "host", []string{"a", "unterminated"}},
		{"Include ~/.ssh/conf.d/*  other", "include", []string{"~/.ssh/conf.d/*", "other"}},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			kw, args := parseConfigLine(tc.line)
			if kw != tc.kw || !slices.Equal(args, tc.args) {
				t.Fatalf("got %q %q, want %q %q", kw, args, tc.kw, tc.args)
			}
		})
	}
}

// FuzzHostLine: any line parses without panicking; every alias taken from a
// Host line is one concrete host name, and writing the aliases back as a
// Host line gives them again.
func FuzzHostLine(f *testing.F) {
	for _, tc := range importCases {
		for _, content := range tc.files {
			for _, line := range strings.Split(content, "\n") {
				f.Add(line)
			}
		}
	}
	for _, s := range []string{"Host a b* !c *.corp", `Host "x y" z`, "Host=a", "host\t\"unterminated", "Host a # c", "Host \xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		kw, args := parseConfigLine(line)
		if kw != strings.ToLower(kw) {
			t.Fatalf("keyword %q not lower-case", kw)
		}
		for _, a := range args {
			if a == "" {
				t.Fatalf("empty argument from %q", line)
			}
			if strings.Contains(a, `"`) {
				t.Fatalf("argument %q keeps a quote", a)
			}
		}
		if kw == "" && len(args) > 0 {
			t.Fatalf("arguments %q without a keyword from %q", args, line)
		}
		if kw != "host" {
			return
		}
		hosts := ConcreteHosts(args)
		for _, h := range hosts {
			if h == "" || strings.ContainsAny(h, "*?!,=\"") || strings.ContainsFunc(h, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' }) {
				t.Fatalf("alias %q from %q is not a concrete host", h, line)
			}
		}
		if len(hosts) == 0 {
			return
		}
		kw2, args2 := parseConfigLine("Host " + strings.Join(hosts, " "))
		if kw2 != "host" || !slices.Equal(ConcreteHosts(args2), hosts) {
			t.Fatalf("%q -> %q, written back -> %q", line, hosts, ConcreteHosts(args2))
		}
	})
}

// FuzzImportFile: a whole config file (without Include, which would read
// arbitrary files) lists each alias once, from a Host line of that file.
func FuzzImportFile(f *testing.F) {
	for _, tc := range importCases {
		for _, content := range tc.files {
			f.Add(content)
		}
	}
	f.Fuzz(func(t *testing.T, content string) {
		if strings.Contains(strings.ToLower(content), "include") {
			t.Skip("Include would read files outside the test")
		}
		dir := t.TempDir()
		cfg := filepath.Join(dir, "config")
		if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ImportCandidates(cfg, mapResolver{})
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(content, "\n")
		seen := map[string]bool{}
		for _, c := range got {
			if seen[c.Alias] {
				t.Fatalf("alias %q listed twice", c.Alias)
			}
			seen[c.Alias] = true
			if c.Line < 1 || c.Line > len(lines) || !strings.Contains(lines[c.Line-1], c.Alias) && !strings.Contains(lines[c.Line-1], `"`) {
				t.Fatalf("alias %q not on its line %d", c.Alias, c.Line)
			}
			if c.ResolveError == "" {
				t.Fatalf("the empty resolver resolved %q", c.Alias)
			}
		}
	})
}
