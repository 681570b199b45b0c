"""The Ray backend of the self-hosted endpoint: warm replicas on a Ray cluster (Ray Serve)."""
