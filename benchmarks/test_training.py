"""Training benchmarks (pytest-benchmark): CPU throughput of the small models on Fashion-MNIST,
the Fashion-MNIST accuracy budget, and a smoke run of the GPU check script.

    pytest benchmarks/test_training.py                          # throughput + GPU-check smoke run
    pytest benchmarks/test_training.py -m slow                  # + the accuracy budget (minutes)
    pytest benchmarks/test_training.py -m slow --benchmark-json=out.json

Figures go to ``benchmark.extra_info``. Threads: ``$CRLM_BENCH_THREADS`` (default 2, the CPU budget
of the harness). The accuracy budget is gated behind ``-m slow`` (or ``CRLM_SLOW=1``) because it
trains for minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from benchmarks.conftest import fashion_mnist_or_skip
from crlm_bench.vision.models import SMALL_MODELS, build
from crlm_bench.vision.recipes import get_recipe
from crlm_bench.vision.training import FitOptions, train

#: The Fashion-MNIST budget: a small model reaches >= 90 % test accuracy (all 10 000 test images)
#: within 5 minutes on 2 CPU cores. The paper's baseline recipe (SGD, momentum 0.9, weight decay
#: 5e-4, cosine schedule, crop with padding 4 + flip) with two documented overrides for a short run:
#: lr 0.05 and the cosine schedule stepped per batch instead of per epoch.
FMNIST_BUDGET = dict(model="vgg6_narrow", epochs=10, seed=0, overrides=dict(lr=0.05, schedule_unit="step"))
BUDGET_S = 300.0
TARGET_ACCURACY = 0.90


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_small_model_throughput_fashion_mnist(benchmark, cpu_threads, name):
    """Training images per second (steady epoch) of the baseline recipe on Fashion-MNIST, CPU."""
    fashion_mnist_or_skip()
    subset = 2048

    def run():
        model = build(name, 10, 1, seed=0)
        options = FitOptions(
            epochs=2, seed=0, device="cpu", train_subset=subset, test_subset=256, progress=False
        )
        return train(model, "fashion-mnist", "baseline", options)

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    steady = dict(result.epoch_seconds)[2]
    benchmark.extra_info.update(
        model=name,
        threads=cpu_threads,
        batch_size=128,
        images=subset,
        train_images_per_s=round(subset / steady, 1),
        projected_epoch_s=round(60_000 / (subset / steady), 1),
    )
    assert result.train_images_per_s > 0


@pytest.mark.slow
def test_fashion_mnist_accuracy_budget(benchmark, cpu_threads, slow_enabled):
    """A small model reaches >= 90 % on the full Fashion-MNIST test set within 5 minutes of CPU."""
    fashion_mnist_or_skip()
    cfg = FMNIST_BUDGET
    recipe = get_recipe("baseline").replace(**cfg["overrides"])

    def run():
        model = build(cfg["model"], 10, 1, seed=cfg["seed"])
        epochs = cfg["epochs"]
        options = FitOptions(
            epochs=epochs, seed=cfg["seed"], save_at=range(1, epochs + 1), device="cpu", progress=None
        )
        t0, c0 = time.perf_counter(), time.process_time()
        result = train(model, "fashion-mnist", recipe, options)
        return result, time.perf_counter() - t0, time.process_time() - c0

    result, wall, cpu = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(
        model=cfg["model"],
        recipe={
            k: getattr(recipe, k)
            for k in ("lr", "momentum", "weight_decay", "batch_size", "augment", "schedule_unit")
        },
        epochs=cfg["epochs"],
        threads=cpu_threads,
        test_images=10_000,
        accuracy=result.final_accuracy,
        accuracy_by_epoch=dict(result.test_accuracy),
        wall_time_s=round(wall, 1),
        process_cpu_time_s=round(cpu, 1),
        train_images_per_s=round(result.train_images_per_s, 1),
        budget_s=BUDGET_S,
    )
    if wall > BUDGET_S:  # timing depends on what else runs on the machine: reported, not asserted
        warnings.warn(f"Fashion-MNIST budget run took {wall:.0f} s > {BUDGET_S:.0f} s", stacklevel=1)
    assert result.final_accuracy >= TARGET_ACCURACY


def test_gpu_check_quick_runs_on_cpu(benchmark):
    """The prepared GPU check runs end to end (tiny sizes) and prints the JSON it promises."""
    script = Path(__file__).with_name("gpu_check.py")

    def run():
        command = [sys.executable, str(script), "--quick", "--device", "cpu"]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)

    proc = benchmark.pedantic(run, rounds=1, iterations=1)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("images_per_s", "steady_epoch_s", "projected_s", "target_s", "meets_target", "batch_size"):
        assert key in report
    assert report["model"] == "resnet18" and report["quick"] is True and report["images_per_s"] > 0
    benchmark.extra_info.update(report)
