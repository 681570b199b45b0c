#!/bin/sh
# The image's entrypoint. RunPod runs the image as it is, in every serverless worker of the
# endpoint: the RunPod worker. SageMaker runs it as `docker run IMAGE serve`: the SageMaker
# inference container (GET /ping, POST /invocations on port 8080).
set -eu

# One line in the log saying which GPU this container got.
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    || echo "foldserve-start: nvidia-smi found no GPU" >&2

# exec: foldserve is PID 1 and receives the platform's SIGTERM itself.
if [ "${1:-}" = "serve" ]; then
    shift
    # SageMaker unpacks the model data (the model's ModelDataUrl, a tar.gz of params/) into
    # /opt/ml/model; a PARAM_DIR in the model's environment names a mounted path instead.
    export PARAM_DIR="${PARAM_DIR:-/opt/ml/model}"
    exec foldserve serve --sagemaker "$@"
fi

# The endpoint's network volume: the weights and the JAX compilation cache live there, so only
# the first worker on a new volume downloads the weights (under a lock: workers that start
# together wait for it rather than download again).
export PARAM_DIR="${PARAM_DIR:-/runpod-volume}"
exec foldserve-runpod-worker "$@"
