"""``stip-rt cache list | prune [--max-size SIZE] [--all]``: the ONNX export and TensorRT engine cache.

The weights are not part of it (``stip-rt weights``). The size limit applied after every new
entry is ``$STIP_RT_CACHE_MAX_GB`` (:mod:`stip_rt.runtime.engine_cache`).
"""

from __future__ import annotations

import argparse
import math
import re
import time

from ..errors import ConfigError
from ..paths import cache_root
from ..runtime import engine_cache as ec

_UNITS = {"": 1e9, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12}


def parse_size(text: str) -> int:
    """Bytes of a size such as ``2GB``, ``500 MB``, ``1.5g`` or ``3`` (GB); decimal units (1 GB = 10⁹ bytes).

    Raises:
        ConfigError: not a size.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    size = float(m.group(1)) * _UNITS[unit] if m is not None and unit in _UNITS else math.inf
    if not math.isfinite(size):  # also 400 digits: an infinite float
        raise ConfigError(f"--max-size {text!r}: expected a size such as 2GB, 500MB or 1.5 (GB)")
    return int(size)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _limit_text() -> str:
    limit = ec.cache_limit_bytes()
    return "no limit" if limit is None else f"limit {_mb(limit)} (${ec.CACHE_MAX_ENV})"


def _list(args: argparse.Namespace) -> int:
    entries = ec.cache_entries()
    print(f"{'kind':<8}{'size':>12}  {'last used':<18}name")
    for e in reversed(entries):  # most recently used first
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        print(f"{e.kind:<8}{_mb(e.size):>12}  {used:<18}{e.name}")
    where = f"{len(entries)} entries, {_mb(sum(e.size for e in entries))} in {cache_root()} (onnx/, engines/)"
    try:
        limit = _limit_text()
    except ConfigError:  # the listing above is shown; the malformed variable is the error line
        print(f"{where}; limit: ${ec.CACHE_MAX_ENV} is malformed")
        raise
    print(f"{where}; {limit}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    if args.all:
        limit: int | None = 0
    elif args.max_size is not None:
        limit = parse_size(args.max_size)
    else:
        limit = ec.cache_limit_bytes()
    removed = ec.prune_cache(limit)
    for e in removed:
        print(f"removed {e.kind} {e.name} ({_mb(e.size)})")
    left = ec.cache_entries()
    print(
        f"removed {len(removed)} entries ({_mb(sum(e.size for e in removed))}); "
        f"{len(left)} left ({_mb(sum(e.size for e in left))})"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="list or prune the cache of ONNX exports and TensorRT engines")
    verbs = p.add_subparsers(dest="cache_verb", metavar="ACTION", required=True)

    q = verbs.add_parser("list", help="every cached export and engine, most recently used first, with sizes")
    q.set_defaults(func=_list)

    q = verbs.add_parser("prune", help="delete the least recently used entries until the cache fits a size")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--max-size", metavar="SIZE", help="e.g. 2GB, 500MB (default: $STIP_RT_CACHE_MAX_GB, 4 GB)")
    g.add_argument("--all", action="store_true", help="delete every entry")
    q.set_defaults(func=_prune)
