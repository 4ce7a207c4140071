"""``stip-rt train``: PLACEHOLDER — replaced by the issue that builds this verb."""

from __future__ import annotations

import argparse

from ..errors import StipError


def run(args: argparse.Namespace) -> int:
    raise StipError("'train' is not built yet")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="(not built yet)")
    p.set_defaults(func=run)
