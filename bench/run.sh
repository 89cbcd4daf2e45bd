#!/usr/bin/env bash
# The whole benchmark of issues 3 and 8 on SQLite: ours vs Isso vs the bare-Litestar ceiling.
#
# usage: bench/run.sh            (from a fresh clone; needs ../shared/peer-bench, wrk, sqlite3 CLI optional)
# env:   PEER_BENCH  peer-bench dir (default: ../shared/peer-bench next to the repo)
#        OUT         results dir (default /tmp/comments-bench-YYYYmmdd-HHMMSS)
#        BIG         comments in the big database (default 1000000; 0 skips the 1M part)
#        DURATION ROUNDS WARMUP CONNS QUIET_MAX   passed to loadcompare.sh (10 2 3 32 10)
#        PORT_BASE   first of the ports used on 127.0.0.1 (default 18000):
#                    +0 ours, +1 ours on the big database, +80 Isso (read), +82 Isso (write), +90 ceiling
#
# Steps: seed our databases from peer-bench's seed_comments.json (bench/seed.py), start ours
# (`comments serve --workers 2`, SQLite, flood and hourly limits off as Isso's guard is off), Isso
# (isso_up.sh: moderation off for reads, on for writes) and the ceiling app serving as many bytes as
# our read; then loadcompare.sh: read+count vs Isso, read vs the ceiling, 304s, writes vs Isso with
# stored rows counted; RSS per worker; the big database: read+count of ours at 1k vs 1M comments, and
# the moderation-queue query with its plan. Every server started is stopped by its PID on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
PEER_BENCH="${PEER_BENCH:-$ROOT/../shared/peer-bench}"
PEER_BENCH="$(cd "$PEER_BENCH" && pwd)"
OUT="${OUT:-/tmp/comments-bench-$(date +%Y%m%d-%H%M%S)}"
BIG="${BIG:-1000000}"
BASE="${PORT_BASE:-18000}"
OURS=$BASE; OURS_BIG=$((BASE + 1)); ISSO_R=$((BASE + 80)); ISSO_W=$((BASE + 82)); CEIL=$((BASE + 90))
export DURATION="${DURATION:-10}" ROUNDS="${ROUNDS:-2}" WARMUP="${WARMUP:-3}" CONNS="${CONNS:-32}" QUIET_MAX="${QUIET_MAX:-10}"
PY="$ROOT/.venv/bin/python"
log() { echo "[bench] $*" >&2; }

[ -x "$PY" ] || "$ROOT/scripts/bootstrap" runtime
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
mkdir -p "$OUT"
# A private copy of peer-bench whose bench.lua can vary bodies and add a header (see bench/wrk/bench.lua).
PB="$OUT/peer-bench"; rm -rf "$PB"; cp -r "$PEER_BENCH" "$PB"; cp "$ROOT/bench/wrk/bench.lua" "$PB/bench.lua"
for p in $OURS $OURS_BIG $ISSO_R $ISSO_W $CEIL; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p is in use (set PORT_BASE)" >&2; exit 1; fi
done

PIDS=()
serve_ours() {  # PORT DBFILE -> starts `comments serve --workers 2`, records the PID
  local port="$1" dbfile="$2"
  COMMENTS_DATABASE_URL="sqlite+aiosqlite:///$dbfile" COMMENTS_DATA_DIR="$OUT" COMMENTS_SECRET_KEY=bench-secret \
    COMMENTS_FLOOD_SECONDS=0 COMMENTS_RATE_LIMIT_PER_HOUR=0 COMMENTS_BASE_URL="http://127.0.0.1:$port" \
    nohup "$ROOT/.venv/bin/comments" serve --host 127.0.0.1 --port "$port" --workers 2 \
    >"$OUT/ours-$port.log" 2>&1 </dev/null &
  echo $! >"$OUT/ours-$port.pid"; PIDS+=("$!")
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && { sleep 1; return 0; }
    sleep 0.2
  done
  echo "ours did not start on $port:" >&2; tail -20 "$OUT/ours-$port.log" >&2; exit 1
}
cleanup() {
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  "$PB/isso_down.sh" "$ISSO_R" >/dev/null 2>&1 || true
  "$PB/isso_down.sh" "$ISSO_W" >/dev/null 2>&1 || true
  "$PB/ceiling_down.sh" "$CEIL" >/dev/null 2>&1 || true
}
trap cleanup EXIT
rss_report() {  # PORT LABEL: RSS of each worker process of ours
  local master; master="$(cat "$OUT/ours-$1.pid")"
  for w in $(pgrep -P "$master" -f spawn_main); do
    echo "RSS $2 worker pid $w: $(($(awk '/VmRSS/{print $2}' "/proc/$w/status") / 1024)) MB"
  done | tee -a "$OUT/rss.txt"
}

{
  echo "# comments benchmark $(date -Is)"
  echo "# host: $(nproc) vCPU, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -sr)"
  echo "# python $("$PY" -c 'import sys; print(sys.version.split()[0])'); $("$PY" -m pip list 2>/dev/null | grep -iE '^(litestar|uvicorn|sqlalchemy|aiosqlite|asyncpg|msgspec|uvloop|httptools) ' | awk '{printf "%s %s; ", $1, $2}')"
  echo "# sqlite $("$PY" -c 'import sqlite3; print(sqlite3.sqlite_version)'); $(wrk -v 2>&1 | head -1)"
  echo "# load at start: $(uptime)"
} | tee "$OUT/header.txt"

log "seeding our database"
"$PY" -m bench.seed --seed "$PB/seed_comments.json" --database-url "sqlite+aiosqlite:///$OUT/ours.db" --origin "http://127.0.0.1:$OURS" | tee -a "$OUT/seed.txt"
serve_ours "$OURS" "$OUT/ours.db"
READ="/api/comments?site=bench&thread=/bench/article&limit=200"
COUNT="/api/counts?site=bench&$("$PY" -c 'import json,sys; print("&".join("thread=" + u for u in json.load(open(sys.argv[1]))))' "$PB/bodies/count_uris.json")"
BYTES="$(curl -fs "http://127.0.0.1:$OURS$READ" | wc -c)"
log "our read of the 200-comment thread: $BYTES bytes"

log "starting Isso (read: moderation off, write: moderation on)"
"$PB/isso_up.sh" "$ISSO_R" off >/dev/null
"$PB/isso_up.sh" "$ISSO_W" on >/dev/null
# The ceiling serves the same number of bytes as our read: pick its comment count to match.
N="$(cd "$PB" && "$PY" -c '
import os, sys, msgspec, importlib
target = int(sys.argv[1]); best = None
for n in range(100, 201):
    os.environ["CEILING_COMMENTS"] = str(n)
    import litestar_ceiling as m; importlib.reload(m)
    d = abs(len(m.PAYLOAD_BYTES) - target)
    best = min(best or (d, n), (d, n))
print(best[1])' "$BYTES")"
CEILING_COMMENTS="$N" "$PB/ceiling_up.sh" "$CEIL" >/dev/null
log "ceiling: $N comments = $(curl -fs "http://127.0.0.1:$CEIL/thread" | wc -c) bytes"

common=(OURS_NAME=ours OURS_WRITE=/api/comments OURS_READ="$READ" OURS_COUNT="$COUNT" OURS_COUNT_METHOD=GET OURS_COUNT_BODY=-)
log "1/5 read + count: Isso vs ours"
env "${common[@]}" PEER_NAME=isso SCENARIOS="read count" OUT="$OUT/vs-isso" \
  "$PB/loadcompare.sh" "http://127.0.0.1:$ISSO_R" "http://127.0.0.1:$OURS" | tee "$OUT/vs-isso.txt"

log "2/5 read: ceiling vs ours (same bytes)"
env "${common[@]}" PEER_NAME=ceiling PEER_READ=/thread SCENARIOS=read OUT="$OUT/vs-ceiling" \
  "$PB/loadcompare.sh" "http://127.0.0.1:$CEIL" "http://127.0.0.1:$OURS" | tee "$OUT/vs-ceiling.txt"

log "3/5 304 with If-None-Match (32 connections, then 1)"
ETAG="$(curl -fs -D - -o /dev/null "http://127.0.0.1:$OURS$READ" | sed -n 's/^[Ee][Tt]ag: *//p' | tr -d '\r')"
for c in 32 1; do
  BENCH_HEADER="If-None-Match: $ETAG" wrk -t"$([ "$c" = 1 ] && echo 1 || echo 2)" -c"$c" -d"${DURATION}s" --latency \
    -s "$PB/bench.lua" "http://127.0.0.1:$OURS$READ" -- GET - >"$OUT/304-c$c.txt"
  echo "304 c=$c $(grep WRKRESULT "$OUT/304-c$c.txt")" | tee -a "$OUT/304.txt"
done

log "4/5 write: Isso vs ours (every 2xx must be a stored row)"
env "${common[@]}" PEER_NAME=isso OURS_BODY="$ROOT/bench/bodies/ours_new.json" SCENARIOS=write OUT="$OUT/write" \
  BENCH_VARY_BODY=1 PEER_ROWS_CMD="$PB/isso_rows.sh $ISSO_W" \
  OURS_ROWS_CMD="$PY -c 'import sqlite3; print(sqlite3.connect(\"file:$OUT/ours.db?mode=ro\", uri=True).execute(\"select count(*) from comment\").fetchone()[0])'" \
  "$PB/loadcompare.sh" "http://127.0.0.1:$ISSO_W" "http://127.0.0.1:$OURS" | tee "$OUT/write.txt"
rss_report "$OURS" "ours (after read, count, 304, write runs)"
"$PB/isso_down.sh" "$ISSO_R" >/dev/null 2>&1; "$PB/isso_down.sh" "$ISSO_W" >/dev/null 2>&1; "$PB/ceiling_down.sh" "$CEIL" >/dev/null 2>&1

if [ "$BIG" -gt 0 ]; then
  log "5/5 big database: $BIG more comments; ours at ~1k vs at $BIG comments (read + count), queue query"
  "$PY" -m bench.seed --seed "$PB/seed_comments.json" --database-url "sqlite+aiosqlite:///$OUT/big.db" --origin "http://127.0.0.1:$OURS_BIG" --filler "$BIG" | tee -a "$OUT/seed.txt"
  serve_ours "$OURS_BIG" "$OUT/big.db"
  env OURS_NAME=ours-big PEER_NAME=ours-1k PEER_READ="$READ" OURS_READ="$READ" PEER_COUNT="$COUNT" OURS_COUNT="$COUNT" \
    PEER_COUNT_METHOD=GET OURS_COUNT_METHOD=GET PEER_COUNT_BODY=- OURS_COUNT_BODY=- SCENARIOS="read count" OUT="$OUT/big" \
    "$PB/loadcompare.sh" "http://127.0.0.1:$OURS" "http://127.0.0.1:$OURS_BIG" | tee "$OUT/big.txt"
  rss_report "$OURS_BIG" "ours-big (after read + count at $BIG)"
  "$PY" -m bench.queue_timer --database-url "sqlite+aiosqlite:///$OUT/big.db" | tee "$OUT/queue-sqlite.txt"
fi

log "done; everything is in $OUT"
for f in vs-isso vs-ceiling write big; do [ -f "$OUT/$f/summary.txt" ] && { echo "== $f"; cat "$OUT/$f/summary.txt"; }; done
echo "== 304"; cat "$OUT/304.txt"
echo "== RSS"; cat "$OUT/rss.txt"
