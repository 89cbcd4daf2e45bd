#!/usr/bin/env bash
# The long schema-fuzzing run: the suite's tests/test_fuzz.py with many more examples and a fresh seed.
# usage: bench/fuzz.sh [EXAMPLES] [SEED]     (defaults: 1000 examples per operation, a random seed)
# Runs on SQLite, and on PostgreSQL too when COMMENTS_TEST_POSTGRES_URL is set. The tally of answers
# (operation and status -> count) is written to bench/out/fuzz-SEED.json; a failure prints the seed
# and a curl line that reproduces it (COMMENTS_FUZZ_SEED=SEED replays the same run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap" dev
cd "$ROOT"
EXAMPLES="${1:-1000}"
SEED="${2:-$RANDOM$RANDOM}"
mkdir -p bench/out
REPORT="bench/out/fuzz-$SEED.json"
echo "fuzzing every operation: $EXAMPLES examples each, seed $SEED"
COMMENTS_FUZZ_EXAMPLES="$EXAMPLES" COMMENTS_FUZZ_SEED="$SEED" COMMENTS_FUZZ_REPORT="$ROOT/$REPORT" \
  .venv/bin/pytest tests/test_fuzz.py -q -p no:cacheprovider "${@:3}"
.venv/bin/python - "$REPORT" <<'PY'
import json, sys
tally = json.load(open(sys.argv[1]))
server_errors = sum(n for key, n in tally.items() if key.rsplit(" ", 1)[1].startswith("5"))
print(f"{sum(tally.values())} requests, {server_errors} answered 5xx")
for key, count in tally.items():
    print(f"  {count:6d}  {key}")
PY
