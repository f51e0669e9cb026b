"""Background removal for Ray Data users: one line on an existing dataset.

::

    import ray
    from alphacut.ray import RemoveBackground

    ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)
    ds = ds.map_batches(RemoveBackground, fn_constructor_kwargs={"model": "u2netp"},
                        compute=ray.data.ActorPoolStrategy(size=4), num_cpus=1, batch_size=8)

Each row gains "cutout" (the encoded PNG) and "error" ("" unless that image failed).
Importing this module does not import ray; it needs ``pip install 'alphacut[ray]'`` to run.
"""

from .engines.ray import RayOptions, RemoveBackground, RemoverRecipe, run_batch_ray

__all__ = ["RayOptions", "RemoveBackground", "RemoverRecipe", "run_batch_ray"]
