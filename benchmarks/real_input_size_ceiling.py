"""What the real-data stage's input size alone costs: each expert canal mask of the shipped SPIDER examples resized to the
network's S×S input and back to the slice (area-averaged down, bilinear up, > 0.5, as a prediction is), then scored as a model's
mask would be: Dice per patient in 3D against the original, and the per-level AP diameter at the disc (`26e_stage_real`,
`24c_canal_levels`) against the original's. Writes results/real_input_size_ceiling.csv; a few seconds on one core."""
import argparse
import numpy as np, pandas as pd, cv2
from lss_nbdev.core.masks import confusion_counts, overlap_scores
from lss_nbdev.evaluation.canal_levels import level_measures, level_agreement, read_mask

def round_trip(mask:np.ndarray, size:int) -> np.ndarray:
    "A mask as it comes back from a network input of size×size: area-averaged down, bilinear up, thresholded at 0.5."
    m = mask.astype(np.float32)
    return cv2.resize(cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA), m.shape[::-1], interpolation=cv2.INTER_LINEAR) > 0.5

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", default="data/spider_examples"); ap.add_argument("--out", default="results/real_input_size_ceiling.csv")
    ap.add_argument("--sizes", type=int, nargs="+", default=[160, 224, 320])
    a = ap.parse_args()
    df = pd.read_csv(f"{a.root}/cases.csv")
    rows = df.assign(**{k: a.root + "/" + df[k] for k in ("path", "label_path", "mask_path")})
    truth = {r.path: read_mask(r.mask_path) for _, r in rows.iterrows()}
    expert, out = level_measures(rows), []
    for s in a.sizes:
        back = {p: round_trip(m, s) for p, m in truth.items()}
        counts = pd.DataFrame([dict(patient=r.patient_id, **confusion_counts(back[r.path], truth[r.path]))
                               for _, r in rows.iterrows()]).groupby("patient").sum()
        d3 = pd.Series({p: overlap_scores(c)["dice"] for p, c in counts.iterrows()})
        ag = level_agreement(expert, level_measures(rows, back).assign(model=f"{s}x{s}")).iloc[0]
        out.append(dict(input_size=s, patients=len(d3), dice_3d_mean=d3.mean(), dice_3d_min=d3.min(), level_pairs=int(ag.n),
                        ap_mad_mm=ag.MAD, ap_bias_mm=ag.bias, ap_icc=ag.ICC))
        print(f"{s}x{s}: Dice per patient 3D {d3.mean():.4f} (min {d3.min():.4f}, {len(d3)} patients); AP at the disc: MAD {ag.MAD:.3f} mm, "
              f"bias {ag.bias:+.3f} mm, ICC {ag.ICC:.4f} (n = {int(ag.n)} patient × level pairs)")
    pd.DataFrame(out).to_csv(a.out, index=False)
