#!/usr/bin/env bash
# The Kubernetes recipe end to end with kubectl: the volume, the Indexed Job (one pod per
# node), then the merge once every pod succeeded, and the fleet table from its log.
#   scripts/fleet/k8s/run.sh [NODES]      (default 3; the cluster needs that many nodes)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
nodes="${1:-3}"
kubectl apply -f "$here/results-pvc.yaml"
sed -e "s/^  completions: .*/  completions: $nodes/" -e "s/^  parallelism: .*/  parallelism: $nodes/" \
  "$here/isobench-job.yaml" | kubectl apply -f -
kubectl wait --for=condition=complete job/isobench --timeout=2h
kubectl apply -f "$here/merge-job.yaml"
kubectl wait --for=condition=complete job/isobench-merge --timeout=30m
kubectl logs job/isobench-merge
