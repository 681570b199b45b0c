"""foldserve on other people's GPUs: serverless workers and the commands that deploy them."""
