"""The refusal classifiers' out-of-distribution validation against human labels, as the README reports it.

    .venv/bin/python benchmarks/bench_refusal_validation.py [--cache-dir DIR]

Each labelled set is tested by a classifier that never saw it (the embedded recipe re-trained per fold on the
other sets). A fresh ``--cache-dir`` re-trains and re-measures everything (about a minute on 2 cores). Exits 1
when the embedded default's validated kappa misses the red-team issue's target (:data:`TARGET_KAPPA`)."""

from __future__ import annotations

import argparse
import sys
import time

from resources.refusal_classifier import RefusalClassifierResource

#: the embedded default's target on completions of models it never saw
TARGET_KAPPA = 0.85


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--cache-dir", default=None, help="trained heads and reports (default: the user cache)"
    )
    args = parser.parse_args()
    for backend in ("string_match", "embedded"):
        started = time.perf_counter()
        report = RefusalClassifierResource(backend=backend, cache_dir=args.cache_dir).validation()
        print(f"\n{backend}: {report.classifier}, validated kappa {report.validated_kappa:.3f} "
              f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
        print(report.table())
        if backend == "embedded" and report.validated_kappa < TARGET_KAPPA:
            print(f"\nmissed: the embedded default's validated kappa {report.validated_kappa:.3f} < "
                  f"{TARGET_KAPPA}")  # fmt: skip
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
