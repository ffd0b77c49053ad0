// Command lockcheck drives etcd's Go client against one endpoint: the clientv3/concurrency recipes (Mutex,
// Election), which run on the client over KV, Watch and Lease, and the v3lock and v3election services, which
// run the same recipes on the server. It prints what it observes, one fact a line, with nothing that differs
// between two clusters (no ids, no revisions), so a test can run it against etcd 3.4 and against Meridian and
// compare the outputs. Every wait is bounded; any unexpected outcome exits with status 1 and a reason on stderr.
//
// usage: lockcheck mutex|election|services ENDPOINT
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc/status"
)

// step bounds every call and every wait.
const step = 10 * time.Second

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "lockcheck: "+format+"\n", args...)
	os.Exit(1)
}

func check(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func bounded() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), step)
	time.AfterFunc(step, cancel)
	return ctx
}

// errorOf prints the gRPC code and message of an error the test expects.
func errorOf(what string, err error) {
	if err == nil {
		fail("%s: expected an error", what)
	}
	st := status.Convert(err)
	fmt.Printf("%s: %s %q\n", what, st.Code(), st.Message())
}

// waitKeys polls until exactly n keys exist under prefix.
func waitKeys(c *clientv3.Client, prefix string, n int64) {
	deadline := time.Now().Add(step)
	for {
		resp, err := c.Get(bounded(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		check(err, "count "+prefix)
		if resp.Count == n {
			return
		}
		if time.Now().After(deadline) {
			fail("%s never held %d keys (it holds %d)", prefix, n, resp.Count)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createRevision is the create revision of key, 0 when it does not exist.
func createRevision(c *clientv3.Client, key string) int64 {
	resp, err := c.Get(bounded(), key)
	check(err, "get "+key)
	if len(resp.Kvs) == 0 {
		return 0
	}
	return resp.Kvs[0].CreateRevision
}

func session(c *clientv3.Client) *concurrency.Session {
	s, err := concurrency.NewSession(c, concurrency.WithTTL(30))
	check(err, "session")
	return s
}

// fencedPut writes value to the guarded resource only if cmp holds, and says whether it did.
func fencedPut(c *clientv3.Client, cmp clientv3.Cmp, value string) bool {
	resp, err := c.Txn(bounded()).If(cmp).Then(clientv3.OpPut("go-mutex-resource", value)).Commit()
	check(err, "fenced put")
	return resp.Succeeded
}

func mutex(c *clientv3.Client) {
	s1, s2, s3, s4 := session(c), session(c), session(c), session(c)
	m1 := concurrency.NewMutex(s1, "go-mutex")
	m2 := concurrency.NewMutex(s2, "go-mutex")
	check(m1.Lock(bounded()), "m1 lock")
	fmt.Println("m1 holds the lock")
	acquired := make(chan error, 1)
	go func() { acquired <- m2.Lock(bounded()) }()
	waitKeys(c, "go-mutex/", 2)
	select {
	case <-acquired:
		fail("m2 got the lock while m1 held it")
	default:
	}
	fmt.Println("m2 waits while m1 holds it")
	fmt.Println("m1 fenced write:", fencedPut(c, m1.IsOwner(), "m1"))
	key1 := m1.Key()
	token1 := createRevision(c, key1)
	check(m1.Unlock(bounded()), "m1 unlock")
	check(<-acquired, "m2 lock")
	fmt.Println("m2 holds the lock after m1 unlocked")
	stale := clientv3.Compare(clientv3.CreateRevision(key1), "=", token1)
	fmt.Println("m1 fenced write after its unlock:", fencedPut(c, stale, "m1-late"))
	fmt.Println("m2 fenced write:", fencedPut(c, m2.IsOwner(), "m2"))
	fmt.Println("m2's token is larger than m1's:", createRevision(c, m2.Key()) > token1)
	resp, err := c.Get(bounded(), "go-mutex-resource")
	check(err, "get resource")
	fmt.Printf("resource holds %q\n", resp.Kvs[0].Value)
	check(m2.Unlock(bounded()), "m2 unlock")

	// A holder's session closing (its lease revoked) hands the lock on.
	m3 := concurrency.NewMutex(s3, "go-mutex")
	m4 := concurrency.NewMutex(s4, "go-mutex")
	check(m3.Lock(bounded()), "m3 lock")
	go func() { acquired <- m4.Lock(bounded()) }()
	waitKeys(c, "go-mutex/", 2)
	check(s3.Close(), "close m3's session")
	check(<-acquired, "m4 lock")
	fmt.Println("m4 holds the lock after m3's session closed")
	check(m4.Unlock(bounded()), "m4 unlock")
	waitKeys(c, "go-mutex/", 0)
}

// expectObserved reads the next observed leader and prints its value.
func expectObserved(observed <-chan clientv3.GetResponse, who string) {
	select {
	case resp, ok := <-observed:
		if !ok || len(resp.Kvs) == 0 {
			fail("%s: the observer stopped", who)
		}
		fmt.Printf("%s sees leader value %q\n", who, resp.Kvs[0].Value)
	case <-time.After(step):
		fail("%s saw nothing", who)
	}
}

func election(c *clientv3.Client) {
	s1, s2, s3, s4 := session(c), session(c), session(c), session(c)
	ctx, cancel := context.WithTimeout(context.Background(), 6*step)
	defer cancel()
	observed := concurrency.NewElection(s3, "go-election").Observe(ctx)
	e1 := concurrency.NewElection(s1, "go-election")
	e2 := concurrency.NewElection(s2, "go-election")
	_, err := e1.Leader(bounded())
	errorOf("leader before any campaign", err)
	check(e1.Campaign(bounded(), "e1-first"), "e1 campaign")
	expectObserved(observed, "the observer")
	won := make(chan error, 1)
	go func() { won <- e2.Campaign(bounded(), "e2-first") }()
	waitKeys(c, "go-election/", 2)
	check(e1.Proclaim(bounded(), "e1-second"), "e1 proclaim")
	expectObserved(observed, "the observer")
	leader, err := e2.Leader(bounded())
	check(err, "leader")
	fmt.Printf("leader is %q\n", leader.Kvs[0].Value)
	oldKey, oldRev := e1.Key(), e1.Rev()
	check(e1.Resign(bounded()), "e1 resign")
	check(<-won, "e2 campaign")
	fmt.Println("e2 leads after e1 resigned")
	expectObserved(observed, "the observer")
	stale := concurrency.ResumeElection(s1, "go-election", oldKey, oldRev)
	errorOf("proclaim by the resigned leader", stale.Proclaim(bounded(), "late"))
	check(e2.Proclaim(bounded(), "e2-second"), "e2 proclaim")
	expectObserved(observed, "the observer")
	check(s2.Close(), "close e2's session")
	waitKeys(c, "go-election/", 0)
	e4 := concurrency.NewElection(s4, "go-election")
	check(e4.Campaign(bounded(), "e4"), "e4 campaign")
	expectObserved(observed, "the observer")
	check(e4.Resign(bounded()), "e4 resign")
}

func grant(c *clientv3.Client) int64 {
	g, err := c.Grant(bounded(), 60)
	check(err, "grant")
	return int64(g.ID)
}

func services(c *clientv3.Client) {
	lk := v3lockpb.NewLockClient(c.ActiveConnection())
	el := v3electionpb.NewElectionClient(c.ActiveConnection())
	g1, g2, g3 := grant(c), grant(c), grant(c)
	first, err := lk.Lock(bounded(), &v3lockpb.LockRequest{Name: []byte("go-svc"), Lease: g1})
	check(err, "lock")
	fmt.Println("the lock key is the name and the lease in hex:", string(first.Key) == fmt.Sprintf("go-svc/%x", g1))
	fmt.Println("the lock's header revision is its key's create revision:",
		first.Header.Revision == createRevision(c, string(first.Key)))
	second := make(chan error, 1)
	go func() {
		_, err := lk.Lock(bounded(), &v3lockpb.LockRequest{Name: []byte("go-svc"), Lease: g2})
		second <- err
	}()
	waitKeys(c, "go-svc/", 2)
	cctx, cancelLock := context.WithCancel(context.Background())
	quit := make(chan error, 1)
	go func() {
		_, err := lk.Lock(cctx, &v3lockpb.LockRequest{Name: []byte("go-svc"), Lease: g3})
		quit <- err
	}()
	waitKeys(c, "go-svc/", 3)
	cancelLock()
	errorOf("a cancelled lock", <-quit)
	waitKeys(c, "go-svc/", 2)
	fmt.Println("the cancelled locker's key is deleted")
	select {
	case <-second:
		fail("the second locker got the lock while the first held it")
	default:
	}
	_, err = lk.Unlock(bounded(), &v3lockpb.UnlockRequest{Key: first.Key})
	check(err, "unlock")
	check(<-second, "second lock")
	fmt.Println("the second locker holds the lock after the unlock")
	_, err = lk.Lock(bounded(), &v3lockpb.LockRequest{Name: []byte("go-svc-x"), Lease: 0x1234})
	errorOf("lock with an unknown lease", err)
	_, err = lk.Unlock(bounded(), &v3lockpb.UnlockRequest{})
	errorOf("unlock without a key", err)

	name := []byte("go-svc-e")
	_, err = el.Leader(bounded(), &v3electionpb.LeaderRequest{Name: name})
	errorOf("leader of an empty election", err)
	octx, cancelObserve := context.WithTimeout(context.Background(), 3*step)
	defer cancelObserve()
	obs, err := el.Observe(octx, &v3electionpb.LeaderRequest{Name: name})
	check(err, "observe")
	next := func() {
		resp, err := obs.Recv()
		check(err, "observe recv")
		fmt.Printf("the observe stream reports %q\n", resp.Kv.Value)
	}
	g4, g5 := grant(c), grant(c)
	camp, err := el.Campaign(bounded(), &v3electionpb.CampaignRequest{Name: name, Lease: g4, Value: []byte("v1")})
	check(err, "campaign")
	fmt.Println("the campaign's leader key has the create revision:", camp.Leader.Rev == createRevision(c, string(camp.Leader.Key)))
	next()
	_, err = el.Proclaim(bounded(), &v3electionpb.ProclaimRequest{Leader: camp.Leader, Value: []byte("v2")})
	check(err, "proclaim")
	next()
	wrong := *camp.Leader
	wrong.Rev++
	_, err = el.Proclaim(bounded(), &v3electionpb.ProclaimRequest{Leader: &wrong, Value: []byte("x")})
	errorOf("proclaim at another revision", err)
	_, err = el.Proclaim(bounded(), &v3electionpb.ProclaimRequest{Value: []byte("x")})
	errorOf("proclaim without a leader", err)
	_, err = el.Resign(bounded(), &v3electionpb.ResignRequest{Leader: &wrong})
	fmt.Println("resign at another revision succeeds:", err == nil)
	lead, err := el.Leader(bounded(), &v3electionpb.LeaderRequest{Name: name})
	check(err, "leader")
	fmt.Printf("the leader is still %q\n", lead.Kv.Value)
	_, err = el.Resign(bounded(), &v3electionpb.ResignRequest{Leader: camp.Leader})
	check(err, "resign")
	_, err = el.Campaign(bounded(), &v3electionpb.CampaignRequest{Name: name, Lease: g5, Value: []byte("v3")})
	check(err, "second campaign")
	next()
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: lockcheck mutex|election|services ENDPOINT")
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{os.Args[2]}, DialTimeout: 5 * time.Second})
	check(err, "connect")
	defer c.Close()
	switch os.Args[1] {
	case "mutex":
		mutex(c)
	case "election":
		election(c)
	case "services":
		services(c)
	default:
		fail("unknown scenario %q", os.Args[1])
	}
}
