"""``python -m foldserve.cloud.runpod``: the RunPod serverless worker."""

from foldserve.cloud.runpod.worker import main

main()
