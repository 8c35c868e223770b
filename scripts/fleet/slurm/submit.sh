#!/usr/bin/env bash
# Queues isobench on N nodes (a job array, one exclusive node per task) and the merge
# after it. Prints the two job ids.
#
#   ISOBENCH_FLEET_DIR=/shared/isobench scripts/fleet/slurm/submit.sh 10 [sbatch flags…]
#
# Extra arguments go to both sbatch calls (e.g. --partition=kvm). The fleet report is
# written to $ISOBENCH_FLEET_DIR/report/ (fleet.md, fleet.html, fleet.csv, fleet.json).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
nodes="${1:?usage: submit.sh NODES [sbatch flags…]}"
shift
case "$nodes" in
  '' | *[!0-9]*) echo "submit.sh: NODES must be a number of nodes, got '$nodes'" >&2; exit 2 ;;
esac
: "${ISOBENCH_FLEET_DIR:?set ISOBENCH_FLEET_DIR to a directory every node can write}"
for used in inputs report results; do
  if [ -e "$ISOBENCH_FLEET_DIR/$used" ]; then
    echo "submit.sh: $ISOBENCH_FLEET_DIR/$used exists from an earlier fleet: give a new ISOBENCH_FLEET_DIR (the merge pools every run in inputs/)" >&2
    exit 2
  fi
done
mkdir -p "$ISOBENCH_FLEET_DIR"
cd "$ISOBENCH_FLEET_DIR"
array=$(sbatch --parsable --array="0-$((nodes - 1))" "$@" "$here/isobench-array.sbatch")
array="${array%%;*}"
merge=$(sbatch --parsable --dependency="afterok:$array" "$@" "$here/isobench-merge.sbatch")
merge="${merge%%;*}"
echo "array job $array, merge job $merge"
