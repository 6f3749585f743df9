"""The test suite never reads the developer's own settings (a sharded .env once made the reliability tests
fail): no .env of the checkout or of the working directory, no exported setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.settings import env_file

ROOT = Path(__file__).resolve().parents[2]


def test_the_env_file_the_tests_would_read_is_outside_the_checkout_and_absent():
    path = env_file()
    assert ROOT not in path.parents
    assert not path.exists()


def test_a_bot_process_started_from_a_directory_with_a_dotenv_does_not_read_it(tmp_path):
    # As the reliability tests start bots: this process's environment, run from wherever pytest runs.
    (tmp_path / ".env").write_text("SHARD_COUNT=2\nSHARD_IDS=1\nDISCORD_TOKEN=from-dotenv\nLUMA_API_TOKEN=x\n")
    code = "from bot.settings import load_settings as l; s = l(discord_token='t', luma_api_token='p'); print(s.shard_count, s.shard_ids)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["None", "[]"]
