"""What the bot does to a video file, with PyAV (FFmpeg's libraries, shipped in its wheels): read its length and
size, take a frame for a thumbnail, and re-encode it to H.264/AAC mp4 so it fits an upload limit. Blocking
functions, decoding a frame at a time (memory does not grow with the file): run them off the event loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

log = logging.getLogger(__name__)

# The re-encoded file aims this far under the limit: x264's average bitrate overshoots a little on short clips,
# and the mp4 container adds its own bytes.
HEADROOM = 0.90
CONTAINER_OVERHEAD = 64 * 1024
AUDIO_BITRATE = 96_000
# Below this the picture is mush: post the link instead.
MIN_VIDEO_BITRATE = 150_000
# The largest frame height worth the bitrate: fewer bits spread over fewer pixels look better than blocks.
HEIGHT_FOR_BITRATE = ((4_000_000, 1080), (2_000_000, 720), (1_000_000, 540), (500_000, 360), (0, 240))
THUMBNAIL_WIDTH = 640


class VideoError(Exception):
    """The file is not a video PyAV can read or write."""


@dataclass(frozen=True, slots=True)
class VideoInfo:
    duration: float  # seconds
    width: int
    height: int
    has_audio: bool


def probe(path: Path) -> VideoInfo:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError("no video stream")
            stream = container.streams.video[0]
            duration = 0.0
            if container.duration:
                duration = container.duration / av.time_base
            elif stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            return VideoInfo(
                duration=duration,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                has_audio=bool(container.streams.audio),
            )
    except av.FFmpegError as exc:
        raise VideoError(str(exc)) from None


def thumbnail_jpeg(path: Path, *, at: float = 1.0) -> bytes:
    """A JPEG of the frame about `at` seconds in (the first frame of a shorter video), at most 640 wide."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            chosen = None
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is not None and frame.time >= at:
                    break
            if chosen is None:
                raise VideoError("no frame decodes")
            width = min(THUMBNAIL_WIDTH, chosen.width) // 2 * 2
            height = max(2, round(chosen.height * width / chosen.width) // 2 * 2)
            codec = av.CodecContext.create("mjpeg", "w")
            codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
            codec.time_base = Fraction(1, 25)
            image = chosen.reformat(width=width, height=height, format="yuvj420p")
            image.pts = 0
            packets = [*codec.encode(image), *codec.encode(None)]
            return b"".join(bytes(p) for p in packets)
    except (av.FFmpegError, IndexError) as exc:
        raise VideoError(str(exc) or type(exc).__name__) from None


def plan_bitrates(info: VideoInfo, limit: int) -> tuple[int, int] | None:
    """(video, audio) bits per second that make a file of `info`'s length fit in `limit` bytes, or None when
    even the lowest useful bitrate would not fit."""
    if info.duration <= 0:
        return None
    budget = limit * HEADROOM - CONTAINER_OVERHEAD
    total = budget * 8 / info.duration
    audio = AUDIO_BITRATE if info.has_audio else 0
    if info.has_audio and total - audio < MIN_VIDEO_BITRATE * 2:
        audio = 48_000
    video = int(total - audio)
    if video < MIN_VIDEO_BITRATE:
        return None
    return video, audio


def _target_size(info: VideoInfo, video_bitrate: int) -> tuple[int, int]:
    max_height = next(h for floor, h in HEIGHT_FOR_BITRATE if video_bitrate >= floor)
    if info.height <= max_height:
        return info.width // 2 * 2, info.height // 2 * 2
    width = round(info.width * max_height / info.height)
    return max(2, width // 2 * 2), max_height


def fit(source: Path, dest: Path, limit: int) -> Path | None:
    """Re-encode `source` to an H.264/AAC mp4 at `dest` no larger than `limit` bytes; None when it cannot fit
    (too long for the limit, or over it even at a lower bitrate). Raises VideoError when it cannot be read."""
    info = probe(source)
    plan = plan_bitrates(info, limit)
    if plan is None:
        log.info("a %.1fs video cannot fit %d bytes at a watchable bitrate", info.duration, limit)
        return None
    video_bitrate, audio_bitrate = plan
    for scale in (1.0, 0.7):
        _encode(source, dest, info, int(video_bitrate * scale), audio_bitrate)
        size = dest.stat().st_size
        if size <= limit:
            return dest
        log.info("re-encoded video is %d bytes, over %d; trying a lower bitrate", size, limit)
    dest.unlink(missing_ok=True)
    return None


def _encode(source: Path, dest: Path, info: VideoInfo, video_bitrate: int, audio_bitrate: int) -> None:
    width, height = _target_size(info, video_bitrate)
    try:
        # The moov box first, so Discord's player starts before the whole file has arrived.
        options = {"movflags": "+faststart"}
        with av.open(str(source)) as src, av.open(str(dest), "w", format="mp4", options=options) as out:
            in_video = src.streams.video[0]
            in_video.codec_context.thread_count = 1  # decoder threads each hold frames; one keeps memory flat
            rate = in_video.average_rate or in_video.guessed_rate or Fraction(24)
            video = out.add_stream("libx264", rate=rate)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.bit_rate = video_bitrate
            video.options = {
                "preset": "veryfast",
                # x264 keeps a window of frames for rate control and a few per thread: bounded here, so an
                # encode holds a few frames rather than dozens, whatever the file's size.
                "rc-lookahead": "10",
                "threads": "2",
                "maxrate": str(int(video_bitrate * 1.2)),
                "bufsize": str(int(video_bitrate * 2)),
            }
            streams: list[av.VideoStream | av.AudioStream] = [in_video]
            audio = None
            if audio_bitrate and src.streams.audio:
                in_audio = src.streams.audio[0]
                streams.append(in_audio)
                audio = out.add_stream("aac", rate=in_audio.codec_context.sample_rate or 44100)
                audio.layout = "stereo" if in_audio.codec_context.channels > 1 else "mono"
                audio.bit_rate = audio_bitrate
            for packet in src.demux(*streams):
                # Only the video and audio streams are demuxed, so a frame is one or the other.
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        if (frame.width, frame.height) != (width, height):
                            frame = frame.reformat(width=width, height=height, format="yuv420p")
                        out.mux(video.encode(frame))
                    elif isinstance(frame, av.AudioFrame) and audio is not None:
                        out.mux(audio.encode(frame))
            out.mux(video.encode(None))
            if audio is not None:
                out.mux(audio.encode(None))
    except (av.FFmpegError, IndexError, ValueError) as exc:
        dest.unlink(missing_ok=True)
        raise VideoError(str(exc) or type(exc).__name__) from None
