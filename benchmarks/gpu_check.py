"""Time the trainer on CIFAR-sized synthetic data and project the paper's 200-epoch schedule.

    python benchmarks/gpu_check.py              # on the accelerator: ResNet18, batch 512, 50 000 images
    python benchmarks/gpu_check.py --compile    # the same with torch.compile
    python benchmarks/gpu_check.py --quick      # tiny sizes, runs on a CPU in seconds (for tests)

Prints one JSON object on stdout. It runs the real trainer (:func:`crlm_bench.vision.training.fit`:
data held on the device as uint8, batch augmentation there, bf16 autocast and channels_last on
CUDA) for ``--epochs`` epochs of random 3×32×32 images with CIFAR-10's shape and normalisation.
The first epoch carries the warm-up (cuDNN autotuning, compilation); the steady epoch time is the
median of the others. ``projected_s`` = first epoch + (epochs − 1) × steady epoch, scaled to a
``--project-epochs`` × 50 000-image schedule, plus one test-set evaluation per saved checkpoint
(``--project-evals``). Target on one H200: 200 epochs of ResNet18 on CIFAR-10 within 600 s.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from crlm_bench.vision import datasets, evaluation, models, recipes, training  # noqa: E402

TARGET_S = 600.0
CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000


def _random_split(info: datasets.DatasetInfo, split: str, n: int, seed: int) -> datasets.ImageDataset:
    g = torch.Generator().manual_seed(seed)
    shape = (n, info.in_channels, info.image_size, info.image_size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    targets = torch.randint(0, info.num_classes, (n,), generator=g)
    return datasets.ImageDataset(info, split, images, targets, augment=False)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (CPU smoke run)")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--batch-size", type=int, default=None, help="default 512 (64 with --quick)")
    p.add_argument(
        "--images", type=int, default=None, help="training images (default 50 000; 128 with --quick)"
    )
    p.add_argument("--epochs", type=int, default=None, help="epochs to time (default 3; 2 with --quick)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-amp", action="store_true", help="disable bf16 autocast")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--project-epochs", type=int, default=200)
    p.add_argument("--project-evals", type=int, default=10, help="test evaluations in the projected run")
    args = p.parse_args(argv)

    quick = args.quick
    batch = args.batch_size or (64 if quick else 512)
    n_train = args.images or (128 if quick else CIFAR_TRAIN)
    n_test = 64 if quick else CIFAR_TEST
    epochs = args.epochs or (2 if quick else 3)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    info = datasets.dataset_info("cifar10")
    train_set = _random_split(info, "train", n_train, 0)
    test_set = _random_split(info, "test", n_test, 1)
    model = models.build(args.model, info.num_classes, info.in_channels, seed=0)
    recipe = recipes.get_recipe("baseline").replace(batch_size=batch)
    amp = None if not args.no_amp else False

    t0 = time.perf_counter()
    options = training.FitOptions(
        epochs=epochs, seed=0, device=device, amp=amp, compile=args.compile, progress=False
    )
    result = training.fit(model, train_set, test_set, recipe, options)
    total_s = time.perf_counter() - t0

    # One float32 evaluation of the test split, timed alone (the trainer evaluates at saved epochs).
    x_test, y_test = test_set.images.to(device), test_set.targets.to(device)
    evaluation.evaluate_tensors(model, x_test, y_test, info, channels_last=device.type == "cuda")  # warm
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t1 = time.perf_counter()
    evaluation.evaluate_tensors(model, x_test, y_test, info, channels_last=device.type == "cuda")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    eval_s = (time.perf_counter() - t1) * CIFAR_TEST / n_test

    secs = [s for _, s in result.epoch_seconds]
    first = secs[0]
    steady = statistics.median(secs[1:]) if len(secs) > 1 else secs[0]
    scale = CIFAR_TRAIN / n_train
    projected = (first + (args.project_epochs - 1) * steady) * scale + args.project_evals * eval_s
    out = {
        "device": (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
        ),
        "torch": torch.__version__,
        "model": args.model,
        "batch_size": batch,
        "train_images": n_train,
        "epochs_timed": epochs,
        "amp_bf16": device.type == "cuda" and not args.no_amp,
        "channels_last": device.type == "cuda",
        "compile": args.compile,
        "quick": quick,
        "epoch_seconds": [round(s, 4) for s in secs],
        "first_epoch_s": round(first, 4),
        "steady_epoch_s": round(steady, 4),
        "images_per_s": round(n_train / steady, 1),
        "eval_10k_s": round(eval_s, 4),
        "projected_epochs": args.project_epochs,
        "projected_s": round(projected, 1),
        "target_s": TARGET_S,
        "meets_target": bool(projected <= TARGET_S),
        "total_wall_s": round(total_s, 2),
        "final_train_loss": round(result.train_loss[-1][1], 4),
    }
    if device.type == "cuda":
        out["max_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return out


if __name__ == "__main__":
    main()
