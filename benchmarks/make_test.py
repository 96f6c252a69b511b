"""Benchmark: `make test` as CI runs it (`.ci/run`), on a fresh clone of HEAD with `../shared` beside it, install included
(target: <= 10 min on 2 CPU cores).

The clone goes next to this repository (so that `../shared` is the same folder for it), `make install` is timed on its
own (a new .venv from the package index), then `make test` (nbdev_test and pytest side by side, two workers each).
Prints the machine, the commit, each part's seconds and their sum as a share of the budget; the clone is removed
unless --keep. Nothing else should run on the machine meanwhile: the time is the whole machine's.

    python benchmarks/make_test.py [--keep]
"""
from __future__ import annotations
import argparse, datetime, shutil, subprocess, sys, time
from pathlib import Path
from lss_nbdev.study.manifest import cpu_info

BUDGET_S = 600
ROOT = Path(__file__).resolve().parents[1]

def timed(cmd:list, cwd:Path, log:Path) -> float:
    "Run `cmd` in `cwd`, its output appended to `log`; its seconds (exit on failure, with the log's tail)."
    t0 = time.perf_counter()
    with open(log, "a") as f: r = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode: sys.exit(f"{' '.join(cmd)} failed (exit {r.returncode}); the end of {log}:\n" + "".join(log.read_text().splitlines(True)[-40:]))
    return time.perf_counter() - t0

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", action="store_true", help="keep the clone (its make-test.log too)")
    a = p.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    clone = ROOT.parent/f"{ROOT.name}-make-test-{commit}"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    log = clone/"make-test.log"
    env_note = "" if (clone.parent/"shared").is_dir() else " (no ../shared beside it: the cells that read it skip)"
    try:
        install = timed(["make", "install"], clone, log)
        test = timed(["make", "test"], clone, log)
    finally:
        if not a.keep: shutil.rmtree(clone, ignore_errors=True)
    total = install + test
    cpu = cpu_info()
    print(f"machine: {cpu['model']}, {cpu['logical_cores']} cores, {datetime.date.today()}, commit {commit}; a fresh clone{env_note}")
    print(f"make install   {install:7.1f} s  (a new .venv)")
    print(f"make test      {test:7.1f} s  (nbdev_test and pytest side by side)")
    print(f"total          {total:7.1f} s  = {total / 60:.1f} min, {total / BUDGET_S:.2f} of the {BUDGET_S // 60}-minute budget")

if __name__ == "__main__": main()
