"""Amazon SageMaker: the BYOC container contract (``/ping``, ``/invocations``), the asynchronous
endpoint with scale-to-zero autoscaling (``foldserve deploy sagemaker``) and the folding workflow
as a SageMaker Pipeline definition."""
