"""Vision layer: data sets (:mod:`.datasets`), models with their probe points (:mod:`.models`),
training recipes (:mod:`.recipes`), mixup (:mod:`.mixing`), the trainer (:mod:`.training`, drawing
from :mod:`.sampling`), its checkpoints (:mod:`.checkpoints`) and test accuracy (:mod:`.evaluation`).

    >>> from crlm_bench.vision import build, probes, train
    >>> model = build("resnet8_narrow", num_classes=10, in_channels=1, seed=0)
    >>> [p.name for p in probes(model)]
    ['input', 'layer1.0', 'layer2.0', 'layer3.0', 'avgpool', 'linear']

Data sets are read offline from the data root (``root=``, else ``$CRLM_DATA``, else
``~/.cache/crlm-bench/data``); fetch one with ``crlm-bench fetch NAME --download``.
"""

from crlm_bench.vision.checkpoints import Checkpoint
from crlm_bench.vision.datasets import DatasetInfo, DatasetUnavailableError, ImageDataset, list_datasets, load
from crlm_bench.vision.evaluation import evaluate
from crlm_bench.vision.models import Probe, build, count_parameters, list_models, probes
from crlm_bench.vision.recipes import Recipe, get_recipe, list_recipes
from crlm_bench.vision.training import FitOptions, TrainResult, train

__all__ = [
    "Checkpoint",
    "DatasetInfo",
    "DatasetUnavailableError",
    "FitOptions",
    "ImageDataset",
    "Probe",
    "Recipe",
    "TrainResult",
    "build",
    "count_parameters",
    "evaluate",
    "get_recipe",
    "list_datasets",
    "list_models",
    "list_recipes",
    "load",
    "probes",
    "train",
]
