"""The job service: job JSON, the SQLite store, worker processes, the HTTP endpoint, the client."""
