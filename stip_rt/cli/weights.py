"""``stip-rt weights list | fetch NAME... | verify [NAME] | path NAME | import FILE --name NAME``."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections.abc import Iterator
from typing import TextIO

from .. import weights
from ..errors import ConfigError


@contextlib.contextmanager
def download_bar(name: str, stream: TextIO | None = None) -> Iterator[weights.Progress]:
    """A tqdm bar for one download, drawn only when ``stream`` (default stderr) is a terminal.

    Yields the ``progress(done_bytes, total_bytes | None)`` callback the weights library reports to;
    installed for every verb by :func:`stip_rt.cli.main` through :func:`stip_rt.weights.progress_reporter`.
    """
    from tqdm import tqdm

    out = stream if stream is not None else sys.stderr
    bar = tqdm(
        total=None,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        file=out,
        disable=not out.isatty(),
        leave=False,
    )

    def report(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done  # absolute: a server that ignores Range restarts the count from 0
        bar.refresh()

    try:
        yield report
    finally:
        bar.close()


def _list(args: argparse.Namespace) -> int:
    entries = weights.list_models()
    # a file is re-hashed only when it changed since its stamp was written (as loading does)
    status = {e.name: weights.check_cached(e, weights.weights_dir() / e.file, full=False).status for e in entries}
    if args.json:
        rows = [
            {**weights.entry_as_dict(e), "cached": status[e.name] == "ok", "status": status[e.name]} for e in entries
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<30}{'kind':<10}{'size':>8}  {'cached':<8}{'licence':<14}note")
    for e in entries:
        size = f"{e.size_mb:.0f} MB" if e.size_mb else "-"
        cached = {"ok": "yes", "corrupt": "corrupt"}.get(status[e.name], "manual" if e.manual else "no")
        print(f"{e.name:<30}{e.kind:<10}{size:>8}  {cached:<8}{e.license[:13]:<14}{e.note}")
    print(f"cache: {weights.weights_dir()}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise ConfigError(f"--timeout {args.timeout:g}: expected a positive, finite number of seconds")
    for name in args.names:
        with download_bar(name) as progress:
            path = weights.fetch(name, timeout=args.timeout, force=args.force, progress=progress)
        print(path)
    return 0


def _verify(args: argparse.Namespace) -> int:
    results = weights.verify(args.name)
    bad = 0
    for r in results:
        if r.status == "missing" and args.name is None:
            continue
        bad += r.status != "ok"
        print(f"{r.name:<30}{r.status:<9}{r.message if r.status != 'ok' else r.path}")
    if not any(r.status != "missing" for r in results) and args.name is None:
        print(f"nothing cached in {weights.weights_dir()}")
    return 2 if bad else 0


def _path(args: argparse.Namespace) -> int:
    print(weights.weights_path(args.name, fetch=False))
    return 0


def _import(args: argparse.Namespace) -> int:
    print(weights.import_file(args.file, args.name))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list, download, verify and import model weights")
    verbs = p.add_subparsers(dest="weights_verb", metavar="ACTION", required=True)

    q = verbs.add_parser(
        "list", help="every model of the zoo, with size, licence and whether it is cached (yes, no, corrupt)"
    )
    q.add_argument("--json", action="store_true", help="print as JSON")
    q.set_defaults(func=_list)

    q = verbs.add_parser("fetch", help="download weights into the cache (SHA-256 checked)")
    q.add_argument("names", nargs="+", metavar="NAME", help="zoo name(s), see `stip-rt weights list`")
    q.add_argument("--force", action="store_true", help="download again even when a good copy is cached")
    q.add_argument(
        "--timeout",
        type=float,
        default=weights.DEFAULT_TIMEOUT_S,
        help="network timeout in seconds, > 0 (default: %(default)s)",
    )
    q.set_defaults(func=_fetch)

    q = verbs.add_parser("verify", help="re-hash cached weights (exit 2 when one is corrupt)")
    q.add_argument("name", nargs="?", metavar="NAME", help="one zoo name (default: everything cached)")
    q.set_defaults(func=_verify)

    q = verbs.add_parser("path", help="print the cache path of a model's weights (never downloads)")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=_path)

    q = verbs.add_parser("import", help="check a hand-downloaded file and copy it into the cache")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--name", required=True, metavar="NAME", help="zoo name the file is imported as")
    q.set_defaults(func=_import)
