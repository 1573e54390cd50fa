"""Check or fetch a data set: ``crlm-bench fetch NAME [--data-dir DIR] [--download]``, or
``python -m crlm_bench.vision.fetch NAME [--root DIR] [--download]``.

Without ``--download`` it only checks that both splits load (no network). With ``--download`` it
fetches whatever is missing into the data root (``--root``, else ``$CRLM_DATA``, else
``~/.cache/crlm-bench/data``). Exit status 0 when both splits load, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys

from crlm_bench.vision import datasets

log = logging.getLogger("crlm_bench.vision.fetch")


def check(name: str, *, root: str | None = None, download: bool = False) -> int:
    """Load both splits of ``name`` (downloading what is missing only with ``download``), log what
    was found or what is wrong; 0 when both load, 1 otherwise."""
    try:
        for split in datasets.SPLITS:
            ds = datasets.load(name, split, root=root, download=download)
            log.info("%s %s: %d images of shape %s", name, split, len(ds), tuple(ds.images.shape[1:]))
    except (KeyError, datasets.DatasetUnavailableError) as err:
        log.error("%s", err)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crlm_bench.vision.fetch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("name", help=f"data set: {', '.join(datasets.list_datasets())}")
    parser.add_argument(
        "--root", default=None, help="data root (default: $CRLM_DATA or ~/.cache/crlm-bench/data)"
    )
    parser.add_argument("--download", action="store_true", help="allow downloading what is missing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    return check(args.name, root=args.root, download=args.download)


if __name__ == "__main__":
    sys.exit(main())
