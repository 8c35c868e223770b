#!/usr/bin/env bash
# The CI regression loop as a plain script: run the quick suite, compare it with a stored
# baseline, write the reports, and exit with compare's verdict.
#
#   scripts/ci/regression-check.sh [BASELINE_NAME] [-- EXTRA `isobench run` ARGS]
#
# Exit codes: 0 nothing regressed, 1 something regressed, 2 usage or input error,
#             3 the run itself failed (a workload crashed, an environment did not start).
#
# Environment (all optional):
#   ISOBENCH         isobench binary [default: build target/release/isobench]
#   ISOBENCH_OUT     results directory; keep it OUTSIDE the checkout on CI runners so the
#                    baselines survive `git clean` [default: results]
#   ROUNDS           measured rounds per run; alpha 0.01 needs at least 5, and 10 is what
#                    detects real changes on a noisy runner [default: 10]
#   THRESHOLDS       thresholds TOML for compare [default: scripts/ci/thresholds.toml]
#   REPORT_DIR       where compare.md / compare.json / compare.txt go [default: ISOBENCH_OUT/reports]
#   UPDATE_BASELINE  1 = after a comparison without regressions, make this run the new
#                    baseline (do this on the main branch, not on pull requests)
set -uo pipefail
cd "$(dirname "$0")/../.."

name="${1:-main}"
shift $(( $# > 0 ? 1 : 0 ))
[ "${1:-}" = "--" ] && shift

out="${ISOBENCH_OUT:-results}"
rounds="${ROUNDS:-10}"
thresholds="${THRESHOLDS:-scripts/ci/thresholds.toml}"
reports="${REPORT_DIR:-$out/reports}"

if [ -z "${ISOBENCH:-}" ]; then
  . scripts/setup || exit 2
  set +e  # scripts/setup turns on errexit; this script handles exit codes itself
  cargo build --release --quiet || exit 3
  ISOBENCH=./target/release/isobench
fi
mkdir -p "$out" "$reports" || exit 2

echo "== isobench run --quick --rounds $rounds --out $out $*" >&2
"$ISOBENCH" run --quick --rounds "$rounds" --out "$out" "$@"
code=$?
if [ "$code" -ne 0 ]; then
  echo "isobench run failed (exit $code): no comparison" >&2
  [ "$code" -eq 2 ] && exit 2 || exit 3
fi

# The run just made: OUT/latest when `isobench run` maintains it, else the newest run id
# (run ids are UTC timestamps, so they sort by time).
current="$out/latest"
if [ ! -e "$current/run.json" ]; then
  current="$(find "$out" -mindepth 2 -maxdepth 2 -name run.json -not -path "$out/baselines/*" \
               -printf '%h\n' | sort | tail -n 1)"
fi
[ -n "$current" ] || { echo "no run directory found in $out" >&2; exit 3; }

# First run on this machine: it becomes the baseline.
if [ ! -e "$out/baselines/$name/run.json" ]; then
  "$ISOBENCH" baseline save "$name" "$current" --out "$out" || exit 2
  echo "no baseline '$name' yet: saved $current as the baseline; nothing to compare" >&2
  printf '### isobench compare\n\nNo baseline `%s` on this runner yet: this run was saved as the baseline.\n' \
    "$name" > "$reports/compare.md"
  exit 0
fi

threshold_args=()
[ -f "$thresholds" ] && threshold_args=(--thresholds "$thresholds")

echo "== isobench compare --baseline $name $current" >&2
"$ISOBENCH" compare --baseline "$name" --out "$out" "${threshold_args[@]}" "$current" \
  -o "$reports/compare.md" -o "$reports/compare.json" -o "$reports/compare.txt"
code=$?

if [ "$code" -eq 0 ] && [ "${UPDATE_BASELINE:-0}" = 1 ]; then
  "$ISOBENCH" baseline save "$name" "$current" --out "$out" --force || exit 2
fi
exit "$code"
