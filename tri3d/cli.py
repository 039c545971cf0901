"""The `tri3d` command. Subcommands stay thin and hand off to the library."""
from __future__ import annotations

import argparse
import sys


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tri3d", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="render random triplanes from sphere poses to a PNG grid")
    demo.add_argument("--out", default="runs/demo.png", help="PNG path (default: runs/demo.png)")
    demo.add_argument("--objects", type=_positive_int, default=2)
    demo.add_argument("--views", type=_positive_int, default=3)
    demo.add_argument("--resolution", type=_positive_int, default=64)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--dry-run", action="store_true", help="print the resolved options and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        if args.dry_run:
            print(vars(args))
            return 0
        from tri3d.demo import render_demo

        path = render_demo(args.out, objects=args.objects, views=args.views, resolution=args.resolution, seed=args.seed)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
