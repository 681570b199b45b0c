"""The self-hosted endpoint (``foldserve serve``): routes, auth, the SQLite store, workers."""
