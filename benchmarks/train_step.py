"""Training-step throughput of `LSSNet`: images/s, peak memory and achieved TFLOP/s, fp32 against bf16 autocast.

Two networks: the `quick` profile's `tiny` (112 px, patch 8, 196 tokens) and a ViT-B/16-sized BiomedCLIP at 224 px
(random weights, built offline from an open_clip config), on the CPU and on CUDA where present. On CUDA the achieved
TFLOP/s is also given as a share of the device's dense bf16 peak.

    python benchmarks/train_step.py [--steps 5] [--batch 8]
"""
import argparse, json, os, resource, tempfile, time
from pathlib import Path
import torch, torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from lss_nbdev.core.config import StudyConfig
from lss_nbdev.model.vlm_backbones import BiomedCLIPBackbone, _tiny_biomedclip_dir
from lss_nbdev.model.network import LSSNet, param_groups
from lss_nbdev.model.losses import make_seg_loss
from lss_nbdev.model.train import build_model

BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "RTX 4070": 117.0}  # dense, no sparsity

def vit_b16_biomedclip(cfg: StudyConfig) -> LSSNet:
    "LSSNet on a ViT-B/16 BiomedCLIP vision tower (random init) with a tiny BERT text tower."
    d = Path(tempfile.mkdtemp())
    _tiny_biomedclip_dir(d, 224)
    oc = json.loads((d/"open_clip_config.json").read_text())
    oc["model_cfg"]["vision_cfg"]["timm_model_name"] = "vit_base_patch16_224"
    (d/"open_clip_config.json").write_text(json.dumps(oc))
    bb = BiomedCLIPBackbone.from_dir(d, 224, _require_weights=False)
    bb.text_tower.requires_grad_(False)
    torch.manual_seed(0)
    return LSSNet(bb, cfg)

def step_fn(model, cfg, device, bf16):
    loss_fn = make_seg_loss(cfg.loss)
    opt = torch.optim.AdamW(param_groups(model, cfg.train), weight_decay=cfg.train.weight_decay)
    s = cfg.model.image_size
    x = torch.randn(BATCH, 3, s, s, device=device); y = (torch.rand(BATCH, 1, s, s, device=device) > 0.9).float()
    g = torch.randint(0, 3, (BATCH,), device=device)
    def step():
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else torch.autocast(device.type, enabled=False)
        with ctx:
            out = model(x)
            loss = loss_fn(out["mask_logits"].float(), y) + F.cross_entropy(out["grade_logits"].float(), g)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return step

def bench(name, model, cfg, device, bf16, steps):
    model.to(device).train()
    step = step_fn(model, cfg, device, bf16)
    step()  # warm-up (and cache the prompt embeddings)
    with FlopCounterMode(display=False) as fc: step()
    flops = fc.get_total_flops()
    if device.type == "cuda": torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps): step()
    if device.type == "cuda": torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / steps
    mem = (torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda"  # CUDA: peak allocated; CPU: process peak RSS
           else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    row = dict(model=name, device=device.type, precision="bf16" if bf16 else "fp32", batch=BATCH,
               images_per_s=BATCH / dt, step_ms=1000 * dt, peak_mem_gib=mem, tflops=flops / dt / 1e12)
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name()
        peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in gpu), None)
        row["share_of_bf16_peak"] = row["tflops"] / peak if peak and bf16 else None
    return row

def one_row(spec):
    "One measurement, in its own process so that the CPU's peak RSS belongs to it alone."
    which, device, bf16, steps, batch = spec
    global BATCH; BATCH = batch
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quick = StudyConfig.profile("quick")
    paper = quick.replace(**{"model.image_size": 224, "model.patch_size": 16, "model.d_shared": 256})
    if which == "tiny": return bench("tiny (quick, 112 px)", build_model(quick), quick, torch.device(device), bf16, steps)
    return bench("BiomedCLIP ViT-B/16 (224 px, random init)", vit_b16_biomedclip(paper), paper, torch.device(device), bf16,
                 steps if device == "cuda" else max(1, steps // 5))

if __name__ == "__main__":
    import multiprocessing as mp
    p = argparse.ArgumentParser(); p.add_argument("--steps", type=int, default=5); p.add_argument("--batch", type=int, default=8)
    a = p.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    specs = [(w, d, bf16, a.steps, a.batch) for d in devices for bf16 in (False, True) for w in ("tiny", "vit-b16")]
    ctx = mp.get_context("spawn")
    rows = []
    for s in specs:
        with ctx.Pool(1) as pool: rows.append(pool.apply(one_row, (s,)))
    import pandas as pd
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for dev in df.device.unique():
        for m in df.model.unique():
            r = df[(df.device == dev) & (df.model == m)].set_index("precision").images_per_s
            print(f"{dev} · {m}: bf16/fp32 throughput ratio {r['bf16'] / r['fp32']:.2f}")
