"""Video: an edge on top of the image pipeline that owns containers and timing only."""

from ..errors import UnsupportedVideo
from .run import VideoReport, remove_frames, remove_video
from .sink import FORMATS
from .source import VideoInfo, VideoSource

__all__ = [
    "FORMATS",
    "UnsupportedVideo",
    "VideoInfo",
    "VideoReport",
    "VideoSource",
    "remove_frames",
    "remove_video",
]
