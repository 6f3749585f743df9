"""A result's video in Discord: the file attached so it plays inline, a copy re-encoded to fit the upload limit
when the original is over it, a frame as the thumbnail when the provider gives none, and the link as the last
resort. One `ResultMedia` per delivery downloads at most once and re-encodes at most once per limit; its
temporary files are removed when the delivery ends, whatever happened."""

from __future__ import annotations

import asyncio
import enum
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import discord

from bot.jobs.ports import JobView
from bot.luma.capabilities import spec_for
from bot.media.fetch import FetchLimits, MediaError, MediaFetcher, is_local_url, remove
from bot.media.video import VideoError, fit, thumbnail_jpeg

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

# Discord's limit where no server sets one (DMs), and the smallest any server has.
DEFAULT_LIMIT: int = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES


class Kind(enum.StrEnum):
    ORIGINAL = "original"  # the provider's file, as downloaded
    REENCODED = "reencoded"  # a copy made to fit the limit
    LINK = "link"  # no video attached: the provider's link


@dataclass(frozen=True, slots=True)
class Attachment:
    kind: Kind
    limit: int  # the upload limit this was chosen for
    video: Path | None = None
    thumbnail: bytes | None = None  # a frame, when the provider gives no thumbnail
    too_large: bool = False  # LINK only: there was a file, but it could not be made to fit

    def files(self, job_id: int) -> list[discord.File]:
        """New File objects for one send (discord.py closes them after each request)."""
        files = []
        if self.video is not None:
            files.append(discord.File(str(self.video), filename=video_filename(job_id)))
        if self.thumbnail is not None:
            files.append(discord.File(io.BytesIO(self.thumbnail), filename=thumbnail_filename(job_id)))
        return files


def video_filename(job_id: int) -> str:
    return f"luma-{job_id}.mp4"


def thumbnail_filename(job_id: int) -> str:
    return f"luma-{job_id}-thumbnail.jpg"


class MediaService:
    """Process-wide: the downloader (with its own sessions and bounded concurrency) and the encoder gate."""

    def __init__(self, settings: Settings | None = None) -> None:
        if settings is not None:
            limits = FetchLimits(
                max_bytes=settings.media_max_download_mb * 1024 * 1024,
                timeout=settings.media_download_timeout_seconds,
                concurrency=settings.media_concurrent_downloads,
            )
            encodes, temp_dir = settings.media_concurrent_encodes, settings.media_temp_dir
        else:
            limits, encodes, temp_dir = FetchLimits(), 1, None
        self.fetcher = MediaFetcher(limits, temp_dir=temp_dir)
        self.encode_gate = asyncio.Semaphore(encodes)

    async def close(self) -> None:
        await self.fetcher.close()

    def for_job(self, job: JobView, provider_base_url: str | None) -> ResultMedia:
        return ResultMedia(self, job, allow_private=is_local_url(provider_base_url))


@dataclass
class ResultMedia:
    service: MediaService
    job: JobView
    allow_private: bool
    _video: Path | None = None
    _thumbnail: bytes | None = None
    _fetched: bool = False
    _fitted: dict[int, Path | None] = field(default_factory=dict)
    _temp: list[Path] = field(default_factory=list)

    async def _ensure(self) -> None:
        if self._fetched:
            return
        self._fetched = True
        job = self.job
        if not job.video_url:
            return
        try:
            self._video = await self.service.fetcher.download(job.video_url, allow_private=self.allow_private)
        except MediaError as exc:
            log.warning("job %s: the video could not be downloaded (%s); posting its link", job.id, exc)
            return
        self._temp.append(self._video)
        if not job.thumbnail_url:
            try:
                self._thumbnail = await asyncio.to_thread(thumbnail_jpeg, self._video)
            except VideoError as exc:
                log.warning("job %s: no frame for a thumbnail (%s)", job.id, exc)

    async def first(self, limit: int) -> Attachment:
        """The best way to post within `limit` bytes: the file itself, a copy that fits, or the link."""
        await self._ensure()
        if self._video is None:
            return Attachment(Kind.LINK, limit)
        if self._video.stat().st_size <= limit:
            return Attachment(Kind.ORIGINAL, limit, self._video, self._thumbnail)
        return await self._fitted_or_link(limit)

    async def after_refusal(self, refused: Attachment, *, too_large: bool) -> Attachment:
        """The next way after Discord refused `refused`: a 413 means the limit was smaller than we knew, so a
        smaller copy; any other refusal of a post with files (no Attach Files here), the bare link."""
        if not too_large:
            return Attachment(Kind.LINK, refused.limit)
        if refused.kind == Kind.ORIGINAL and refused.video is not None:
            size = refused.video.stat().st_size
            # Every server allows at least DEFAULT_LIMIT; a file already under it was refused for a limit we
            # cannot know, so aim at half of it.
            target = min(refused.limit, DEFAULT_LIMIT) if size > DEFAULT_LIMIT else size // 2
            return await self._fitted_or_link(target)
        return Attachment(Kind.LINK, refused.limit, thumbnail=self._thumbnail, too_large=True)

    async def _fitted_or_link(self, limit: int) -> Attachment:
        if limit not in self._fitted:
            self._fitted[limit] = await self._fit(limit)
        fitted = self._fitted[limit]
        if fitted is None:
            return Attachment(Kind.LINK, limit, thumbnail=self._thumbnail, too_large=True)
        return Attachment(Kind.REENCODED, limit, fitted, self._thumbnail)

    async def _fit(self, limit: int) -> Path | None:
        assert self._video is not None
        dest = self._video.with_name(f"{self._video.stem}-fit{limit}.mp4")
        self._temp.append(dest)
        # Encoding is CPU work measured in seconds: on a thread (PyAV releases the GIL inside FFmpeg), and
        # only a few at once so deliveries of small videos are not starved.
        async with self.service.encode_gate:
            try:
                result = await asyncio.to_thread(fit, self._video, dest, limit)
            except VideoError as exc:
                log.warning(
                    "job %s: the video could not be re-encoded (%s); posting its link", self.job.id, exc
                )
                return None
        if result is None:
            log.info("job %s: the video cannot fit %d bytes; posting its link", self.job.id, limit)
        else:
            log.info("job %s: re-encoded to %d bytes to fit %d", self.job.id, result.stat().st_size, limit)
        return result

    def close(self) -> None:
        remove(*self._temp)
        self._temp.clear()


def provider_base_url(job: JobView, client: object | None) -> str:
    """Where the job's provider lives: the URL of the key that made it, else its public default. A provider on
    a local address (tests) may serve its files from one."""
    if client is not None and getattr(client, "provider", None) == job.provider:
        base = getattr(client, "base_url", None)
        if isinstance(base, str):
            return base
    return spec_for(job.provider).default_base_url
