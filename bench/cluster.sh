# Shared by bench/compare and bench/cpu-per-op: start etcd 3.4 or Meridian clusters on loopback with fresh data
# dirs, wait until they take writes, and stop what was started. Sourced, not run. The caller defines
# BIN (the meridian binary), WORK (a scratch dir), PIDS=() (every PID started, for its cleanup) and log().

# Stops one process we started: SIGTERM, up to 10 s to exit, then SIGKILL; reaps it.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep=()
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# TLS_DIR (set by the caller to a `meridian certs` output dir) runs both servers with TLS on every link, as etcd's
# flags name it (client certificates required, peer TLS mutual), on https:// URLs.
scheme() { if [ -n "${TLS_DIR:-}" ]; then echo https; else echo http; fi; }
etcd_tls() {
    [ -n "${TLS_DIR:-}" ] || return 0
    echo "--cert-file $TLS_DIR/bench/server.crt --key-file $TLS_DIR/bench/server.key --trusted-ca-file $TLS_DIR/ca.crt" \
        "--client-cert-auth --peer-cert-file $TLS_DIR/bench/peer.crt --peer-key-file $TLS_DIR/bench/peer.key" \
        "--peer-trusted-ca-file $TLS_DIR/peer-ca.crt --peer-client-cert-auth"
}
meridian_tls() {
    [ -n "${TLS_DIR:-}" ] || return 0
    echo "--cert-file $TLS_DIR/bench/server.crt --key-file $TLS_DIR/bench/server.key --trusted-ca-file $TLS_DIR/ca.crt" \
        "--client-cert-auth --peer-cert-file $TLS_DIR/bench/peer.crt --peer-key-file $TLS_DIR/bench/peer.key" \
        "--peer-trusted-ca-file $TLS_DIR/peer-ca.crt"
}

# PRESET (lan or wan, default lan) picks the timing of both servers: etcd's defaults (100 ms heartbeat, 1 s election
# timeout) or 250 ms / 2.5 s, and Meridian's preset of the same name.
etcd_timing() {
    if [ "${PRESET:-lan}" = wan ]; then echo "--heartbeat-interval 250 --election-timeout 2500"; fi
}

# start_etcd TAG N BASE: an N-member etcd cluster; member i has client port BASE+i, peer port BASE+50+i.
# Sets EPS (comma-separated client URLs) and GROUP (PIDs).
start_etcd() {
    local tag=$1 n=$2 base=$3 cluster="" i
    for i in $(seq 0 $((n - 1))); do
        cluster+="${cluster:+,}e$i=$(scheme)://127.0.0.1:$((base + 50 + i))"
    done
    EPS=""
    GROUP=()
    for i in $(seq 0 $((n - 1))); do
        local client=$(scheme)://127.0.0.1:$((base + i)) peer=$(scheme)://127.0.0.1:$((base + 50 + i))
        port_free $((base + i)) && port_free $((base + 50 + i)) || { log "port $((base + i)) or $((base + 50 + i)) busy"; exit 1; }
        etcd --name "e$i" --data-dir "$WORK/$tag-e$i" --listen-client-urls "$client" --advertise-client-urls "$client" \
            --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "$cluster" \
            --initial-cluster-state new --initial-cluster-token "$tag" --log-level error $(etcd_timing) $(etcd_tls) \
            >"$WORK/$tag-e$i.log" 2>&1 &
        PIDS+=($!)
        GROUP+=($!)
        EPS+="${EPS:+,}$client"
    done
}

# start_meridian TAG N BASE: the same for Meridian. One node is a plain `meridian server`; three nodes are
# three voters of one DC from a topology file (one DC holding every voter needs --force). With SPREAD=1 the
# voters are one per datacenter (dc-a, dc-b, dc-c), each with an admin API on port BASE+80+i that serves
# fault injection (`PUT /faults`), so a datacenter can be isolated. With HTTP_BASE set, member i (of three) serves
# the Consul-compatible HTTP API on port HTTP_BASE+i and no DNS; HTTP_EPS lists those endpoints.
start_meridian() {
    local tag=$1 n=$2 base=$3 i
    EPS=""
    GROUP=()
    for i in $(seq 0 $((n - 1))); do
        port_free $((base + i)) && port_free $((base + 50 + i)) || { log "port $((base + i)) or $((base + 50 + i)) busy"; exit 1; }
    done
    if [ "$n" = 1 ]; then
        # shellcheck disable=SC2046
        MERIDIAN_LOG=warn $BIN server --name m0 --data-dir "$WORK/$tag-m0" --listen-client "$(scheme)://127.0.0.1:$base" \
            --listen-peer "$(scheme)://127.0.0.1:$((base + 50))" $(meridian_tls) >"$WORK/$tag-m0.log" 2>&1 &
        PIDS+=($!)
        GROUP+=($!)
        EPS="$(scheme)://127.0.0.1:$base"
        return
    fi
    local topo="$WORK/$tag-topology.toml"
    printf '[timing]\npreset = "%s"\n' "${PRESET:-lan}" >"$topo"
    local dcs=(a a a) extra=(--force)
    [ "${SPREAD:-0}" = 1 ] && dcs=(a b c) && extra=()
    for i in $(seq 0 $((n - 1))); do
        printf '\n[[members]]\nname = "m%d"\ndc = "dc-%s"\nzone = "%s-%d"\nrole = "voter"\npeer_url = "%s://127.0.0.1:%d"\nclient_url = "%s://127.0.0.1:%d"\n' \
            "$i" "${dcs[$i]}" "${dcs[$i]}" "$i" "$(scheme)" $((base + 50 + i)) "$(scheme)" $((base + i)) >>"$topo"
    done
    HTTP_EPS=""
    for i in $(seq 0 $((n - 1))); do
        local own=()
        [ "${SPREAD:-0}" = 1 ] && own=(--listen-admin "http://127.0.0.1:$((base + 80 + i))" --enable-fault-injection)
        if [ -n "${HTTP_BASE:-}" ]; then
            port_free $((HTTP_BASE + i)) || { log "port $((HTTP_BASE + i)) busy"; exit 1; }
            own+=(--listen-http "http://127.0.0.1:$((HTTP_BASE + i))" --listen-dns none)
            HTTP_EPS+="${HTTP_EPS:+,}http://127.0.0.1:$((HTTP_BASE + i))"
        fi
        # shellcheck disable=SC2046
        MERIDIAN_LOG=warn $BIN server --topology "$topo" "${extra[@]}" "${own[@]}" --name "m$i" --data-dir "$WORK/$tag-m$i" \
            $(meridian_tls) >"$WORK/$tag-m$i.log" 2>&1 &
        PIDS+=($!)
        GROUP+=($!)
        EPS+="${EPS:+,}$(scheme)://127.0.0.1:$((base + i))"
    done
}

# AUTH_USER=1 (set by the caller): after wait_ready, enable_auth EPS adds root and the user `bench` (read-write
# on every key from "0", which holds the benchmark's decimal keys and its watch prefix), enables auth, and from
# then on etcdctl runs as root.
enable_auth() {
    local ep=${1%%,*} cmd
    for cmd in "user add root:rootpw" "user add bench:benchpw" "role add bench" \
        "role grant-permission bench readwrite 0 --from-key" "user grant-role bench bench" "auth enable"; do
        # shellcheck disable=SC2086
        ETCDCTL_API=3 etcdctl --endpoints "$ep" --command-timeout=10s $cmd >/dev/null
    done
    export ETCDCTL_USER=root:rootpw
}

# Waits (at most 60 s) until every endpoint of EPS takes a write.
wait_ready() {
    local ep
    for ep in ${1//,/ }; do
        for _ in $(seq 1 300); do
            ETCDCTL_API=3 etcdctl --endpoints "$ep" --command-timeout=2s put bench-ready 1 >/dev/null 2>&1 && continue 2
            sleep 0.2
        done
        log "$ep not ready after 60 s"
        exit 1
    done
}

# The endpoint of EPS whose member is the leader (ROLE=leader) or the first that is not (ROLE=follower),
# from `etcdctl endpoint status`, which both servers answer alike.
role_endpoint() {
    ETCDCTL_API=3 etcdctl --endpoints "$1" --command-timeout=5s endpoint status -w json | python3 -c '
import json, sys
role = sys.argv[1]
for s in json.load(sys.stdin):
    leads = s["Status"]["header"]["member_id"] == s["Status"]["leader"]
    if leads == (role == "leader"):
        print(s["Endpoint"])
        break
else:
    sys.exit("no " + role + " among the endpoints")
' "$2"
}
