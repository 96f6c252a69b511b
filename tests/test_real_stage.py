"The real-data stage, run as a user would on a segmentation-only folder CSV whose slices differ in size."
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image
from conftest import lss_study

def write_mixed_cohort(d:Path, heights=(640, 620), n_patients=3, width=96, seed=0) -> Path:
    "A folder CSV of sagittal-like PNG slices (a bright canal band), one slice of each height per patient; grade and report columns empty."
    rng, rows = np.random.default_rng(seed), []
    for p in range(n_patients):
        for h in heights:
            yy, xx = np.mgrid[:h, :width]
            canal = (np.abs(xx - 60 - p) < 6) & (yy > 40) & (yy < h - 40)
            im = (40 + 150 * canal + 30 * rng.random((h, width))).astype(np.uint8)
            name = f"P{p}_{h}"
            Image.fromarray(im).save(d/f"{name}.png"); Image.fromarray(canal.astype(np.uint8) * 255).save(d/f"{name}_m.png")
            rows.append(dict(path=f"{name}.png", mask_path=f"{name}_m.png", patient_id=f"P{p}", level="sagittal", pixel_spacing="0.469",
                             grade="", report=""))
    pd.DataFrame(rows).to_csv(d/"cases.csv", index=False)
    return d/"cases.csv"

def test_real_stage_on_a_folder_of_mixed_slice_sizes(tmp_path):
    "640- and 620-row slices with empty grades and reports: the stage writes its tables, explanations and figure (deliverables 7 and 9 of issue 27)."
    (tmp_path/"data").mkdir()
    csv = write_mixed_cohort(tmp_path/"data")
    out = tmp_path/"run"
    r = lss_study("run", "--profile", "quick", "--set", f"real.source=folder:{csv}", "--stages", "real", "--out", str(out),
                  "--set", "real.backbones=[tiny]", "--set", "real.max_epochs=1", "--set", "eval.n_bootstrap=20")
    assert r.returncode == 0, r.stderr[-3000:]
    summary = pd.read_csv(out/"tables/real_segmentation_summary.csv")
    assert {"model", "target", "Dice"} <= set(summary.columns)
    assert summary.Dice.astype(str).str.match(r"^\d").all()  # Dice as the first number of its cell
    assert "U-Net (MONAI, Dice + CE)" in set(summary.model)
    per_case = pd.read_csv(out/"tables/real_segmentation_per_case.csv")
    assert per_case.case_id.nunique() == 6  # cross-validated: every patient's two slices (one of each size) tested once
    assert (per_case.groupby(["model", "case_id"]).size() == 1).all()
    assert per_case.groupby("case_id").fold.nunique().eq(1).all()
    assert (out/"tables/real_explanations.csv").exists() and (out/"figures/real_overlays.png").exists()
