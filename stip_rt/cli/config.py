"""``stip-rt config``: print the effective run configuration (the whole tree, as YAML).

Examples::

    stip-rt config                                    # every key with its default
    stip-rt config --config run.yaml --set track.min_hits=3
    stip-rt config --defaults                         # the commented defaults.yaml (types, meanings)

``stip-rt track SOURCE ... --print-config`` prints the same tree for the same options.
"""

from __future__ import annotations

import argparse

from .run_options import RUN_DESTS, TRACK_DESTS, add_run_options, add_track_options, config_from_args


def run(args: argparse.Namespace) -> int:
    from ..run_load import config_yaml, defaults_text

    if args.defaults:
        print(defaults_text(), end="")
        return 0
    extra = {"source": args.source} if args.source is not None else {}
    print(config_yaml(config_from_args(args, (*RUN_DESTS, *TRACK_DESTS), **extra)), end="")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "config",
        help="print the effective run configuration (every key)",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", nargs="?", metavar="SOURCE", help="the source, as `track` takes it (source.uri)")
    p.add_argument("--defaults", action="store_true", help="print the commented defaults.yaml and exit")
    add_track_options(p)
    add_run_options(p, print_config=False)
    p.set_defaults(func=run, print_config=True)
