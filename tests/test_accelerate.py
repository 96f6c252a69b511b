"""`fit` on two CPU processes (gloo, an `accelerate.Accelerator` built by `fit`) against one process with the same global batch.

Run with pytest; the file is also the worker script that the launcher starts (`python tests/test_accelerate.py OUT`).
The two-process run is stopped after one epoch and resumed (a new model, the same checkpoint folder), so one
comparison covers the data-parallel step and the resume under DDP; one epoch of plain SGD through `run_epoch`
then checks the gradient itself (AdamW's step does not see its scale). Takes ~25 s on 2 CPU cores.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from conftest import SMALL_NET, child_env, lss_study

# Tolerances of the two-process run against the one-process run (float32, same global batch: the sums over ranks and
# the gloo all-reduces change only the order of additions). Measured on 2 CPU cores: losses differ by ~5e-7, the
# relative weight-update difference is ~2e-4. A max-abs weight bound would be meaningless: a conv bias before
# BatchNorm and the attention's key bias have an exactly zero gradient, so their float noise, normalised by Adam,
# moves them by up to lr per step in either run (~3e-4 apart here); it is printed, not asserted.
LOSS_ATOL = 1e-5  # train loss, seg and grade parts per epoch
DICE_ATOL = 1e-4  # val Dice (overall and per grade) and val accuracy per epoch
UPDATE_RTOL = 1e-3  # ||Δw_2proc − Δw_1proc|| / ||Δw_1proc|| over every trained tensor, Δw = last.safetensors − initial weights (fit, AdamW)
SGD_RTOL = 1e-5  # the same after one epoch of plain SGD through run_epoch, which also sees the gradient's scale (measured ~5e-7)


def setup():
    "A tiny phantom run: 9 training cases in batches of 4 (the last batch, of one case, is shorter than the world), two ungraded."
    from lss_nbdev.core.cases import split_by_patient
    from lss_nbdev.core.config import StudyConfig
    from lss_nbdev.data.phantom import make_cohort
    from lss_nbdev.model.train import TensorSet, build_model, to_tensors
    cfg = StudyConfig.profile("quick").replace(**{
        "model.image_size": 32, "model.patch_size": 8, "model.d_shared": 16, "model.n_heads": 2,
        "train.max_epochs": 2, "train.patience": 5, "train.batch_size": 4, "train.seg_target": "anatomical"})
    model = build_model(cfg)
    sp = split_by_patient(make_cohort(8, seed=3), (0.6, 0.2, 0.2), seed=0)
    tr, va = (to_tensors(sp[s], model.backbone, "anatomical") for s in ("train", "val"))
    grades = tr.grades[:9].clone(); grades[[1, 5]] = -1
    tr = TensorSet(tr.ids[:9], tr.pixels[:9], tr.masks[:9], grades)
    return cfg, model, tr, va


def worker(out:Path):
    "Under the launcher: stop after one epoch, resume in a fresh model, save this rank's log and weights."
    from safetensors.torch import save_model

    from lss_nbdev.model.train import fit
    cfg, model, tr, va = setup()
    fit(model, tr, va, cfg, out/"ckpt", stop_after=1, progress=False)  # accelerator="auto": WORLD_SIZE is 2
    cfg, model, tr, va = setup()
    log = fit(model, tr, va, cfg, out/"ckpt", progress=False)
    rank = int(os.environ["RANK"])
    log.to_csv(out/f"log_rank{rank}.csv", index=False)
    save_model(model, str(out/f"final_rank{rank}.safetensors"))
    # Adam hides a wrong gradient scale (its step is scale-free); one epoch of plain SGD through run_epoch does not
    from lss_nbdev.model.train import make_accelerator
    from lss_nbdev.model.distributed import sync_batchnorm
    acc = make_accelerator()
    cfg, model, tr, va = setup()
    net, opt = acc.prepare(sync_batchnorm(model.to(acc.device)), sgd(model))
    sgd_epoch(net, tr, cfg, opt, acc)
    if rank == 0: save_model(model, str(out/"sgd.safetensors"))


def sgd(model): return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)

def sgd_epoch(model, tr, cfg, opt, acc=None):
    from lss_nbdev.model.losses import make_seg_loss
    from lss_nbdev.model.train import run_epoch
    return run_epoch(model, tr, make_seg_loss(cfg.loss), cfg, opt, epoch=0, device="cpu", accelerator=acc)


def test_two_processes_match_one(tmp_path):
    from safetensors.torch import load_file

    from lss_nbdev.model.train import fit
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("WORLD_SIZE", None)
    t0 = time.perf_counter()
    # `accelerate launch --cpu` starts one process (several CPU processes need its MPI launcher), so the two CPU
    # processes come from torchrun; the Accelerator that `fit` builds reads the same environment either way
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           __file__, str(tmp_path/"ddp")]
    r = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    t_ddp = time.perf_counter() - t0

    torch.set_num_threads(1)
    cfg, model, tr, va = setup()
    one = fit(model, tr, va, cfg, tmp_path/"one", progress=False, accelerator=None)

    logs = [pd.read_csv(tmp_path/"ddp"/f"log_rank{r}.csv") for r in (0, 1)]
    pd.testing.assert_frame_equal(logs[0], logs[1], check_exact=True)  # every rank holds the same numbers
    ddp = logs[0]
    assert list(ddp.epoch) == list(one.epoch) == [0, 1]
    # the PID sees the same FP/FN sums, so β is the same
    pd.testing.assert_frame_equal(ddp[["train_fp", "train_fn", "alpha", "beta"]], one[["train_fp", "train_fn", "alpha", "beta"]], check_exact=True)
    loss_diff = float((ddp[["train_loss", "train_seg", "train_cls"]] - one[["train_loss", "train_seg", "train_cls"]]).abs().max().max())
    val_cols = [c for c in one.columns if c.startswith("val_") and one[c].notna().all()]
    dice_diff = float((ddp[val_cols] - one[val_cols]).abs().max().max())

    cfg, init, tr, va = setup()
    w0 = {k: v.detach() for k, v in init.state_dict().items()}
    w1, w2 = load_file(str(tmp_path/"one"/"last.safetensors")), load_file(str(tmp_path/"ddp"/"ckpt"/"last.safetensors"))
    assert w1.keys() == w2.keys()
    trained = [k for k in w1 if w1[k].is_floating_point() and "running_" not in k]
    num = sum(float(((w2[k] - w1[k]).double() ** 2).sum()) for k in trained)
    den = sum(float(((w1[k] - w0[k]).double() ** 2).sum()) for k in trained)
    update_rdiff = (num / den) ** 0.5
    weight_diff = max(float((w1[k] - w2[k]).abs().max()) for k in trained)
    cfg, m, tr, va = setup()
    sgd_epoch(m, tr, cfg, sgd(m))
    s1, s2 = m.state_dict(), load_file(str(tmp_path/"ddp"/"sgd.safetensors"))
    sgd_rdiff = (sum(float(((s2[k] - s1[k]).double() ** 2).sum()) for k in trained)
                 / sum(float(((s1[k] - w0[k]).double() ** 2).sum()) for k in trained)) ** 0.5
    f0, f1 = (load_file(str(tmp_path/"ddp"/f"final_rank{r}.safetensors")) for r in (0, 1))
    ranks_equal = all(torch.equal(f0[k], f1[k]) for k in f0)
    print(f"\n2 processes vs 1 (2 epochs, 9 cases in batches of 4, stopped after epoch 1 and resumed): "
          f"max |loss diff| {loss_diff:.1e} (tol {LOSS_ATOL}), max |val diff| {dice_diff:.1e} (tol {DICE_ATOL}), "
          f"relative weight-update diff {update_rdiff:.1e} (tol {UPDATE_RTOL}), max |weight diff| {weight_diff:.1e}, "
          f"one SGD epoch: relative update diff {sgd_rdiff:.1e} (tol {SGD_RTOL}), "
          f"FP/FN and β equal, ranks' final weights equal: {ranks_equal}; 2-process launch {t_ddp:.1f} s")
    assert ranks_equal
    assert loss_diff <= LOSS_ATOL
    assert dice_diff <= DICE_ATOL
    assert update_rdiff <= UPDATE_RTOL
    assert sgd_rdiff <= SGD_RTOL


if __name__ == "__main__":
    worker(Path(sys.argv[1]))


def test_lss_study_fit_under_two_processes_is_picked_up_by_the_train_stage(tmp_path):
    "`lss-study fit` under a 2-process launch trains one model of a run; the run's train stage then resumes it finished, training no epoch."
    bin_ = Path(sys.executable).parent
    env = {**child_env(), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("WORLD_SIZE", None)
    out = tmp_path/"run"
    tiny = ["--set", "data.n_patients=9", "--set", "train.max_epochs=2", "--set", "model.compare=[]", "--set", "real.source=null", *SMALL_NET]
    r = lss_study("run", "--out", out, *tiny, "--stages", "preprocess")
    assert r.returncode == 0, r.stderr[-3000:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(bin_/"lss-study"),
           "fit", "--out", str(out), "--model", "tiny (random init)"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    [ckpt] = [d for d in (out/"checkpoints").iterdir() if d.name.startswith("tiny_random_init-")]
    assert len(pd.read_csv(ckpt/"train_log.csv")) == 2
    state = (ckpt/"state.pt").stat().st_mtime_ns
    r = lss_study("run", "--config", out/"config.yaml", "--out", out, "--stages", "train")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (ckpt/"state.pt").stat().st_mtime_ns == state  # no epoch trained again
    r = lss_study("fit", "--out", out, "--model", "nonesuch")
    assert r.returncode == 2 and "no model 'nonesuch'" in r.stderr, r.stderr[-2000:]
