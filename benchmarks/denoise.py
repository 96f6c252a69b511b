"""Benchmark: `lss_nbdev.preprocess.denoise.nlm_denoise` (OpenCV) against `skimage.restoration.denoise_nl_means`.

Both denoise the same 320×320 12-bit slices with Rician noise, with the same settings: 7×7 patches, a
21×21 search window (scikit-image: patch_size=7, patch_distance=10, fast_mode=True) and the same h in
12-bit units (h = h_factor × the estimated noise σ). Throughput (slices/s) is measured on one core
(sequential calls) and on every core (a thread pool; both libraries release the GIL), and the PSNR gain
against the noise-free slice is reported for each. Slices are phantom slices with a noise-free twin
(`lss_nbdev.preprocess.denoise.phantom_pairs`) at several SNRs.

    python benchmarks/denoise.py [--n 12] [--snrs 50 22 12]
"""
from __future__ import annotations
import argparse, os, time
from concurrent.futures import ThreadPoolExecutor
import cv2, numpy as np
from skimage.metrics import peak_signal_noise_ratio
from skimage.restoration import denoise_nl_means
from lss_nbdev.core.config import StudyConfig
from lss_nbdev.preprocess.denoise import estimate_noise_sigma, nlm_denoise, phantom_pairs


def throughput(fn, imgs, workers):
    "Slices per wall-clock second and per CPU second (the latter is robust to other load on the machine)."
    fn(imgs[0])  # warm-up
    t, c = time.perf_counter(), time.process_time()
    if workers == 1: out = [fn(x) for x in imgs]
    else:
        with ThreadPoolExecutor(workers) as ex: out = list(ex.map(fn, imgs))
    return len(imgs) / (time.perf_counter() - t), len(imgs) / (time.process_time() - c), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="slices per noise level")
    ap.add_argument("--snrs", type=float, nargs="+", default=[50, 22, 12], help="phantom SNRs")
    ap.add_argument("--h-factor", type=float, default=StudyConfig().denoise.h_factor)
    a = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    cv2.setNumThreads(1)  # OpenCV's own threads do not speed up this filter; parallelism comes from the pool
    rows = []
    for snr in a.snrs:
        pairs = list(phantom_pairs((snr,), a.n))
        clean, noisy = [p["clean"].astype(np.float64) for p in pairs], [p["noisy"] for p in pairs]
        hs = {id(x): a.h_factor * estimate_noise_sigma(x) for x in noisy}
        ocv = lambda x: nlm_denoise(x, h=hs[id(x)], patch=7, search=21)
        ski = lambda x: denoise_nl_means(x.astype(np.float64), h=hs[id(x)], patch_size=7, patch_distance=10,
                                         fast_mode=True)
        psnr = lambda c, x: peak_signal_noise_ratio(c, np.asarray(x, np.float64), data_range=4095)
        base = np.mean([psnr(c, x) for c, x in zip(clean, noisy)])
        res = {}
        for name, fn in (("opencv", ocv), ("skimage", ski)):
            w1, c1, out = throughput(fn, noisy, 1)
            wn, _, _ = throughput(fn, noisy, cores)
            res[name] = dict(wall1=w1, cpu1=c1, walln=wn, gain=np.mean([psnr(c, y) for c, y in zip(clean, out)]) - base)
        rows.append(res)
        print(f"SNR {snr:4.0f}  noisy PSNR {base:5.2f} dB", flush=True)
        for name, r in res.items():
            print(f"  {name:8s} {r['wall1']:6.1f} slices/s on 1 thread ({r['cpu1']:5.1f} per CPU-second), "
                  f"{r['walln']:6.1f} slices/s with {cores} threads; PSNR gain {r['gain']:+5.2f} dB", flush=True)
    ratio = {k: np.mean([r["opencv"][k] / r["skimage"][k] for r in rows]) for k in ("wall1", "cpu1", "walln")}
    dg = np.mean([r["opencv"]["gain"] - r["skimage"]["gain"] for r in rows])
    print(f"throughput ratio OpenCV / scikit-image: {ratio['wall1']:.1f}x on 1 thread (wall), {ratio['cpu1']:.1f}x per "
          f"CPU-second, {ratio['walln']:.1f}x with {cores} threads (wall)")
    print(f"PSNR gain OpenCV minus scikit-image: {dg:+.2f} dB (mean over noise levels)")
    print(f"target >= 10x at a PSNR gain within 0.5 dB: {'met' if min(ratio.values()) >= 10 and dg >= -0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
