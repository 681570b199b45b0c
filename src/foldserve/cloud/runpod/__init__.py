"""RunPod serverless: the worker (``python -m foldserve.cloud.runpod``) and its deployment.

The worker loads the weights once, from the network volume mounted at ``/runpod-volume``
(downloading them there first, once, when they are missing), and then serves jobs through the
RunPod SDK's own worker loop with the job logic of the self-hosted endpoint.
"""
