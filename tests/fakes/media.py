"""Real, decodable mp4 files for the fakes, made with PyAV (whose wheels ship FFmpeg): a few seconds of small
H.264 frames with an AAC track, so a bot that downloads, probes, re-encodes or takes a frame from a result works
on the same kind of file a provider serves."""

from __future__ import annotations

import array
import functools
import io
import math
import struct
from fractions import Fraction

import av


@functools.cache
def sample_mp4(seconds: float = 2.0, width: int = 160, height: int = 90, fps: int = 12) -> bytes:
    """An H.264/AAC mp4 of moving colour bars (cached: the same bytes for the same arguments)."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast"}
        audio = container.add_stream("aac", rate=44100)
        audio.layout = "mono"
        frames = max(1, round(seconds * fps))
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            for index, plane in enumerate(frame.planes):
                # Bars that move: a different picture on every frame, so the encoder has real work.
                row = bytes((x * 7 + i * 13 + index * 80) % 256 for x in range(plane.line_size))
                plane.update(row * (plane.buffer_size // plane.line_size))
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        samples = int(seconds * 44100)
        pts = 0
        while pts < samples:
            n = min(1024, samples - pts)
            frame = av.AudioFrame(format="fltp", layout="mono", samples=n)
            tone = array.array(
                "f", (0.2 * math.sin(t * 2 * math.pi * 440 / 44100) for t in range(pts, pts + n))
            )
            frame.planes[0].update(tone.tobytes().ljust(frame.planes[0].buffer_size, b"\0"))
            frame.sample_rate, frame.pts = 44100, pts
            for packet in audio.encode(frame):
                container.mux(packet)
            pts += n
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)
    return out.getvalue()


def padded_mp4(size: int, **kwargs: float) -> bytes:
    """`sample_mp4` grown to `size` bytes with a top-level `free` box, which players and decoders skip: a file
    over an upload limit that costs nothing to make and still decodes."""
    base = sample_mp4(**kwargs)
    pad = size - len(base)
    if pad < 8:
        return base
    if pad < 2**32:
        return base + struct.pack(">I4s", pad, b"free") + b"\0" * (pad - 8)
    raise ValueError("too large")


def decodes(data: bytes) -> tuple[float, int, int]:
    """(duration in seconds, width, height) of an mp4 whose every video frame decodes; raises if one does not."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert frames > 0
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        return duration, stream.codec_context.width, stream.codec_context.height
