"""Decoding inputs and encoding outputs: the two ends of the pipeline."""

from .atomic import atomic_write_bytes, atomic_writer
from .decode import DecodedImage, ImageSource, decode, describe_source
from .encode import MEDIA_TYPES, SUFFIXES, encode

__all__ = [
    "MEDIA_TYPES",
    "SUFFIXES",
    "DecodedImage",
    "ImageSource",
    "atomic_write_bytes",
    "atomic_writer",
    "decode",
    "describe_source",
    "encode",
]
