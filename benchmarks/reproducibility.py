"""To which decimal the headline numbers reproduce when only the thread count changes.

Runs the quick study's train and evaluate stages twice on the same machine, with `threads` and `train.threads` 1 and 2,
one training at a time (torch's deterministic algorithms on, as in every study), for the default network and its anatomical-target twin
(`model.compare=[]`), and compares the headline numbers of `tables/segmentation.csv` and `tables/classification.csv`:
mean Dice against each target and the grade head's accuracy. Writes `<out>/threads.json` and `<out>/threads.md`.
Two CPU kinds cannot be compared on one machine; run this on each and compare the JSON files.

    python benchmarks/reproducibility.py [--out results/reproducibility] [--runs runs/reproducibility]
"""
import argparse, json, math, os, subprocess, sys, time
from pathlib import Path
import pandas as pd
from lss_nbdev.study.manifest import cpu_info

BIN = Path(sys.executable).parent

def run_study(out:Path, threads:int) -> float:
    "One quick train + evaluate with the given thread count; returns the wall time in seconds."
    t = time.perf_counter()
    cmd = [str(BIN/"lss-study"), "run", "--profile", "quick", "--data", "phantom", "--out", str(out), "--stages", "evaluate",
           "--set", f"threads={threads}", "--set", f"train.threads={threads}", "--set", "model.compare=[]", "--workers", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1", MPLBACKEND="Agg"))
    if r.returncode: sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return time.perf_counter() - t

def headline(out:Path) -> dict:
    "model -> {dice vs target: mean, accuracy: value} from a run's tables."
    seg, cls = pd.read_csv(out/"tables/segmentation.csv"), pd.read_csv(out/"tables/classification.csv")
    d = {}
    for r in seg[(seg.group == "All") & (seg.metric == "dice")].itertuples():
        d.setdefault(r.model, {})[f"Dice vs {r.target}"] = float(r.value)
    for r in cls[(cls.source == "grade head") & (cls.metric == "accuracy")].itertuples():
        d.setdefault(r.model, {})["accuracy"] = float(r.value)
    return d

def decimals(diff:float) -> int|None:
    "The most decimals d with diff < 0.5·10^-d: the two numbers agree to d decimals (None: identical)."
    return None if diff == 0 else max(0, math.floor(-math.log10(2 * diff)))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/reproducibility"); ap.add_argument("--runs", default="runs/reproducibility")
    a = ap.parse_args()
    runs, out = Path(a.runs), Path(a.out); out.mkdir(parents=True, exist_ok=True)
    seconds, numbers = {}, {}
    for n in (1, 2):
        seconds[n] = run_study(runs/f"threads-{n}", n)
        numbers[n] = headline(runs/f"threads-{n}")
        print(f"threads={n}: {seconds[n]:.0f} s", flush=True)
    rows = []
    for model, vals in numbers[2].items():
        for what, v2 in vals.items():
            v1 = numbers[1].get(model, {}).get(what, float("nan"))
            diff = abs(v1 - v2)
            rows.append(dict(model=model, number=what, threads_1=v1, threads_2=v2, abs_difference=diff,
                             agrees_to_decimals=decimals(diff) if math.isfinite(diff) else None))
    tab = pd.DataFrame(rows)
    cpu = cpu_info()["model"]
    (out/"threads.json").write_text(json.dumps(dict(cpu=cpu, seconds=seconds, rows=rows), indent=1))
    (out/"threads.md").write_text(f"# Headline numbers at 1 and 2 threads ({cpu}; quick profile, default and anatomical-target models)\n\n"
                                  + tab.to_markdown(index=False, floatfmt=".4f") + "\n")
    print(tab.to_string(index=False))

if __name__ == "__main__": main()
