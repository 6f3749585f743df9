"""Load and latency benchmarks, run on demand (`python -m bench`), never by pytest.

The harness runs the fake Discord and the fake Luma provider from `tests/fakes/` in its own process and
the real bot (`bench.botproc`) as a separate OS process against them, so CPU and memory are the bot's own.
"""
