"""Vision layer: data sets (:mod:`.datasets`), models with their probe points (:mod:`.models`) and
training recipes (:mod:`.training`).

    >>> from crlm_bench.vision import build, probes, train
    >>> model = build("resnet8_narrow", num_classes=10, in_channels=1, seed=0)
    >>> [p.name for p in probes(model)]
    ['input', 'layer1.0', 'layer2.0', 'layer3.0', 'avgpool', 'linear']

Data sets are read offline from the data root (``root=``, else ``$CRLM_DATA``, else
``~/.cache/crlm-bench/data``); fetch one with ``python -m crlm_bench.vision.fetch NAME --download``.
"""

from crlm_bench.vision.datasets import DatasetInfo, DatasetUnavailableError, ImageDataset, list_datasets, load
from crlm_bench.vision.models import Probe, build, count_parameters, list_models, probes
from crlm_bench.vision.training import Checkpoint, Recipe, TrainResult, evaluate, get_recipe, list_recipes, train

__all__ = [
    "Checkpoint",
    "DatasetInfo",
    "DatasetUnavailableError",
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
