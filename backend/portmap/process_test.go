package portmap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const helperEnv = "PORTMAP_TEST_HELPER_FILE"

type helperResult struct {
	Login string `json:"login"`
	Host  string `json:"host"`
	Port  int    `json:"port"`
	Local string `json:"local"`
}

// TestHelperProcess is a writer process for TestConcurrentProcesses (the
// test binary re-executed); it does nothing in a normal run.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("only run as a child of TestConcurrentProcesses")
	}
	offset, _ := strconv.Atoi(os.Getenv(helperEnv + "_OFFSET"))
	m, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	keys := testKeys("p", 3, 6)
	var out []helperResult
	for i := range keys {
		k := keys[(i+offset)%len(keys)]
		ep, err := m.Endpoint(context.Background(), k.login, k.host, k.port)
		if err != nil {
			t.Fatalf("Endpoint: %v", err)
		}
		out = append(out, helperResult{k.login, k.host, k.port, ep.String()})
	}
	b, _ := json.Marshal(out)
	fmt.Println("RESULT " + string(b))
}

// Several processes (the test binary re-executed) and this one assign the
// same endpoints at the same time through one file: they all agree.
func TestConcurrentProcesses(t *testing.T) {
	path := tempPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	type child struct {
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
	}
	var children []*child
	for i := range 3 {
		c := &child{cmd: exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")}
		c.cmd.Env = append(os.Environ(), helperEnv+"="+path, fmt.Sprintf("%s_OFFSET=%d", helperEnv, i*7))
		c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
		if err := c.cmd.Start(); err != nil {
			for _, started := range children {
				_ = started.cmd.Process.Kill()
				_ = started.cmd.Wait()
			}
			t.Fatalf("starting a writer process: %v", err)
		}
		children = append(children, c)
	}

	// This process writes too, through its own Map.
	keys := testKeys("p", 3, 6)
	m := openMap(t, path)
	mine := map[key]Endpoint{}
	var myErr error
	for i := range keys {
		k := keys[(i+3)%len(keys)]
		ep, err := m.Endpoint(ctx, k.login, k.host, k.port)
		if err != nil {
			myErr = err
			break
		}
		mine[k] = ep
	}

	results := []map[key]Endpoint{mine}
	var failures []string
	for i, c := range children {
		if err := c.cmd.Wait(); err != nil {
			failures = append(failures, fmt.Sprintf("writer %d: %v\n%s%s", i, err, c.stdout.String(), c.stderr.String()))
			continue
		}
		r, err := parseHelperOutput(c.stdout.Bytes())
		if err != nil {
			failures = append(failures, fmt.Sprintf("writer %d: %v\n%s", i, err, c.stdout.String()))
			continue
		}
		results = append(results, r)
	}
	if myErr != nil {
		t.Fatal(myErr)
	}
	if len(failures) > 0 {
		t.Fatal(strings.Join(failures, "\n"))
	}
	checkAgreement(t, path, keys, results)
}

func parseHelperOutput(out []byte) (map[key]Endpoint, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "RESULT ")
		if !ok {
			continue
		}
		var rs []helperResult
		if err := json.Unmarshal([]byte(line), &rs); err != nil {
			return nil, err
		}
		got := map[key]Endpoint{}
		for _, r := range rs {
			ap, err := netip.ParseAddrPort(r.Local)
			if err != nil {
				return nil, err
			}
			got[key{r.Login, r.Host, r.Port}] = Endpoint{IP: ap.Addr(), Port: int(ap.Port())}
		}
		return got, nil
	}
	return nil, fmt.Errorf("no RESULT line")
}
