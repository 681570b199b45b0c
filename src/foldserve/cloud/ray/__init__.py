"""foldserve's endpoint on a Ray cluster: the YAML that deploys it, on VMs or on Kubernetes.

:mod:`foldserve.cloud.ray.deploy` renders a cluster launcher file for ``ray up`` and a KubeRay
manifest for ``kubectl apply``: a CPU head that runs ``foldserve serve --backend ray`` (the API,
its job store and the Serve application) and GPU workers that scale from zero.
"""
