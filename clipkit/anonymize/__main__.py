"""``python -m clipkit.anonymize --warm``: fill the numba cache during setup."""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipkit.anonymize", description=__doc__)
    parser.add_argument("--warm", action="store_true", help="run the chains once to compile and cache numba code")
    parser.add_argument("--method", action="append", choices=("strong", "pitch"),
                        help="warm only this chain (repeatable; default: both)")
    args = parser.parse_args(argv)
    if not args.warm:
        parser.print_help()
        return 2
    from clipkit.anonymize import warm_up

    t0 = time.perf_counter()
    warm_up(methods=tuple(args.method or ("strong", "pitch")), say=lambda line: print(line, flush=True))
    print(f"clipkit.anonymize warmed up in {time.perf_counter() - t0:.1f} s "
          f"(numba cache: {os.environ.get('NUMBA_CACHE_DIR')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
