"""Trainings side by side against one at a time: why the quick profile trains each model on one thread, one per core.

Side by side in one run, for the quick profile's `tiny` LSSNet on the training tensors of a small phantom cohort
(two epochs of `run_epoch`, the study's loop, from a fixed seed):
(1) one training on 1 thread, (2) one training on every core, (3) one 1-thread training per core at the same time,
each in its own spawned process (as `lss-study run --workers`). It prints images/s of each and of all of (3) together,
and checks that every training of (3) ends with the weights of (1), byte for byte.

    python benchmarks/parallel_runs.py [--patients 24] [--epochs 2]
"""
import argparse, hashlib, multiprocessing as mp, os, time
from concurrent.futures import ProcessPoolExecutor

def train(spec) -> dict:
    "One training of `epochs` epochs on `threads` threads; its images/s and the hash of its final weights."
    patients, epochs, threads = spec
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lss_nbdev.core.config import StudyConfig
    import torch
    from lss_nbdev.data.phantom import make_cohort
    from lss_nbdev.model.train import build_model, to_tensors, run_epoch
    from lss_nbdev.model.losses import make_seg_loss
    from lss_nbdev.model.network import param_groups
    torch.set_num_threads(threads); torch.use_deterministic_algorithms(True, warn_only=True)
    cfg = StudyConfig.profile("quick")
    cases = make_cohort(patients, seed=0)
    model = build_model(cfg)
    data = to_tensors(cases, model.backbone, "anatomical")
    opt = torch.optim.AdamW(param_groups(model, cfg.train), weight_decay=cfg.train.weight_decay)
    loss = make_seg_loss(cfg.loss)
    t = time.perf_counter()
    for e in range(epochs): run_epoch(model, data, loss, cfg, opt, e)
    seconds = time.perf_counter() - t
    h = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.state_dict().values()))
    return dict(threads=threads, images_per_s=epochs * len(data) / seconds, seconds=seconds, weights=h.hexdigest()[:16])

def side_by_side(specs:list) -> tuple:
    "Every spec in its own spawned process, all at once; the results and the wall seconds."
    with ProcessPoolExecutor(len(specs), mp_context=mp.get_context("spawn")) as pool:
        t = time.perf_counter(); out = list(pool.map(train, specs)); wall = time.perf_counter() - t
    return out, wall

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=24); ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args()
    from lss_nbdev.study.engine import usable_cores
    cores = usable_cores()
    (one,), _ = side_by_side([(a.patients, a.epochs, 1)])
    (every,), _ = side_by_side([(a.patients, a.epochs, cores)])
    many, wall = side_by_side([(a.patients, a.epochs, 1)] * cores)
    print(f"tiny LSSNet, {a.patients} phantom patients, {a.epochs} epochs of run_epoch, {cores} cores "
          f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')})")
    print(f"one training, 1 thread:        {one['images_per_s']:6.1f} img/s")
    print(f"one training, {cores} threads:       {every['images_per_s']:6.1f} img/s")
    rates = " + ".join(f"{r['images_per_s']:.1f}" for r in many)
    total = sum(r["images_per_s"] for r in many)
    print(f"{cores} trainings of 1 thread at once: {rates} = {total:.1f} img/s "
          f"({total / every['images_per_s']:.2f}x one {cores}-thread training; wall {wall:.1f} s with process start)")
    same = all(r["weights"] == one["weights"] for r in many)
    print(f"weights of every side-by-side training equal to the lone 1-thread one: {same} ({one['weights']})")
    if not same: raise SystemExit("a side-by-side training ended with other weights than the lone one")

if __name__ == "__main__": main()
