"""Start-up time of `iccaudit --help` and `iccaudit rules validate` (best of N fresh processes).

A script that prints numbers, not a test (``tests/test_startup.py`` checks the behaviour
behind them: neither imports pandas, scikit-learn or PyOD).

    python benchmarks/bench_startup.py            # best of 5
    python benchmarks/bench_startup.py --runs 10
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

COMMANDS = {
    "iccaudit --help": ["--help"],
    "iccaudit rules validate": ["rules", "validate"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    for label, argv in COMMANDS.items():
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "iccaudit.cli", *argv], check=True,
                           capture_output=True)
            times.append(time.perf_counter() - t0)
        print(f"{label:26} best {min(times):.2f} s  median {sorted(times)[len(times) // 2]:.2f} s"
              f"  (target <= 1 s, {args.runs} runs)")


if __name__ == "__main__":
    main()
