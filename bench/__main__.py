"""`python -m bench [name ...]`: run every benchmark module in bench/ that defines `main()`.

Each `main()` measures, writes its results under bench/results/, and returns 0 when its targets
are met (non-zero or an exception otherwise). With names, only those modules run.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def run(names: list[str]) -> int:
    outcomes: dict[str, str] = {}
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        main = getattr(module, "main", None)
        if not callable(main):
            continue
        print(f"== bench.{name}", flush=True)
        started = time.monotonic()
        try:
            status = main()
            outcomes[name] = "ok" if not status else f"targets missed ({status})"
        except Exception:
            traceback.print_exc()
            outcomes[name] = "error"
        print(f"== bench.{name}: {outcomes[name]} in {time.monotonic() - started:.0f} s\n")
    for name, outcome in outcomes.items():
        print(f"{name:>12}: {outcome}")
    return 0 if all(o == "ok" for o in outcomes.values()) else 1


if __name__ == "__main__":
    wanted = sys.argv[1:]
    available = discover()
    unknown = [n for n in wanted if n not in available]
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available)}")
    sys.exit(run(wanted or available))
