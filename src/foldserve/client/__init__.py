"""The job API client: one code path for RunPod and a self-hosted endpoint, job records, batch."""
