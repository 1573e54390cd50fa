"""The ``crlm-bench`` command line. Exit codes: 0 success, 1 failure, 2 usage error."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("crlm_bench")


def _demo(args: argparse.Namespace) -> int:
    from crlm_bench.demo import render

    sys.stdout.write(render(seed=args.seed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crlm-bench",
        description="Replication harness for Kaufman & Azencot, Data Representations' Study of Latent "
        "Image Manifolds (ICML 2023).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="estimated against true curvature on synthetic manifolds")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic samples (default 0)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
