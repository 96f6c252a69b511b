"""The quick study's time: wall time per stage (from a run's manifest) and the training loop's overhead.

Per stage: seconds, peak memory (all processes; this process alone; the parts at the peak: main, workers, other programs) and status as `make study` recorded them in `<run>/manifest.json`, and the total.
Per training stage: the images per second each of its trainings did (epochs × training images over the job's seconds,
from the manifest's `jobs` and the cached predictions) and how many ran at once.
The loop: for the quick profile's default network on the run's own training tensors, on `train.threads` threads, images
per second of (1) a bare training step (forward, backward, AdamW step on one fixed batch, as `benchmarks/train_step.py`),
(2) `run_epoch` over the training split, and (3) an epoch inside `fit` (training, validation, checkpoint: a 3-epoch fit less a 1-epoch fit, halved, so that fit's
fixed costs cancel; those are printed apart); the ratios
say how much the loop adds to the step, and the training stages' rates are set against the step's. With `--profile`, the top operators of one training epoch
(`torch.profiler`) and, given a py-spy raw file of a study or of some of its stages (`py-spy record -f raw`), its top functions.

    python benchmarks/study.py [--run runs/quick] [--profile] [--py-spy FILE]
"""
import argparse, collections, json, tempfile, time
from pathlib import Path
from lss_nbdev.core.config import StudyConfig  # first: the package sets the OpenMP wait policy before torch loads, as in make study
import pandas as pd, torch
from lss_nbdev.study.engine import Run, StageCache, model_label, with_backbone
from lss_nbdev.study.manifest import memory_parts
from lss_nbdev.core.rundir import slug
from lss_nbdev.study.stages import STAGES
from lss_nbdev.model.train import build_model, to_tensors, run_epoch, fit
from lss_nbdev.model.losses import make_seg_loss
from lss_nbdev.model.network import param_groups

def stage_table(run:Path) -> pd.DataFrame:
    m = json.loads((run/"manifest.json").read_text())
    t = pd.DataFrame(m["stages"]).reindex(columns=["stage", "status", "seconds", "peak_rss_mb", "main_peak_rss_mb"])
    t["peak_rss_parts_mb"] = [memory_parts(s) for s in m["stages"]]
    return pd.concat([t, pd.DataFrame([dict(stage="total", status="", seconds=t.seconds.sum(), peak_rss_mb=t.peak_rss_mb.max(),
                                            main_peak_rss_mb=t.main_peak_rss_mb.max(), peak_rss_parts_mb="")])])

def training_stage_rates(run:Path) -> pd.DataFrame:
    "Per training stage, for the trainings of the default network at the profile's size (the step benchmark's model): how many, how many at once, their seconds, and images/s per training (epochs × images / seconds)."
    m, rows = json.loads((run/"manifest.json").read_text()), []
    cfg = StudyConfig.load(run/"config.yaml")
    default, cache = slug(model_label(with_backbone(cfg, cfg.model.backbone))), StageCache(run/"cache")
    for j in m.get("jobs", []):
        if j["key"].startswith("real_") or not (j["key"].startswith("ablation_") or default in j["key"]): continue
        pred = cache.read(j["name"], j["key"])[1] or {}  # signed entries only
        if "epochs_trained" not in pred: continue  # the U-Net peer's log has no image count
        rows.append(dict(stage=j["stage"], workers=j["workers"], seconds=j["seconds"], images=pred["epochs_trained"] * pred["train_images"]))
    if not rows: return pd.DataFrame()
    t = pd.DataFrame(rows).groupby("stage", sort=False).agg(trainings=("seconds", "size"), at_once=("workers", "max"),
                                                            seconds=("seconds", "sum"), images=("images", "sum")).reset_index()
    return t.assign(images_per_s_per_training=t.images / t.seconds)

def m_workers(run:Path) -> int: return json.loads((run/"manifest.json").read_text()).get("workers", 1)

def loop_rates(run:Path, steps:int=20) -> dict:
    "Images/s of a bare step, of run_epoch and of a fit epoch, for the quick default network on the run's training split."
    cfg = StudyConfig.load(run/"config.yaml")
    torch.set_num_threads(cfg.train.threads or cfg.threads or torch.get_num_threads())
    pre = Run(cfg, run, STAGES, verbose=False).output("preprocess")
    torch.manual_seed(0); model = build_model(cfg)
    tr, va = (to_tensors(pre.splits[s], model.backbone, cfg.train.seg_target, pre.pseudo) for s in ("train", "val"))
    loss, bs = make_seg_loss(cfg.loss), cfg.train.batch_size
    opt = torch.optim.AdamW(param_groups(model, cfg.train), weight_decay=cfg.train.weight_decay)
    x, y, g = tr.pixels[:bs], tr.masks[:bs], tr.grades[:bs]
    def step():
        out = model(x)
        l = loss(out["mask_logits"].float(), y) + torch.nn.functional.cross_entropy(out["grade_logits"].float(), g)
        opt.zero_grad(); l.backward(); opt.step()
    model.train(); step(); t = time.perf_counter()
    for _ in range(steps): step()
    step_rate = steps * bs / (time.perf_counter() - t)
    run_epoch(model, tr, loss, cfg, opt, 0); t = time.perf_counter(); run_epoch(model, tr, loss, cfg, opt, 1)
    epoch_rate = len(tr) / (time.perf_counter() - t)
    def fit_seconds(epochs):  # a whole fit call from scratch: its fixed costs (optimizer, best weights, grade head) and its epochs
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter(); fit(model, tr, va, cfg.replace(**{"train.max_epochs": epochs, "train.patience": epochs}), d, progress=False)
            return time.perf_counter() - t
    one, three = fit_seconds(1), fit_seconds(3)
    fit_rate = 2 * len(tr) / (three - one)  # per epoch inside fit (training, validation, checkpoint), the fixed costs cancelled
    return dict(images=len(tr), batch=bs, threads=torch.get_num_threads(), step_images_per_s=step_rate,
                run_epoch_images_per_s=epoch_rate, fit_epoch_images_per_s=fit_rate,
                run_epoch_over_step=step_rate / epoch_rate, fit_epoch_over_step=step_rate / fit_rate, fit_fixed_seconds=one - (three - one) / 2)

def epoch_profile(run:Path, top:int=12) -> str:
    cfg = StudyConfig.load(run/"config.yaml")
    torch.set_num_threads(cfg.train.threads or cfg.threads or torch.get_num_threads())
    pre = Run(cfg, run, STAGES, verbose=False).output("preprocess")
    model = build_model(cfg); tr = to_tensors(pre.splits["train"], model.backbone, cfg.train.seg_target, pre.pseudo)
    opt = torch.optim.AdamW(param_groups(model, cfg.train), weight_decay=cfg.train.weight_decay)
    run_epoch(model, tr, make_seg_loss(cfg.loss), cfg, opt, 0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run_epoch(model, tr, make_seg_loss(cfg.loss), cfg, opt, 1)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)

def py_spy_top(path:Path, top:int=15) -> pd.DataFrame:
    "Share of samples per function (inclusive) and per leaf, from `py-spy record -f raw` output."
    incl, leaf, total = collections.Counter(), collections.Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack: continue
        n, frames = int(n), stack.split(";")
        total += n; leaf[frames[-1]] += n
        for f in set(frames): incl[f] += n
    rows = [dict(kind="leaf", function=f, share=n / total) for f, n in leaf.most_common(top)]
    rows += [dict(kind="inclusive", function=f, share=n / total) for f, n in incl.most_common(80) if "lss_nbdev" in f][:top]
    return pd.DataFrame(rows)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/quick"); ap.add_argument("--profile", action="store_true")
    ap.add_argument("--py-spy", dest="py_spy", default=None, help="a py-spy raw file of an `lss-study run` (the whole study, or some --stages)")
    a = ap.parse_args(); run = Path(a.run)
    m = json.loads((run/"manifest.json").read_text()); e = m["environment"]
    print(f"machine: {e['cpu']['model']}, {e['cpu']['logical_cores']} logical cores; the run: {run}, written {m['written']} at commit "
          f"{(e['code']['commit'] or 'none')[:7]}{' (uncommitted changes)' if e['code']['dirty'] else ''}; the loop rates below: measured now, on this machine\n")
    t = stage_table(run)
    print(t.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"\nstages in total: {t.seconds.iloc[-1] / 60:.1f} min")
    r = loop_rates(run)
    print(f"\ntraining ({r['images']} images, batch {r['batch']}, {r['threads']} threads): bare step {r['step_images_per_s']:.1f} img/s, "
          f"run_epoch {r['run_epoch_images_per_s']:.1f} img/s ({r['run_epoch_over_step']:.2f}× the step's time per image), "
          f"an epoch inside fit (training, validation, checkpoint: a 3-epoch fit less a 1-epoch fit, halved) {r['fit_epoch_images_per_s']:.1f} img/s "
          f"({r['fit_epoch_over_step']:.2f}×); fit's fixed cost (setup, best weights, grade head) {r['fit_fixed_seconds']:.1f} s")
    rates = training_stage_rates(run)
    if len(rates):
        rates = rates.assign(step_time_ratio=r["step_images_per_s"] / rates.images_per_s_per_training)
        print(f"\ntraining stages, the default network's trainings (images/s of each training over its whole job: building, tensors, "
              f"training, validation, checkpoints and prediction, while {m_workers(run)} trainings and the main process shared the cores; "
              f"step_time_ratio: its time per image over the bare step's, measured alone):")
        print(rates.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if a.profile: print("\none training epoch, top operators:\n" + epoch_profile(run))
    if a.py_spy: print(f"\npy-spy of {a.py_spy}:\n" + py_spy_top(Path(a.py_spy)).to_string(index=False, float_format=lambda v: f"{v:.1%}"))

if __name__ == "__main__": main()
