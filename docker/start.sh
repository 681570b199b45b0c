#!/bin/sh
# The worker image's command: RunPod runs it in every serverless worker of the endpoint.
set -eu

# The endpoint's network volume: the weights and the JAX compilation cache live there, so only
# the first worker on a new volume downloads the weights (under a lock: workers that start
# together wait for it rather than download again).
export PARAM_DIR="${PARAM_DIR:-/runpod-volume}"

# One line in the worker's log saying which GPU this worker got.
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    || echo "foldserve-start: nvidia-smi found no GPU" >&2

# exec: the worker is PID 1 and receives RunPod's SIGTERM itself.
exec foldserve-runpod-worker "$@"
