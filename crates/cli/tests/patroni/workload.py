#!/usr/bin/python3
"""Writer and role sampler for the Patroni drills (crates/cli/tests/patroni.rs, bench/patroni-drill/run).

    workload.py --out DIR --table T --node NAME=PORT [--node ...] [--hz 10] [--rate 50]

Until its stdin ends (the caller closes it):
  - a writer inserts numbered rows (1, 2, 3, ...) into table T, one autocommit INSERT each, through whichever
    node accepts writes (libpq's target_session_attrs=read-write over every node), and appends every number
    whose COMMIT was acknowledged to DIR/acked (one per line, flushed at once);
  - one sampler per node asks `SELECT pg_is_in_recovery()` at HZ ticks a second, all on the same tick grid,
    and appends `TICK EPOCH_SECONDS NAME ROLE` to DIR/samples (ROLE: primary, replica or down).
Numbers that were sent but not acknowledged are not recorded: they may or may not have committed.
Connects as `postgres` over TCP on 127.0.0.1 with trust authentication. Needs python3-psycopg2 (a Patroni
dependency), hence /usr/bin/python3 and not whatever python3 comes first on PATH.
"""
import argparse, os, sys, threading, time

import psycopg2

stop = threading.Event()


def connect(ports, read_write):
    dsn = "host={} port={} user=postgres dbname=postgres connect_timeout=1".format(
        ",".join("127.0.0.1" for _ in ports), ",".join(str(p) for p in ports))
    if read_write:
        dsn += " target_session_attrs=read-write"
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return conn


def writer(ports, table, rate, out):
    acked = open(os.path.join(out, "acked"), "a", buffering=1)
    errors = open(os.path.join(out, "writer-errors"), "a", buffering=1)
    conn, n = None, 0
    while not stop.is_set():
        try:
            if conn is None:
                conn = connect(ports, True)
                with conn.cursor() as cur:
                    cur.execute("SET statement_timeout = '5s'")
                    cur.execute(f"CREATE TABLE IF NOT EXISTS {table} (n bigint PRIMARY KEY, at timestamptz DEFAULT now())")
            n += 1
            with conn.cursor() as cur:
                cur.execute(f"INSERT INTO {table} (n) VALUES (%s)", (n,))
            acked.write(f"{n}\n")
        except Exception as e:  # any failure: the row is unacknowledged; reconnect to whoever is primary now
            errors.write(f"{time.time():.3f} {n} {type(e).__name__}: {str(e).strip()[:200]}\n")
            try:
                conn and conn.close()
            except Exception:
                pass
            conn = None
            stop.wait(0.05)
            continue
        stop.wait(1.0 / rate)


def sampler(name, port, hz, t0, out, lock):
    conn, tick = None, 0
    while not stop.is_set():
        tick = max(tick + 1, int((time.time() - t0) * hz))
        delay = t0 + tick / hz - time.time()
        if delay > 0 and stop.wait(delay):
            break
        role = "down"
        try:
            if conn is None:
                conn = connect([port], False)
                with conn.cursor() as cur:
                    cur.execute("SET statement_timeout = '1s'")
            with conn.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery()")
                role = "replica" if cur.fetchone()[0] else "primary"
        except Exception:
            try:
                conn and conn.close()
            except Exception:
                pass
            conn = None
        with lock:
            out.write(f"{tick} {t0 + tick / hz:.3f} {name} {role}\n")
            out.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--node", action="append", required=True, help="NAME=PORT")
    ap.add_argument("--hz", type=float, default=10)
    ap.add_argument("--rate", type=float, default=50)
    args = ap.parse_args()
    nodes = [(n.split("=")[0], int(n.split("=")[1])) for n in args.node]
    t0 = time.time()
    lock = threading.Lock()
    samples = open(os.path.join(args.out, "samples"), "a")
    threads = [threading.Thread(target=writer, args=([p for _, p in nodes], args.table, args.rate, args.out))]
    threads += [threading.Thread(target=sampler, args=(n, p, args.hz, t0, samples, lock)) for n, p in nodes]
    for t in threads:
        t.start()
    sys.stdin.read()
    stop.set()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
