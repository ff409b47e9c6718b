"""Benchmark: instructions per warm check, counted by valgrind (callgrind). Prints; not a test.

CPU time per check moves by ±10–20 % between runs on a machine other work shares; an instruction count
does not move at all for the same code and inputs, whatever else the cores do. So this is the figure
to compare two versions of the hot path by, a change of 2 % included. It runs bench/warm_check.py
under callgrind twice, with `--checks` more checks the second time, and divides the difference (the
start-up, imports and warm-up cancel out). Redis and h2load run outside valgrind: only the checking
process is counted. Slow (valgrind runs the process some 50× slower): about a minute per figure.

    python bench/instructions.py                      # the servicer alone, one check at a time
    python bench/instructions.py --grpc               # behind a grpc.aio server, h2load sending
    python bench/instructions.py --grpc --floor       # the one-EVALSHA floor, the same way

Other arguments go to warm_check.py as they are.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

WARM_CHECK = Path(__file__).with_name("warm_check.py")


def instructions(checks: int, extra: list[str], workdir: Path) -> int:
    """Instructions the warm_check.py process ran, start to end, with `checks` timed checks."""
    out = workdir / f"callgrind.{checks}.out"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    argv += [sys.executable, str(WARM_CHECK), "--checks", str(checks), *extra]
    run = subprocess.run(argv, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"warm_check.py under valgrind failed:\n{run.stdout}\n{run.stderr}")
    m = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
    if m is None:
        raise SystemExit(f"no instruction total in {out}")
    return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", type=int, default=2000, help="the difference between the two runs")
    ap.add_argument("--base", type=int, default=300, help="checks in the first run")
    args, extra = ap.parse_known_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if "--grpc" not in extra and "--concurrency" not in extra:
        extra += ["--concurrency", "1"]  # one at a time: no batching in the count
    workdir = Path(tempfile.mkdtemp(prefix="tollgate-instructions-"))
    with ThreadPoolExecutor(2) as pool:  # the two runs at once, one per core
        low, high = pool.map(lambda n: instructions(n, extra, workdir), (args.base, args.base + args.checks))
    print(f"{(high - low) / args.checks:,.0f} instructions per check ({' '.join(extra)})")


if __name__ == "__main__":
    main()
