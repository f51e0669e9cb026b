"""Background removal for Ray Data users: a map over an existing dataset.

::

    import ray
    from alphacut.ray import RemoveBackground

    ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)
    spare = ray.cluster_resources()["CPU"] - 1  # one CPU stays free for the read tasks
    ds = ds.map_batches(RemoveBackground, fn_constructor_kwargs={"model": "u2netp"},
                        compute=ray.data.ActorPoolStrategy(size=max(1, int(spare))),
                        num_cpus=min(1.0, spare), batch_size=8)

Each row gains "cutout" (the encoded PNG) and "error" ("" unless that image failed).

The pool leaves one CPU free: actors that take every CPU leave Ray Data's read tasks (one
CPU each) unscheduled, and the dataset waits forever. Each actor logs a warning when it
finds no CPU free. On a one-CPU machine the single actor takes none (``num_cpus=0``) and
still runs one inference thread.

Importing this module does not import ray; it needs ``pip install 'alphacut[ray]'`` to run.
"""

from .engines.ray import RayOptions, RemoverRecipe, run_batch_ray
from .engines.ray_dataset import RemoveBackground

__all__ = ["RayOptions", "RemoveBackground", "RemoverRecipe", "run_batch_ray"]
