"""What a training worker's resident memory is made of: the quick profile's train-stage jobs, each in a worker started as
`Run.submit` starts them (`worker_pool`), under the glibc settings this process was started with (`make study`'s: `make bench-study`).

Per job, in MB of the worker's RSS: after importing the package (the stage modules; `shared`: the part of it that is
file-backed library pages, which every process of the study maps again and a sum of RSS counts once per process), after its arguments arrive
(the cohort's three splits and the pseudo-masks, pickled by the main process: the pickle's size is printed), the peak while it trains
(sampled every 0.1 s), after the job (its result dropped) and after `malloc_trim(0)` hands freed heap back to the OS.
The study's manifest sums RSS over the main process and both workers; this says which parts of a worker's share could shrink.
The jobs train `--epochs` epochs (the first epochs reach the peak: the tensors, the model, the optimiser's state and one batch's activations are all allocated in the first).

    python benchmarks/worker_memory.py [--epochs 2]
"""
import argparse, ctypes, datetime, gc, os, pickle, tempfile, threading, time
from pathlib import Path
import psutil
from lss_nbdev.core.config import StudyConfig
from lss_nbdev.study.engine import Run, usable_cores, worker_pool
from lss_nbdev.study.manifest import cpu_info
from lss_nbdev.study.stages import STAGES
from lss_nbdev.study.stage_models import UNET_PEER, train_jobs

MB = 2**20

def imported() -> dict:
    "In the worker: RSS and its file-backed part once the stage modules are imported."
    import lss_nbdev.study.stages  # noqa: F401 (what a job's function brings in when it is unpickled)
    m = psutil.Process().memory_info()
    return dict(after_imports=m.rss / MB, shared=m.shared / MB)

def measured(fn, args, kwargs) -> dict:
    "In the worker: run one job as `_cache_job` does (without its cache write), RSS before, at the peak, after, and after malloc_trim."
    proc = psutil.Process(); out = dict(after_args=proc.memory_info().rss / MB)
    peak, stop = [out["after_args"]], threading.Event()
    def sample():
        while not stop.wait(0.1): peak[0] = max(peak[0], proc.memory_info().rss / MB)
    t = threading.Thread(target=sample, daemon=True); t.start()
    t0 = time.perf_counter(); result = fn(*args, **kwargs); out["seconds"] = time.perf_counter() - t0
    stop.set(); t.join()
    out["peak_in_job"] = max(peak[0], proc.memory_info().rss / MB)
    del result; gc.collect(); out["after_job"] = proc.memory_info().rss / MB
    ctypes.CDLL("libc.so.6").malloc_trim(0); out["after_malloc_trim"] = proc.memory_info().rss / MB
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args()
    malloc = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_")) or "glibc defaults"
    print(f"machine: {cpu_info()['model']}, {os.cpu_count()} cores, {datetime.date.today()}; malloc: {malloc}; "
          f"quick profile's train stage, {a.epochs} epochs per job, one worker on {usable_cores() // 2} thread(s) as with 2 workers")
    with tempfile.TemporaryDirectory() as d:
        run = Run(StudyConfig.profile("quick").replace(**{"train.max_epochs": a.epochs}), Path(d)/"run", STAGES, verbose=False)
        pre = run.output("preprocess")
        variants, jobs = train_jobs(run, pre)
        names = [*variants, *([UNET_PEER] if len(jobs) > len(variants) else [])]
        print(f"main process after preprocessing: RSS {psutil.Process().memory_info().rss / MB:.0f} MB; "
              f"splits train/val/test {[len(pre.splits[s]) for s in ('train', 'val', 'test')]} slices")
        print(f"{'job':<46}{'args pickle':>12}{'imports':>9}{'shared':>8}{'+args':>8}{'peak':>8}{'after':>8}{'trimmed':>9}{'s':>6}")
        for name, (_, _, fn, args, kwargs) in zip(names, jobs):
            size = len(pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)) / MB
            with worker_pool(1, threads=max(1, usable_cores() // 2)) as pool:  # one worker per job, threaded as one of the study's two
                r = {**pool.submit(imported).result(), **pool.submit(measured, fn, args, kwargs).result()}
            print(f"{name[:45]:<46}{size:>12.0f}{r['after_imports']:>9.0f}{r['shared']:>8.0f}{r['after_args']:>8.0f}"
                  f"{r['peak_in_job']:>8.0f}{r['after_job']:>8.0f}{r['after_malloc_trim']:>9.0f}{r['seconds']:>6.0f}")

if __name__ == "__main__":
    main()
