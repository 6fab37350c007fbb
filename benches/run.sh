#!/usr/bin/env bash
# Reproduces the performance figures in the README. The server runs pinned
# to CPU 0 and the load tools to CPU 1.
#
#   benches/run.sh append     committed events/s, one writer and many
#   benches/run.sh poll       wrk against GET /api/jobs/:id/events
#   benches/run.sh metrics    the poll load against one server with and
#                             without request metrics, alternating for
#                             ROUNDS rounds, and the cost of metrics (not
#                             part of all)
#   benches/run.sh sse        idle RSS per stream and fan-out latency, for
#                             Reelay and for a minimal axum SSE server in
#                             the same run (benches/server/sseload.rs)
#   benches/run.sh render     a 30 s 1080x1920 video, three scenes, music,
#                             captions, with motion and static in turns,
#                             ROUNDS (2) times each; FRAMES=DIR saves four
#                             frames of it
#   benches/run.sh chaos      50 SIGKILLs of the real binary across every
#                             stage, with the checks of benches/server/chaos.rs
#                             (not part of all)
#   benches/run.sh webhooks   deliveries/s from the event log to a local
#                             receiver on CPU 1 (benches/server/webhooks.rs)
#   benches/run.sh backends   append, poll and fan-out on SQLite and then on
#                             PostgreSQL (PG_URL, default the local server),
#                             and the delay from a commit on one instance to
#                             its streams on another
#   benches/run.sh all
#
# Needs wrk (apt-get install wrk) for poll and metrics.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT=${OUT:-target/bench-results}
NS=${NS:-"1000 5000 10000"}
LAT_N=${LAT_N:-1000}
mkdir -p "$OUT"

cargo build --release --quiet --benches --bin reelay
BENCH=$(ls -t target/release/deps/server-* | grep -v '\.d$' | head -1)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

FIXTURE_PID=
stop_fixture() {
    if [ -n "$FIXTURE_PID" ] && kill -0 "$FIXTURE_PID" 2>/dev/null; then
        kill "$FIXTURE_PID" && wait "$FIXTURE_PID" 2>/dev/null || true
    fi
    FIXTURE_PID=
}
trap stop_fixture EXIT

# Starts the fixture server on CPU 0; its JSON line lands in $OUT/fixture.json.
# METRICS_ENABLED in the environment passes through to it. Two arguments are
# two more addresses, served with request metrics and without.
start_fixture() {
    # Gone first, so that the wait below cannot read the last run's line.
    rm -f "$OUT/fixture.json"
    taskset -c "$SERVER_CPU" "$BENCH" fixture 127.0.0.1:3901 "$@" >"$OUT/fixture.json" 2>"$OUT/fixture.log" &
    FIXTURE_PID=$!
    for _ in $(seq 1 100); do
        [ -s "$OUT/fixture.json" ] && return 0
        sleep 0.1
    done
    echo "run.sh: the fixture server did not start" >&2
    exit 1
}
# User and system CPU time of process $1 so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
field() { python3 -c "import json,sys; print(json.load(open('$OUT/fixture.json'))['$1'])"; }

run_append() {
    echo "== append (pinned to CPU $SERVER_CPU), and raw SQLite on the same schema as the ceiling"
    for writers in 64 1024; do
        taskset -c "$SERVER_CPU" "$BENCH" append 20000 $((320000 / writers)) "$writers" | sed '$d'
    done
    taskset -c "$SERVER_CPU" python3 benches/sqlite_baseline.py 1 32 64 1024
}

run_poll() {
    command -v wrk >/dev/null || { echo "run.sh: install wrk (apt-get install wrk)" >&2; exit 2; }
    start_fixture
    local job last
    job=$(field poll_job)
    last=$(field last_id)
    for after in $((last - 10)) 0; do
        echo "== poll: GET /api/jobs/:id/events?after=$after (1,000-event job), wrk -t1 -c32 -d10s"
        taskset -c "$LOAD_CPU" wrk -t1 -c32 -d10s --latency \
            "http://127.0.0.1:3901/api/jobs/$job/events?after=$after" | grep -E "Requests/sec|Latency|  50%|  99%"
    done
    stop_fixture
}

# The poll load of run_poll (the last 10 events of a 1,000-event job) against
# a fresh fixture with metrics on and off, alternating which goes first, so
# that drift of the machine hits both alike. Prints each run, the medians
# and their ratio.
run_metrics() {
    command -v wrk >/dev/null || { echo "run.sh: install wrk (apt-get install wrk)" >&2; exit 2; }
    local rounds=${ROUNDS:-10} secs=${SECS:-5} results="$OUT/metrics-runs.txt"
    : >"$results"
    # One server process answers both sides, served alike: port 3902 with
    # request metrics, 3903 without, on the same engine and store, so that
    # the two differ in nothing but the metrics.
    start_fixture 127.0.0.1:3902 127.0.0.1:3903
    local path on_url off_url
    path="/api/jobs/$(field poll_job)/events?after=$(($(field last_id) - 10))"
    on_url="${ON_URL:-http://127.0.0.1:3902}$path"
    off_url="${OFF_URL:-http://127.0.0.1:3903}$path"
    echo "== metrics: GET /api/jobs/:id/events?after=last-10, wrk -t1 -c32 -d${secs}s, $rounds rounds, one server"
    # Warm the cache and the connections first.
    for url in "$on_url" "$off_url"; do
        taskset -c "$LOAD_CPU" wrk -t1 -c32 -d2s "$url" >/dev/null
    done
    for round in $(seq 1 "$rounds"); do
        local order="true false"
        [ $((round % 2)) -eq 0 ] && order="false true"
        for enabled in $order; do
            local url=$on_url out rps before after requests cpu
            [ "$enabled" = false ] && url=$off_url
            before=$(cpu_ticks "$FIXTURE_PID")
            out=$(taskset -c "$LOAD_CPU" wrk -t1 -c32 -d"${secs}s" "$url")
            after=$(cpu_ticks "$FIXTURE_PID")
            if grep -q "Non-2xx" <<<"$out"; then
                echo "run.sh: some answers were not 200:" >&2
                echo "$out" >&2
                exit 1
            fi
            rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
            requests=$(awk '/requests in/ {print $1}' <<<"$out")
            # The server's CPU time per answer: what the metrics add to
            # each request, and steadier than req/s on a shared host.
            cpu=$(python3 -c "print(f'{($after - $before) / $(getconf CLK_TCK) * 1e6 / $requests:.2f}')")
            echo "round $round  metrics=$enabled  $rps req/s  $cpu CPU-us/request"
            echo "$enabled $rps $cpu" >>"$results"
        done
    done
    stop_fixture
    echo "== metrics: the same two routers in one process, no network (router_cost.rs)"
    taskset -c "$SERVER_CPU" "$BENCH" router-cost
    python3 - "$results" <<'PY'
import statistics, sys
runs = [line.split() for line in open(sys.argv[1])]
on = [float(r) for e, r, _ in runs if e == "true"]
off = [float(r) for e, r, _ in runs if e == "false"]
cpu_on = statistics.median(float(c) for e, _, c in runs if e == "true")
cpu_off = statistics.median(float(c) for e, _, c in runs if e == "false")
m_on, m_off = statistics.median(on), statistics.median(off)
print(f"metrics on:  median {m_on:.0f} req/s  (runs {', '.join(f'{x:.0f}' for x in on)})")
print(f"metrics off: median {m_off:.0f} req/s  (runs {', '.join(f'{x:.0f}' for x in off)})")
print(f"on/off: {m_on / m_off:.3f}  (cost {100 * (1 - m_on / m_off):.1f} %)")
# Each round's pair ran back to back, so its ratio sees the least drift.
pairs = [float(runs[i + (runs[i][0] == "false")][1]) / float(runs[i + (runs[i][0] == "true")][1])
         for i in range(0, len(runs) - 1, 2)]
print(f"server CPU per request: median {cpu_on:.2f} us on, {cpu_off:.2f} us off "
      f"(cost {100 * (cpu_on / cpu_off - 1):.1f} %)")
print(f"per-round on/off: {', '.join(f'{p:.3f}' for p in pairs)}; median {statistics.median(pairs):.3f}")
PY
}

# Starts the reference SSE server (axum + broadcast) on CPU 0.
start_reference() {
    taskset -c "$SERVER_CPU" "$BENCH" reference 127.0.0.1:3900 >"$OUT/reference.json" 2>"$OUT/reference.log" &
    FIXTURE_PID=$!
    for _ in $(seq 1 100); do
        [ -s "$OUT/reference.json" ] && return 0
        sleep 0.1
    done
    echo "run.sh: the reference server did not start" >&2
    exit 1
}

sseload() { taskset -c "$LOAD_CPU" "$BENCH" sseload "$@" | sed '$d'; }

run_sse() {
    for n in $NS; do
        # A fresh server per size, so that earlier runs' freed memory does
        # not hide the cost of this one.
        start_reference
        echo "== sse: $n idle streams, reference server (axum Sse + broadcast)"
        sseload --url http://127.0.0.1:3900/events -n "$n" --pid "$FIXTURE_PID" --settle 2 --hold 3
        stop_fixture
        start_fixture
        echo "== sse: $n idle streams, Reelay (GET /api/v1/jobs/:id/events of a running job)"
        sseload --url "http://127.0.0.1:3901/api/v1/jobs/$(field live_job)/events" \
            -n "$n" --pid "$FIXTURE_PID" --settle 2 --hold 3
        stop_fixture
    done
    start_reference
    echo "== sse: $LAT_N streams, 20 events/s, reference server"
    sseload --url http://127.0.0.1:3900/events -n "$LAT_N" --settle 2 --hold 8 \
        --trigger http://127.0.0.1:3900/publish --every 0.05
    stop_fixture
    start_fixture
    echo "== sse: $LAT_N streams of one job, 20 events/s appended through the store, Reelay"
    sseload --url "http://127.0.0.1:3901/api/jobs/$(field live_job)/events?after=$(field live_last_id)" \
        -n "$LAT_N" --settle 2 --hold 8 --trigger http://127.0.0.1:3901/bench/publish --every 0.05
    stop_fixture
}

PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}

# The hot paths on each backend in one run, then two instances on
# PostgreSQL: 100 and 1,000 streams on the second instance follow a job
# running on the first, which appends 20 events/s.
run_backends() {
    command -v wrk >/dev/null || { echo "run.sh: install wrk (apt-get install wrk)" >&2; exit 2; }
    local backend
    for backend in sqlite postgres; do
        if [ "$backend" = postgres ]; then export BENCH_DATABASE=$PG_URL; else unset BENCH_DATABASE; fi
        echo "==== $backend"
        for writers in 64 1024; do
            taskset -c "$SERVER_CPU" "$BENCH" append 5000 $((160000 / writers)) "$writers" | sed '$d'
        done
        start_fixture
        local job last
        job=$(field poll_job)
        last=$(field last_id)
        echo "== poll: GET /api/jobs/:id/events?after=last-10 (1,000-event job), wrk -t1 -c32 -d10s"
        taskset -c "$LOAD_CPU" wrk -t1 -c32 -d10s --latency \
            "http://127.0.0.1:3901/api/jobs/$job/events?after=$((last - 10))" | grep -E "Requests/sec|  50%|  99%"
        echo "== fan-out: $LAT_N streams of one job, 20 events/s appended through the store"
        sseload --url "http://127.0.0.1:3901/api/jobs/$(field live_job)/events?after=$(field live_last_id)" \
            -n "$LAT_N" --settle 2 --hold 8 --trigger http://127.0.0.1:3901/bench/publish --every 0.05
        stop_fixture
    done
    export BENCH_DATABASE=$PG_URL
    for n in 100 "$LAT_N"; do
        PEER_ADDR=127.0.0.1:3904 start_fixture
        echo "== cross-instance: $n streams on instance 2 of a job on instance 1, 20 events/s"
        sseload --url "http://127.0.0.1:3904/api/jobs/$(field live_job)/events?after=$(field live_last_id)" \
            -n "$n" --settle 2 --hold 8 --trigger http://127.0.0.1:3901/bench/publish --every 0.05
        stop_fixture
    done
    unset BENCH_DATABASE
}

run_render() {
    echo "== render: 30 s at 1080x1920, three title-card scenes, espeak-ng, word captions, music"
    # Unpinned: ffmpeg, a child of the server, uses both cores.
    "$BENCH" render 30 "${ROUNDS:-2}" | sed '$d'
}

run_webhooks() {
    echo "== webhooks: every event of 32 running jobs to a receiver on CPU $LOAD_CPU"
    taskset -c "$LOAD_CPU" "$BENCH" webhook-receiver 127.0.0.1:3902 >"$OUT/receiver.json" 2>&1 &
    FIXTURE_PID=$!
    sleep 0.5
    for per_host in 4 32; do
        taskset -c "$SERVER_CPU" "$BENCH" webhooks http://127.0.0.1:3902 32 250 "$per_host" | sed '$d'
    done
    stop_fixture
}

case "${1:-all}" in
append) run_append ;;
poll) run_poll ;;
metrics) run_metrics ;;
sse) run_sse ;;
render) run_render ;;
webhooks) run_webhooks ;;
backends) run_backends ;;
chaos) "$BENCH" chaos --kills "${KILLS:-50}" --seed "${SEED:-7}" ;;
all) run_append; run_poll; run_sse; run_render; run_webhooks ;;
*) sed -n '2,28p' "$0"; exit 2 ;;
esac
