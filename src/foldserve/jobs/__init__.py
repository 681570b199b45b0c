"""The job contract shared by every place a fold job runs and every client of it.

Pydantic models of the job input, policy, output, file entries and progress events; the
statuses; packing the MSA into a job; and :func:`~foldserve.jobs.run.run_fold_job`, one job
from its input to its output on an engine.
"""
