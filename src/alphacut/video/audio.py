"""The source's sound, carried into the output.

The first audio stream is copied packet for packet where the output container accepts its
codec, and transcoded where it does not (to Opus for WebM, to AAC for MOV and MP4). Packets
are read from a second demuxer of the source and muxed in time order as the video advances,
so the muxer never has to hold a whole track in memory.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from .source import require_av

__all__ = ["AudioTrack"]

# What each container takes as is; anything else is transcoded to the first codec named.
_ACCEPTED = {
    "webm": ("opus", "vorbis"),
    "mov": ("aac", "alac", "mp3", "pcm_s16le", "pcm_s24le", "pcm_f32le"),
    "mp4": ("aac", "mp3", "opus", "alac", "ac3"),
}
_TRANSCODE_TO = {"webm": "libopus", "mov": "aac", "mp4": "aac"}


class AudioTrack:
    """Feeds one output container with the source's first audio stream."""

    def __init__(self, source: Path, output: Any, fmt: str) -> None:
        av = require_av()
        self._input = av.open(str(source), "r")
        self._in = self._input.streams.audio[0]
        self._packets = self._input.demux(self._in)
        self.copied = self._in.codec_context.name in _ACCEPTED[fmt]
        self._output = output
        if self.copied:
            self._out = output.add_stream_from_template(self._in)
            self._decoder = None
        else:
            rate = 48000 if fmt == "webm" else (self._in.codec_context.sample_rate or 48000)
            self._out = output.add_stream(_TRANSCODE_TO[fmt], rate=rate)
            layout = self._in.codec_context.layout
            self._out.layout = layout.name if layout else "stereo"
            self._decoder = self._in.codec_context
        self.codec = self._out.codec_context.name
        self._done = False

    def feed_until(self, seconds: float | None) -> None:
        """Mux every audio packet that starts before `seconds` (None: all that are left)."""
        while not self._done:
            packet = next(self._packets, None)
            if packet is None:
                self._done = True
                break
            self._mux(packet)
            ahead = packet.pts is not None and float(packet.pts * self._in.time_base) >= (
                seconds if seconds is not None else float("inf")
            )
            if ahead:
                break

    def _mux(self, packet: Any) -> None:
        if self._decoder is None:
            if packet.dts is None:  # the demuxer's closing empty packet
                return
            packet.stream = self._out
            self._output.mux(packet)
            return
        for frame in self._decoder.decode(packet):
            frame.pts = None  # the encoder times its own frames from the sample count
            for encoded in self._out.encode(frame):
                self._output.mux(encoded)

    def close(self) -> None:
        """Mux the rest and flush the encoder; call before the output container closes."""
        self.feed_until(None)
        if self._decoder is not None:
            for encoded in self._out.encode(None):
                self._output.mux(encoded)
        self.abort()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._input.close()
