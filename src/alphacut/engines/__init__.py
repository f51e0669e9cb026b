"""Where a batch runs besides the local thread pool of `batch.run`: Ray, in `engines.ray`.
(Where its files live, local paths or fsspec URLs such as ``s3://``, is `alphacut.storage`.)"""
