"""The sagittal disc localiser judged by 5-fold patient cross-validation on the shipped SPIDER examples (`27d_predict_sagittal`):
the first design (2.8 mm grid, channels 8-16-32-64) beside the shipped one. Writes results/disc_localiser_cv.csv and prints
per design the patients whose three lowest discs all land within one 4 mm axial slice of the expert's. About 20 minutes on 2 cores."""
import argparse, time
from pathlib import Path
import pandas as pd, torch
from lss_nbdev.predict.sagittal import disc_localiser_cv, NET_MM, DISC_CHANNELS

DESIGNS = {"first: 2.814 mm, 8-16-32-64": (2.814, (8, 16, 32, 64)), f"shipped: {NET_MM} mm, {'-'.join(map(str, DISC_CHANNELS))}": (NET_MM, DISC_CHANNELS)}

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", default="data/spider_examples"); ap.add_argument("--out", default="results/disc_localiser_cv.csv")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    out = []
    for name, (mm, ch) in DESIGNS.items():
        t0 = time.perf_counter(); cv = disc_localiser_cv(a.root, mm, ch).assign(design=name); s = time.perf_counter() - t0
        per = cv.groupby("patient").within_one.all()
        print(f"{name}: {per.sum()}/{len(per)} patients with all three levels within one slice; {cv.within_one.sum()}/{len(cv)} levels; {s:.0f} s")
        out.append(cv)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    pd.concat(out).to_csv(a.out, index=False); print("wrote", a.out)
