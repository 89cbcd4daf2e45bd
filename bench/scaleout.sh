#!/usr/bin/env bash
# Scale-out on PostgreSQL: 1 vs 2 app instances behind nginx, same read and write runs, and
# "approved through instance A is visible through instance B at once".
#
# usage: bench/scaleout.sh
# env:   PG_URL       use this PostgreSQL (postgresql+asyncpg://...; its database is wiped) instead of
#                     starting a private server from Debian's binaries (/usr/lib/postgresql/*/bin)
#        BIG          filler comments added to the database (default 0; e.g. 1000000 for the queue query)
#        INSTANCE_WORKERS  uvicorn workers per instance (default 1: 1 vs 2 instances = 1 vs 2 processes)
#        PEER_BENCH OUT DURATION ROUNDS WARMUP CONNS QUIET_MAX PORT_BASE (default 18200) as in bench/run.sh
# Ports: +0 PostgreSQL (private), +1/+2 instances A/B, +10 nginx -> A, +11 nginx -> A,B.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
PEER_BENCH="$(cd "${PEER_BENCH:-$ROOT/../shared/peer-bench}" && pwd)"
OUT="${OUT:-/tmp/comments-scaleout-$(date +%Y%m%d-%H%M%S)}"
BASE="${PORT_BASE:-18200}"
PGPORT=$BASE; A=$((BASE + 1)); B=$((BASE + 2)); NG1=$((BASE + 10)); NG2=$((BASE + 11))
WORKERS="${INSTANCE_WORKERS:-1}"
export DURATION="${DURATION:-10}" ROUNDS="${ROUNDS:-2}" WARMUP="${WARMUP:-3}" CONNS="${CONNS:-32}" QUIET_MAX="${QUIET_MAX:-10}"
PY="$ROOT/.venv/bin/python"
log() { echo "[scaleout] $*" >&2; }
[ -x "$PY" ] || "$ROOT/scripts/bootstrap" runtime
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx-light || apt-get install -y -qq nginx; }
mkdir -p "$OUT"; chmod 755 "$OUT"
PB="$OUT/peer-bench"; rm -rf "$PB"; cp -r "$PEER_BENCH" "$PB"; cp "$ROOT/bench/wrk/bench.lua" "$PB/bench.lua"

PIDS=()
PGDATA=""
cleanup() {
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [ -n "$PGDATA" ]; then runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [ -z "${PG_URL:-}" ]; then
  PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  PGDATA="$OUT/pgdata"
  log "starting a private PostgreSQL ($PGBIN) on 127.0.0.1:$PGPORT, data in $PGDATA"
  install -d -o postgres -g postgres "$PGDATA" "$OUT/pgsock" "$OUT/pglog"
  runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >"$OUT/initdb.log"
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$OUT/pglog/postgres.log" -w \
    -o "-p $PGPORT -k $OUT/pgsock -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB" start >/dev/null
  runuser -u postgres -- "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -qc "CREATE ROLE bench LOGIN SUPERUSER PASSWORD 'bench'"
  runuser -u postgres -- "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -O bench bench
  PG_URL="postgresql+asyncpg://bench:bench@127.0.0.1:$PGPORT/bench"
else
  "$PY" - "$PG_URL" <<'PY'
import asyncio, sys
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
async def main():
    engine = create_async_engine(sys.argv[1])
    async with engine.begin() as c:
        await c.execute(text("DROP SCHEMA public CASCADE")); await c.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
asyncio.run(main())
PY
fi
{
  echo "# scale-out $(date -Is)  host: $(nproc) vCPU, $(lscpu | sed -n 's/^Model name: *//p')"
  echo "# $(nginx -v 2>&1); PostgreSQL $("$PY" -c "
import asyncio, sys
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
async def v():
    e = create_async_engine(sys.argv[1])
    async with e.connect() as c: print((await c.execute(text('show server_version'))).scalar())
    await e.dispose()
asyncio.run(v())" "$PG_URL"); $WORKERS worker(s) per instance; load: $(uptime)"
} | tee "$OUT/header.txt"

log "seeding"
"$PY" -m bench.seed --seed "$PB/seed_comments.json" --database-url "$PG_URL" --origin "http://127.0.0.1:$NG1" \
  --filler "${BIG:-0}" | tee "$OUT/seed.txt"

serve() {  # PORT
  COMMENTS_DATABASE_URL="$PG_URL" COMMENTS_DATA_DIR="$OUT" COMMENTS_SECRET_KEY=bench-secret-shared \
    COMMENTS_FLOOD_SECONDS=0 COMMENTS_RATE_LIMIT_PER_HOUR=0 COMMENTS_BASE_URL="http://127.0.0.1:$NG1" \
    nohup "$ROOT/.venv/bin/comments" serve --host 127.0.0.1 --port "$1" --workers "$WORKERS" \
    >"$OUT/instance-$1.log" 2>&1 </dev/null &
  PIDS+=("$!")
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$1/healthz" && return 0; sleep 0.2; done
  echo "instance on $1 did not start" >&2; tail "$OUT/instance-$1.log" >&2; exit 1
}
nginx_up() {  # PORT UPSTREAM_PORTS...
  local port="$1"; shift
  local dir="$OUT/nginx-$port"; mkdir -p "$dir"
  {
    echo "worker_processes 1; pid $dir/nginx.pid; error_log $dir/error.log warn;"
    echo "events { worker_connections 1024; }"
    echo "http { access_log off; client_body_temp_path $dir; proxy_temp_path $dir;"
    echo "  upstream app { least_conn; keepalive 64;"
    for p in "$@"; do echo "    server 127.0.0.1:$p;"; done
    echo "  }"
    echo "  server { listen 127.0.0.1:$port; location / { proxy_pass http://app; proxy_http_version 1.1;"
    echo "    proxy_set_header Connection \"\"; proxy_set_header Host \$host;"
    echo "    proxy_set_header X-Forwarded-For \$remote_addr; proxy_buffering off; } } }"
  } >"$dir/nginx.conf"
  nginx -p "$dir" -c "$dir/nginx.conf" -g "daemon off;" >"$dir/stdout.log" 2>&1 </dev/null &
  PIDS+=("$!")
  for _ in $(seq 1 50); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && return 0; sleep 0.2; done
  echo "nginx on $port did not start" >&2; cat "$dir/error.log" >&2; exit 1
}
serve "$A"; serve "$B"
nginx_up "$NG1" "$A"; nginx_up "$NG2" "$A" "$B"

log "approved through A, visible through B at once"
READ="/api/comments?site=bench&thread=/bench/article&limit=200"
{
  count() { curl -fs "http://127.0.0.1:$1$READ" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["thread"]["count"], len(d["comments"]))'; }
  etag() { curl -fs -D - -o /dev/null "http://127.0.0.1:$1$READ" | sed -n 's/^[Ee][Tt]ag: *//p' | tr -d '\r'; }
  echo "before: B shows count/comments $(count "$B"), ETag $(etag "$B")  (B has this version cached now)"
  ID="$(sed 's/@N@/scaleout-visibility/' "$ROOT/bench/bodies/ours_new.json" | curl -fs -H 'Content-Type: application/json' \
    --data-binary @- "http://127.0.0.1:$A/api/comments" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["comment"]["id"])')"
  echo "posted comment $ID through A (pending): B shows $(count "$B")"
  "$PY" -m bench.approve --database-url "$PG_URL" --comment-id "$ID"
  echo "approved comment $ID: B shows $(count "$B"), ETag $(etag "$B"); A shows $(count "$A")"
} | tee "$OUT/visibility.txt"

COUNT="/api/counts?site=bench&$("$PY" -c 'import json,sys; print("&".join("thread=" + u for u in json.load(open(sys.argv[1]))))' "$PB/bodies/count_uris.json")"
both=(PEER_NAME=1-instance OURS_NAME=2-instances PEER_READ="$READ" OURS_READ="$READ" PEER_COUNT="$COUNT" OURS_COUNT="$COUNT"
  PEER_COUNT_METHOD=GET OURS_COUNT_METHOD=GET PEER_COUNT_BODY=- OURS_COUNT_BODY=-)
log "read + count: nginx -> A vs nginx -> A,B"
env "${both[@]}" SCENARIOS="read count" OUT="$OUT/read" \
  "$PB/loadcompare.sh" "http://127.0.0.1:$NG1" "http://127.0.0.1:$NG2" | tee "$OUT/read.txt"
ROWS="$PY -c 'import asyncio,sys
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
async def n():
    e = create_async_engine(\"$PG_URL\")
    async with e.connect() as c: print((await c.execute(text(\"select count(*) from comment\"))).scalar())
    await e.dispose()
asyncio.run(n())'"
log "write: nginx -> A vs nginx -> A,B"
env "${both[@]}" PEER_WRITE=/api/comments OURS_WRITE=/api/comments PEER_BODY="$ROOT/bench/bodies/ours_new.json" \
  OURS_BODY="$ROOT/bench/bodies/ours_new.json" BENCH_VARY_BODY=1 PEER_ROWS_CMD="$ROWS" OURS_ROWS_CMD="$ROWS" \
  SCENARIOS=write OUT="$OUT/write" "$PB/loadcompare.sh" "http://127.0.0.1:$NG1" "http://127.0.0.1:$NG2" | tee "$OUT/write.txt"
if [ "${BIG:-0}" -gt 0 ]; then "$PY" -m bench.queue_timer --database-url "$PG_URL" | tee "$OUT/queue-postgres.txt"; fi
log "done; everything is in $OUT"
for f in read write; do echo "== $f"; cat "$OUT/$f/summary.txt"; done
echo "== visibility"; cat "$OUT/visibility.txt"
