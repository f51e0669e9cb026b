"""Where a batch runs (the local thread pool lives in `batch.run`; Ray in `engines.ray`) and
where its files live (`engines.storage`: local paths or fsspec URLs such as ``s3://``)."""
