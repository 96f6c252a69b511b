"""glibc malloc settings against memory and speed: `make study`'s (`STUDY_ENV` in the Makefile), glibc's defaults and others, side by side.

Per setting, each in a new process (the variables are read when a process starts), on `--threads` torch threads:
(1) the LiteMedSAM encoder (the real stage's feature caching), one image per pass as `ENCODER_CHUNK`: seconds per image
    after a warm-up, and the process's peak RSS;
(2) the quick profile's cohort and preprocess stages into an empty folder, as the study's main process runs them first:
    their seconds and the peak RSS (what the main process carries into every later stage).
The numbers the study computes do not depend on these variables (they move where freed memory goes, not what is computed).

    python benchmarks/malloc_settings.py [--images 12] [--threads 1]
"""
import argparse, datetime, json, os, re, subprocess, sys, tempfile
from pathlib import Path
from lss_nbdev.study.manifest import cpu_info

def study_env() -> dict:
    "The variables of the Makefile's `STUDY_ENV` line, as `make study` sets them."
    line = re.search(r"^STUDY_ENV :=(.*)$", (Path(__file__).resolve().parents[1]/"Makefile").read_text(), re.M).group(1)
    return dict(kv.split("=", 1) for kv in line.split())

SETTINGS = {
    "glibc defaults": {},
    "make study (Makefile STUDY_ENV)": study_env(),
    "mmap 32 MiB, trim 128 MiB, pad 64 MiB": dict(MALLOC_MMAP_THRESHOLD_="33554432", MALLOC_TRIM_THRESHOLD_="134217728", MALLOC_TOP_PAD_="67108864"),
}

ENCODER = """
import json, resource, sys, time, torch
torch.set_num_threads({threads}); torch.manual_seed(0)
from lss_nbdev.model.medsam import MedSAMBackbone
bb = MedSAMBackbone(); x = torch.rand({images} + 2, 3, 256, 256)
with torch.no_grad():
    for i in range(2): bb.dense_features(x[i:i + 1])
    t = time.perf_counter()
    for i in range(2, {images} + 2): bb.dense_features(x[i:i + 1])
print(json.dumps(dict(s_per_image=(time.perf_counter() - t) / {images}, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""

STAGES = """
import json, resource, sys, time, torch
torch.set_num_threads({threads})
from pathlib import Path
from lss_nbdev.core.config import StudyConfig
from lss_nbdev.study.engine import Run
from lss_nbdev.study.stages import STAGES
t = time.perf_counter(); Run(StudyConfig.profile("quick"), Path({out!r}), STAGES, verbose=False).output("preprocess")
print(json.dumps(dict(seconds=time.perf_counter() - t, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""

def measure(code:str, env:dict) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(base, **env))
    if r.returncode: raise SystemExit(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=12); ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    print(f"machine: {cpu_info()['model']}, {os.cpu_count()} cores, {datetime.date.today()}; {a.threads} torch thread(s); "
          f"encoder: {a.images} images after 2 of warm-up")
    print(f"{'setting':40s} {'encoder s/image':>16s} {'encoder peak RSS MB':>20s} {'cohort+preprocess s':>20s} {'their peak RSS MB':>18s}")
    for name, env in SETTINGS.items():
        e = measure(ENCODER.format(threads=a.threads, images=a.images), env)
        with tempfile.TemporaryDirectory() as d: s = measure(STAGES.format(threads=a.threads, out=d), env)
        print(f"{name:40s} {e['s_per_image']:16.2f} {e['peak_rss_mb']:20.0f} {s['seconds']:20.1f} {s['peak_rss_mb']:18.0f}", flush=True)

if __name__ == "__main__": main()
