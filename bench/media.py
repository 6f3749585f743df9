"""Result videos for the media benchmark: realistic, hard-to-compress H.264/AAC mp4 files (5 s of 720p at
24 fps, every frame fresh noise over a moving gradient, so no encoder can shrink them for free), made once with
PyAV and cached under bench/results/ (gitignored) so every run serves the same bytes."""

from __future__ import annotations

import array
import hashlib
import math
import os
import random
from fractions import Fraction
from pathlib import Path

import av

CACHE = Path(__file__).resolve().parent / "results"
SECONDS = 5.0
WIDTH, HEIGHT, FPS = 1280, 720, 24  # Luma's default 720p, 5 s
FORMAT_VERSION = 1  # bump when the recipe changes: the cache key includes it


def video(size: int, *, seed: int = 7) -> Path:
    """A cached mp4 of exactly `size` bytes (the encoder is aimed just under it; a top-level `free` box, which
    players skip, makes up the last bytes)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"bench-{size}-{seed}-v{FORMAT_VERSION}.mp4"
    if path.exists() and path.stat().st_size == size:
        return path
    tmp = path.with_suffix(".tmp")
    bitrate = int(size * 8 * 0.93 / SECONDS)
    for _ in range(6):  # x264 overshoots its target on noise: aim lower until it fits
        _encode(tmp, bitrate=bitrate, seed=seed)
        data = tmp.read_bytes()
        if len(data) <= size - 8:
            break
        bitrate = int(bitrate * size / len(data) * 0.97)
    else:
        raise RuntimeError(f"could not encode under {size:,} bytes")
    tmp.unlink()
    pad = size - len(data)
    data += pad.to_bytes(4, "big") + b"free" + b"\0" * (pad - 8)
    path.write_bytes(data)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _encode(dest: Path, *, bitrate: int, seed: int) -> None:
    rng = random.Random(seed)
    frames = round(SECONDS * FPS)
    # Chroma: a few flat colours that drift, so the picture is not grey; luma: fresh noise on every frame.
    with av.open(str(dest), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = bitrate
        stream.options = {"preset": "ultrafast", "maxrate": str(bitrate), "bufsize": str(bitrate)}
        audio = out.add_stream("aac", rate=44100)
        audio.layout = "stereo"
        for i in range(frames):
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            for index, plane in enumerate(frame.planes):
                if index == 0:
                    plane.update(rng.randbytes(plane.buffer_size))
                else:
                    row = bytes((x + i * 3 + index * 90) % 256 for x in range(plane.line_size))
                    plane.update(row * (plane.buffer_size // plane.line_size))
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        samples, pts = int(SECONDS * 44100), 0
        while pts < samples:
            n = min(1024, samples - pts)
            frame = av.AudioFrame(format="fltp", layout="stereo", samples=n)
            tone = array.array(
                "f",
                (0.2 * math.sin(t * 2 * math.pi * 440 / 44100) + rng.uniform(-0.05, 0.05) for t in range(pts, pts + n)),
            )
            for plane in frame.planes:
                plane.update(tone.tobytes().ljust(plane.buffer_size, b"\0"))
            frame.sample_rate, frame.pts = 44100, pts
            out.mux(audio.encode(frame))
            pts += n
        out.mux(audio.encode(None))


if __name__ == "__main__":  # python -m bench.media: make (or check) the cached files
    for mb in (5, 25):
        p = video(mb * 1_000_000)
        print(p, p.stat().st_size, digest(p), os.cpu_count())
