"""Time one paper-scale profile: ResNet18, CIFAR-10 shapes, 5000 points × 1023 neighbours.

    python benchmarks/gpu_profile_check.py                 # on the accelerator: the paper's sizes
    python benchmarks/gpu_profile_check.py --points 200    # time 200 points, project to 5000
    python benchmarks/gpu_profile_check.py --quick         # tiny sizes, runs on a CPU (for tests)

Prints one JSON object on stdout. The network is ResNet18 at initialisation and the images are
random CIFAR-shaped uint8 (the weights and data change the numbers, not the work): TwoNN over
``--id-runs`` runs of ``--id-samples`` images at every probe, then the curvature pass over
``--points`` points with 2^toggles − 1 perturbation neighbours each, fits in float64. The
curvature time is projected linearly to ``--project-points`` (5000). Target on one H200: ≤ 600 s
for the whole cell (issue 4). Peak host and device memory are reported too.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from crlm_bench.experiment import probing  # noqa: E402
from crlm_bench.experiment.cell import Measurement  # noqa: E402
from crlm_bench.vision import datasets, models  # noqa: E402

TARGET_S = 600.0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (CPU smoke run)")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--points", type=int, default=None, help="points timed (default 5000; 3 with --quick)")
    p.add_argument("--toggles", type=int, default=None, help="default 10 (3 with --quick)")
    p.add_argument("--id-runs", type=int, default=None, help="default 10 (1 with --quick)")
    p.add_argument("--id-samples", type=int, default=None, help="default 5000 (64 with --quick)")
    p.add_argument("--precision", choices=["float32", "float64"], default="float64")
    p.add_argument("--memory-mb", type=int, default=16384, help="activations held at once (default 16 GiB)")
    p.add_argument("--project-points", type=int, default=5000)
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    args = p.parse_args(argv)
    q = args.quick
    m = Measurement(
        points=args.points or (3 if q else 5000),
        toggles=args.toggles or (3 if q else 10),
        id_runs=args.id_runs or (1 if q else 10),
        id_samples=args.id_samples or (64 if q else 5000),
        precision=args.precision,
    )
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    info = datasets.dataset_info("cifar10")
    n_images = max(m.points, m.id_samples)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_images, 3, 32, 32), dtype=torch.uint8, generator=g)
    split = datasets.ImageDataset(
        info, "test", images, torch.zeros(n_images, dtype=torch.long), augment=False
    )
    model = models.build(args.model, 10, 3, seed=0).to(device).eval()
    probes = models.probes(model)
    dtype = torch.float64 if m.precision == "float64" else torch.float32
    plan = probing.Plan(m, probing.choose_points(split.images, m), device, dtype, args.memory_mb * 2**20)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    ids = probing.intrinsic_dimensions(model, probes, split.images, "cifar10", plan)
    sync()
    t_id = time.perf_counter() - t0
    sample = probing.activations(model, probes, datasets.normalize(split.images[:1].to(device), "cifar10"))
    widths = {k: v.shape[1] for k, v in sample.items()}
    dims = {
        pr.name: probing.dimension_for_fit(ids[pr.name]["mean"], m.neighbours, widths[pr.name])[0]
        for pr in probes
    }
    t0 = time.perf_counter()
    probing.curvature_chunks(model, probes, split.images, "cifar10", [dims], widths, [plan], progress=False)
    sync()
    t_curv = time.perf_counter() - t0
    projected = t_id + t_curv * args.project_points / m.points
    out = {
        "check": "paper-scale profile",
        "model": args.model,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "points_timed": m.points,
        "neighbours": m.neighbours,
        "id_runs": m.id_runs,
        "id_samples": m.id_samples,
        "precision": m.precision,
        "dims": dims,
        "id_seconds": round(t_id, 2),
        "curvature_seconds": round(t_curv, 2),
        "points_per_s": round(m.points / t_curv, 3),
        "projected_cell_s": round(projected, 1),
        "target_s": TARGET_S,
        "meets_target": projected <= TARGET_S,
        "peak_host_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_device_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        if device.type == "cuda"
        else None,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
