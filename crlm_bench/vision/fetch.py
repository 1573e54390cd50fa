"""Check or fetch a data set: ``python -m crlm_bench.vision.fetch NAME [--root DIR] [--download]``.

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
    try:
        for split in datasets.SPLITS:
            ds = datasets.load(args.name, split, root=args.root, download=args.download)
            log.info("%s %s: %d images of shape %s", args.name, split, len(ds), tuple(ds.images.shape[1:]))
    except (KeyError, datasets.DatasetUnavailableError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
