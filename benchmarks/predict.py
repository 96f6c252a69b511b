"""Benchmark: `lss_nbdev.predict.patient.predict`, seconds per patient after the model is loaded (target: <= 10 s on 2 CPU cores).

Phantom patients are written as DICOM studies in the Mendeley layout (`write_phantom_study`: 15 axial T2 slices in
three disc-angled blocks, a T1 axial and a T2 sagittal series, 320×320 px), the run's model is loaded once, and each
patient goes through the whole of `predict`: reading and choosing the series, three levels denoised (non-local means),
segmented and graded in one batch, calibrated, evidence, the report decoder, overlays, the DICOM-SEG and index.html.
The parts are timed separately too (reading the study, the pipeline, writing the outputs). Without --run it first
trains a tiny run (9 phantom patients, one epoch; the quick profile's network: tiny ViT at 112 px), which costs
about a minute and does not count: a quick-profile run has the same network and the same cost per patient.

    python benchmarks/predict.py [--run runs/quick] [--patients 5] [--threads 1]

It also times the cold start, what a user waits for: `lss-study predict` in a new process, three times (median; the
file cache is warm), and the split of one such process into imports, model load and predict. The in-process load
before them has saved the tiny model's prompt encoding in the run (`27f`), as any first `predict` on a run does, so
the cold starts build no text tower; the first load's time is printed beside them.

`--threads 2` compares two torch threads (0.45-0.66 s per patient here, against 0.36 s with one; before the package set
OMP_WAIT_POLICY=PASSIVE, two threads on a shared 2-core machine made the slowest patient take 11 s).
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TARGET_S = 10.0

def tiny_run(out:Path) -> Path:
    "Train the tiny run the tests use (about a minute on 2 cores)."
    cmd = [str(Path(sys.executable).parent/"lss-study"), "run", "--out", str(out), "--set", "data.n_patients=9", "--set", "train.max_epochs=1",
           "--set", "model.compare=[]", "--set", "eval.n_bootstrap=50", "--set", "arrg.epochs=1", "--set", "real.source=null",
           "--stages", "train,explain,arrg"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode: sys.exit(f"could not build the tiny run:\n{r.stderr[-2000:]}")
    return out

SPLIT = """
import json, sys, time; t0 = time.perf_counter()
from lss_nbdev.study.cli import main
from lss_nbdev.predict.patient import predict
from lss_nbdev.predict.pipeline import load_pipeline
t1 = time.perf_counter(); pipe = load_pipeline(sys.argv[1]); t2 = time.perf_counter()
predict(sys.argv[1], sys.argv[2], sys.argv[3], pipeline=pipe, pseudonym="P-bench", threads=int(sys.argv[4]), verbose=False)
print(json.dumps(dict(imports=t1 - t0, load=t2 - t1, predict=time.perf_counter() - t2)))
"""

def cold_start(run:Path, study:Path, out:Path, threads:int, n:int=3) -> tuple:
    "(median wall seconds of `n` runs of `lss-study predict` in a new process, {imports, load, predict} seconds of one more)."
    cmd = [str(Path(sys.executable).parent/"lss-study"), "predict", "--run", str(run), str(study), "--out", str(out), "--id", "P-bench",
           "--threads", str(threads)]
    walls = []
    for _ in range(n):
        t = time.perf_counter(); subprocess.run(cmd, check=True, capture_output=True); walls.append(time.perf_counter() - t)
    r = subprocess.run([sys.executable, "-c", SPLIT, str(run), str(study), str(out), str(threads)], check=True, capture_output=True, text=True)
    return float(np.median(walls)), json.loads(r.stdout.strip().splitlines()[-1])

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="a trained run directory (default: train a tiny one in a temporary folder)")
    ap.add_argument("--patients", type=int, default=5, help="phantom patients to predict")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads while predicting (predict's default: 1)")
    a = ap.parse_args(argv)
    from lss_nbdev.testing import write_phantom_study
    from lss_nbdev.predict.inputs import read_study
    from lss_nbdev.predict.pipeline import load_pipeline, run_pipeline
    from lss_nbdev.predict.patient import predict
    from lss_nbdev.model.train import torch_threads
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        run = Path(a.run) if a.run else tiny_run(d/"run")
        studies = [d/f"patient{i}" for i in range(a.patients)]
        for i, s in enumerate(studies): write_phantom_study(s, seed=100 + i)
        had = any((run/"cache"/"prompt_encodings").glob("*.safetensors"))
        t = time.perf_counter(); pipe = load_pipeline(run); load_s = time.perf_counter() - t
        predict(run, studies[0], d/"warm", pipeline=pipe, threads=a.threads, verbose=False)  # first call: lazy imports (matplotlib colormaps, highdicom)
        rows = []
        for i, s in enumerate(studies):
            t0 = time.perf_counter(); st = read_study(s)
            t1 = time.perf_counter()
            with torch_threads(a.threads): run_pipeline(pipe, st, "P-bench")
            t2 = time.perf_counter(); predict(run, s, d/f"out{i}", pipeline=pipe, threads=a.threads, verbose=False)
            t3 = time.perf_counter()
            rows.append((t1 - t0, t2 - t1, t3 - t2))
        r = np.array(rows)
        levels = [l for i in range(a.patients) for l in json.loads((d/f"out{i}"/"report.json").read_text())["levels"]]
        n_learned = sum(bool(l["findings"]) for l in levels)
        print(f"predict benchmark: run {run.name}, model {pipe.name!r} ({pipe.cfg.model.backbone}, {pipe.cfg.model.image_size} px), "
              f"{os.cpu_count()} CPU cores, torch {a.threads} thread(s) while predicting, device {pipe.device}")
        print(f"model load: {load_s:.1f} s (once; {'prompt encoding read from the run' if had else 'text tower built, its prompt encoding saved in the run'})")
        print(f"report decoder: {'learned findings for ' + str(n_learned) + ' of ' + str(len(levels)) + ' levels' if pipe.decoder else 'none in the run (template only)'}"
              + ("" if n_learned == len(levels) else " (a level whose mask covers the slice gets no report, and the decoder does not run for it: "
                 "the time below then leaves the decoder out; use a trained run, e.g. --run runs/quick)"))
        print(f"per patient (3 levels, {a.patients} patients): read the study {r[:, 0].mean():.2f} s, pipeline {r[:, 1].mean():.2f} s, "
              f"whole predict {r[:, 2].mean():.2f} s (min {r[:, 2].min():.2f}, max {r[:, 2].max():.2f})")
        rate = 60 / r[:, 2].mean()
        wall, split = cold_start(run, studies[0], d/"cold", a.threads)
        print(f"cold start (lss-study predict in a new process, model load included; median of 3, warm file cache): {wall:.1f} s = "
              f"{wall / TARGET_S:.2f} × the {TARGET_S:.0f} s target; one process: imports {split['imports']:.1f} s, model load "
              f"{split['load']:.1f} s, predict {split['predict']:.1f} s")
        ok = r[:, 2].max() <= TARGET_S and wall <= TARGET_S
        print(f"rate: {rate:.1f} patients/min = {r[:, 2].mean():.2f} s per patient; target <= {TARGET_S:.0f} s per patient, cold start included: {'met' if ok else 'NOT met'}")
        return 0 if ok else 1

if __name__ == "__main__": sys.exit(main())
