package localnats

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterTimeout bounds how long a cluster may take to elect its JetStream
// meta leader and bring every node up to date.
const clusterTimeout = 30 * time.Second

// Cluster is n JetStream servers routed together on loopback, for R3
// streams and failover tests.
type Cluster struct {
	nodes   []*Server
	tempDir string // removed by Close; "" when opts.StoreDir was given
}

// StartCluster starts n (≥ 2) clustered JetStream servers named n1…nN (or
// ServerName-n1…), each with its own store under opts.StoreDir (or a
// temporary directory), and waits until they agree on a meta leader.
// opts.Port is ignored: every node gets its own free port.
func StartCluster(n int, opts Options) (*Cluster, error) {
	if n < 2 {
		return nil, fmt.Errorf("localnats: a cluster needs at least 2 nodes, got %d", n)
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	c := &Cluster{}
	base := opts.StoreDir
	if base == "" {
		dir, err := os.MkdirTemp("", "localnats-cluster-")
		if err != nil {
			return nil, err
		}
		base, c.tempDir = dir, dir
	}
	// Every node lists every route, so all ports must be known before the
	// first node starts; a restarted node then finds its peers by itself.
	ports, err := freePorts(host, 2*n)
	if err != nil {
		c.Close()
		return nil, err
	}
	var routes []*url.URL
	for i := 0; i < n; i++ {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort(host, strconv.Itoa(ports[n+i]))})
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("n%d", i+1)
		if opts.ServerName != "" {
			name = opts.ServerName + "-" + name
		}
		node := &Server{
			host:       host,
			port:       ports[i],
			storeDir:   filepath.Join(base, name),
			maxPayload: opts.MaxPayload,
			name:       name,
			log:        opts.Log,
			cluster:    &clusterConf{name: "localnats", port: ports[n+i], routes: routes},
		}
		c.nodes = append(c.nodes, node)
		if err := node.start(); err != nil {
			c.Close()
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
	}
	if err := c.WaitReady(clusterTimeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// freePorts reserves k distinct free ports by holding all listeners open at
// once (closing each before the next would allow repeats).
func freePorts(host string, k int) ([]int, error) {
	var ports []int
	for i := 0; i < k; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// URLs returns every node's client URL, comma-separated, for nats.Connect;
// clients fail over between them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// Node returns node i (0-based).
func (c *Cluster) Node(i int) *Server { return c.nodes[i] }

// Size returns the number of nodes.
func (c *Cluster) Size() int { return len(c.nodes) }

// Kill shuts node i down; its store is kept for Restart. (An in-process
// server cannot really crash: this is a clean shutdown.)
func (c *Cluster) Kill(i int) { c.nodes[i].Shutdown() }

// Restart starts node i again on its ports and store, and waits until the
// cluster, node i included, agrees on a meta leader again.
func (c *Cluster) Restart(i int) error {
	if err := c.nodes[i].Restart(); err != nil {
		return err
	}
	return c.WaitReady(clusterTimeout)
}

// MetaLeader returns the index of the JetStream meta leader, or -1.
func (c *Cluster) MetaLeader() int {
	for i, n := range c.nodes {
		if srv := n.Server(); srv != nil && srv.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// WaitReady waits until the running nodes have one JetStream meta leader,
// the leader sees every running node as a peer, and every running node is
// current with it; only then does creating an R3 stream succeed reliably.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("localnats: cluster not ready after %v: %w", timeout, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (c *Cluster) ready() error {
	leader := c.MetaLeader()
	if leader < 0 {
		return errors.New("no JetStream meta leader")
	}
	info, err := c.nodes[leader].Server().Jsz(nil)
	if err != nil {
		return err
	}
	if info.Meta == nil {
		return errors.New("leader reports no meta cluster")
	}
	peers := map[string]bool{info.Meta.Leader: true}
	for _, p := range info.Meta.Replicas {
		if p.Current && !p.Offline {
			peers[p.Name] = true
		}
	}
	for _, n := range c.nodes {
		srv := n.Server()
		if srv == nil {
			continue
		}
		if !peers[srv.Name()] {
			return fmt.Errorf("meta leader %s does not see %s as a current peer", info.Meta.Leader, srv.Name())
		}
		if !srv.JetStreamIsCurrent() {
			return fmt.Errorf("%s is not current with the meta leader", srv.Name())
		}
	}
	return nil
}

// Close shuts every node down and removes the stores if they were
// temporary.
func (c *Cluster) Close() {
	for _, n := range c.nodes {
		n.Shutdown()
	}
	if c.tempDir != "" {
		_ = os.RemoveAll(c.tempDir)
	}
}

// StartClusterTB starts an n-node cluster for one test, failing it if that
// is impossible, and closes the cluster in tb.Cleanup.
func StartClusterTB(tb testing.TB, n int) *Cluster {
	tb.Helper()
	c, err := StartCluster(n, Options{})
	if err != nil {
		tb.Fatalf("localnats: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}
