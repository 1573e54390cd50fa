"""Fixtures shared by the benchmarks: CPU threads, the slow gate, Fashion-MNIST availability."""

from __future__ import annotations

import os

import pytest
import torch

from crlm_bench.vision import datasets

#: threads for CPU benchmarks: $CRLM_BENCH_THREADS (default 2, this machine's cores)
THREADS = int(os.environ.get("CRLM_BENCH_THREADS", "2"))


def fashion_mnist_or_skip() -> None:
    try:
        datasets.load("fashion-mnist", "test")
    except datasets.DatasetUnavailableError as err:
        pytest.skip(f"Fashion-MNIST unavailable: {err}")


@pytest.fixture
def cpu_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield THREADS
    torch.set_num_threads(before)


@pytest.fixture
def slow_enabled(request):
    """Skip unless asked for with ``-m slow`` (or ``CRLM_SLOW=1``): these run for minutes."""
    markexpr = request.config.getoption("-m") or ""
    if "slow" not in markexpr or "not slow" in markexpr:
        if os.environ.get("CRLM_SLOW") != "1":
            pytest.skip("runs for minutes: run with -m slow (or CRLM_SLOW=1)")
