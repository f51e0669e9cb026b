"""Video: an edge on top of the image pipeline that owns containers and timing only."""

from ..errors import UnsupportedVideo
from .options import VideoOptions
from .run import VideoReport, frame_masks, remove_frames, remove_video
from .sink import FORMATS
from .smooth import Smoothing, TemporalSmoother
from .source import VideoInfo, VideoSource

__all__ = [
    "FORMATS",
    "Smoothing",
    "TemporalSmoother",
    "UnsupportedVideo",
    "VideoInfo",
    "VideoOptions",
    "VideoReport",
    "VideoSource",
    "frame_masks",
    "remove_frames",
    "remove_video",
]
