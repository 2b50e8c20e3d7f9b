"""Fuzz the scenario input: mutated shipped scenarios, run in memory, outcomes counted.

The same mutations as tests/test_scenario_fuzz.py (which runs 60 of them in the suite), many
more of them, random each run unless ``--seed`` is given. No database is touched.

    .venv/bin/python bench/fuzz_scenarios.py [-n 2000] [--seed N] [--scenario diverse] [--show 5]

It prints how many mutations were built, and how many refused (by the kind of refusal),
then every other outcome: a ScenarioError that names no file (``unnamed``), the library's
last-resort "bug to report" (``bug``), any other exception (``crashed``). The exit code is 1
when there is any of those.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_scenario_fuzz as fuzz  # noqa: E402  (the suite's mutations)

BAD = ("unnamed", "bug", "crashed")


def kind_of(message: str) -> str:
    """Return what a refusal is about: its message without file, line, place and values."""
    text = re.sub(r"^\S+?(:\d+)*(:\d+)?: ", "", message)  # file:line[:column]:
    text = re.sub(r"^(steps\[\d+\]|[\w.\[\]]+): ", "", text)  # steps[3].mix.type:
    text = re.sub(r"'[^']*'|\"[^\"]*\"|[-+]?\d[\d,._:+-]*\S*", "…", text)  # values
    return text[:90]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=None, help="repeat a run (default: random)")
    parser.add_argument("--scenario", action="append", choices=sorted(fuzz.ORIGINALS),
                        help="mutate only this one (repeatable; default: every shipped one)")
    parser.add_argument("--show", type=int, default=5, help="examples shown per bad outcome")
    args = parser.parse_args()
    names = tuple(args.scenario or fuzz.ORIGINALS)

    counts: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    bad: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    slowest: list[tuple[float, str, str]] = []
    folder = Path(tempfile.mkdtemp(prefix="fuzz-scenarios-"))

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=fuzz.mutated(names))
    def run(case: tuple[str, str]) -> None:
        name, text = case
        path = folder / name / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        started = time.perf_counter()
        result, detail = fuzz.outcome(path)
        seconds = time.perf_counter() - started
        slowest.append((seconds, result, detail[:120]))
        slowest.sort(reverse=True)
        del slowest[3:]
        counts[result] += 1
        if result == "refused":
            refusals[kind_of(detail)] += 1
        elif result in BAD:
            bad[result].append((name, detail, text))

    if args.seed is not None:
        run = seed(args.seed)(run)
    started = time.perf_counter()
    run()
    total = sum(counts.values())
    print(f"{total:,} mutated scenarios of {', '.join(names)} in "
          f"{time.perf_counter() - started:.1f} s")
    for result in ("built", "refused", *BAD):
        print(f"  {result:<8} {counts[result]:>7,}")
    print("refusals, by kind (most common first):")
    for text, n in refusals.most_common(25):
        print(f"  {n:>6,}  {text}")
    print("slowest examples:")
    for seconds, result, detail in slowest:
        print(f"  {seconds:6.2f} s  {result}  {detail}")
    for result in BAD:
        for name, detail, text in bad[result][: args.show]:
            print(f"\n{result.upper()} ({name}): {detail}\n--- the file:\n{text}")
    return 1 if any(counts[result] for result in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
