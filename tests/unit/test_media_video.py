"""Re-encoding to fit an upload limit, and thumbnails, on real mp4 files made with PyAV."""

from __future__ import annotations

from pathlib import Path

from bot.media.video import VideoInfo, fit, plan_bitrates, thumbnail_jpeg
from tests.fakes.media import decodes, padded_mp4


def test_a_video_too_long_for_the_limit_is_not_encoded_to_mush() -> None:
    assert plan_bitrates(VideoInfo(duration=600, width=1920, height=1080, has_audio=True), 10 * 2**20) is None
    video, audio = plan_bitrates(VideoInfo(duration=10, width=1920, height=1080, has_audio=True), 10 * 2**20)
    assert audio == 96_000 and (video + audio) * 10 / 8 < 10 * 2**20


def test_fit_writes_a_decodable_copy_under_the_limit(tmp_path: Path) -> None:
    source = tmp_path / "in.mp4"
    source.write_bytes(padded_mp4(3 * 2**20))
    out = fit(source, tmp_path / "out.mp4", 2**20)
    assert out is not None and out.stat().st_size <= 2**20
    assert decodes(out.read_bytes())[1:] == (160, 90)
    assert fit(source, tmp_path / "tiny.mp4", 10_000) is None and not (tmp_path / "tiny.mp4").exists()


def test_a_thumbnail_is_a_jpeg_of_a_frame(tmp_path: Path) -> None:
    source = tmp_path / "in.mp4"
    source.write_bytes(padded_mp4(0))
    assert thumbnail_jpeg(source)[:3] == b"\xff\xd8\xff"
