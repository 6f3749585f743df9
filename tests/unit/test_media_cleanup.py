"""A process killed mid-delivery leaves its download behind; the next start removes such files, and only
those: another process's delivery in progress and other programs' files are left alone."""

from __future__ import annotations

import os
import time

from bot.media.fetch import STALE_AFTER, remove_stale_files


def test_only_old_leftovers_of_this_bot_are_removed(tmp_path) -> None:
    now = time.time()
    old = now - STALE_AFTER - 60
    leftover, thumb, fresh, other = (
        tmp_path / "luma-a1b2c3.mp4",
        tmp_path / "luma-d4e5f6.jpg",
        tmp_path / "luma-g7h8i9.mp4",
        tmp_path / "holiday.mp4",
    )
    for path in (leftover, thumb, fresh, other):
        path.write_bytes(b"x")
    for path in (leftover, thumb, other):
        os.utime(path, (old, old))

    assert remove_stale_files(str(tmp_path), now=now) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holiday.mp4", "luma-g7h8i9.mp4"]
