"""Benchmark: `lss_nbdev.denoise.nlm_denoise` (OpenCV) against `skimage.restoration.denoise_nl_means`.

Both denoise the same 320×320 12-bit slices with Rician noise, with the same settings: 7×7 patches, a
21×21 search window (scikit-image: patch_size=7, patch_distance=10, fast_mode=True) and the same h in
12-bit units (h = h_factor × the estimated noise σ). Throughput (slices/s) is measured on one core
(sequential calls) and on every core (a thread pool; both libraries release the GIL), and the PSNR gain
against the noise-free slice is reported for each. Slices come from the phantom (`lss_nbdev.phantom`) when
it provides a noise-free image, otherwise from a synthetic image of blurred ellipses.

    python benchmarks/denoise.py [--n 24] [--sigmas 40 80 160]
"""
from __future__ import annotations
import argparse, os, time
from concurrent.futures import ThreadPoolExecutor
import cv2, numpy as np
from skimage.metrics import peak_signal_noise_ratio
from skimage.restoration import denoise_nl_means
from lss_nbdev.config import StudyConfig
from lss_nbdev.denoise import estimate_noise_sigma, nlm_denoise


def synthetic_slice(rng, size=320):
    "Noise-free 12-bit-scale image: a few blurred ellipses of different intensities."
    yy, xx = np.mgrid[:size, :size] / size
    img = np.full((size, size), 300.0)
    for _ in range(6):
        cy, cx, ry, rx = rng.uniform(0.25, 0.75, 2).tolist() + rng.uniform(0.05, 0.3, 2).tolist()
        img[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = rng.uniform(600, 3000)
    return cv2.GaussianBlur(img, (0, 0), 1.5)


def rician(clean, sigma, rng):
    x = np.hypot(clean + rng.normal(0, sigma, clean.shape), rng.normal(0, sigma, clean.shape))
    return np.clip(np.round(x), 0, 4095).astype(np.uint16)


def throughput(fn, imgs, workers):
    fn(imgs[0])  # warm-up
    t = time.perf_counter()
    if workers == 1: out = [fn(x) for x in imgs]
    else:
        with ThreadPoolExecutor(workers) as ex: out = list(ex.map(fn, imgs))
    return len(imgs) / (time.perf_counter() - t), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="slices per noise level")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[40, 80, 160], help="Rician σ in 12-bit units")
    ap.add_argument("--h-factor", type=float, default=StudyConfig().denoise.h_factor)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    cores = os.cpu_count() or 1
    rows = []
    for sigma in a.sigmas:
        clean = [synthetic_slice(rng) for _ in range(a.n)]
        noisy = [rician(c, sigma, rng) for c in clean]
        hs = {id(x): a.h_factor * estimate_noise_sigma(x) for x in noisy}
        ocv = lambda x: nlm_denoise(x, h=hs[id(x)], patch=7, search=21)
        ski = lambda x: denoise_nl_means(x.astype(np.float64), h=hs[id(x)], patch_size=7, patch_distance=10,
                                         fast_mode=True)
        psnr = lambda c, x: peak_signal_noise_ratio(c, np.asarray(x, np.float64), data_range=4095)
        base = np.mean([psnr(c, x) for c, x in zip(clean, noisy)])
        res = {}
        for name, fn in (("opencv", ocv), ("skimage", ski)):
            t1, out = throughput(fn, noisy, 1)
            tn, _ = throughput(fn, noisy, cores)
            res[name] = (t1, tn, np.mean([psnr(c, y) for c, y in zip(clean, out)]) - base)
        rows.append((sigma, base, res))
        print(f"σ={sigma:5.0f}  noisy PSNR {base:5.2f} dB | "
              f"OpenCV {res['opencv'][0]:6.1f} slices/s (1 core) {res['opencv'][1]:6.1f} ({cores} cores), gain {res['opencv'][2]:+5.2f} dB | "
              f"scikit-image {res['skimage'][0]:5.1f} (1 core) {res['skimage'][1]:5.1f} ({cores} cores), gain {res['skimage'][2]:+5.2f} dB", flush=True)
    r1 = np.mean([r["opencv"][0] / r["skimage"][0] for *_, r in rows])
    rn = np.mean([r["opencv"][1] / r["skimage"][1] for *_, r in rows])
    dg = np.mean([r["opencv"][2] - r["skimage"][2] for *_, r in rows])
    print(f"throughput ratio OpenCV / scikit-image: {r1:.1f}x on 1 core, {rn:.1f}x on {cores} cores")
    print(f"PSNR gain OpenCV minus scikit-image: {dg:+.2f} dB (mean over noise levels)")
    print(f"target >= 10x at a PSNR gain within 0.5 dB: {'met' if min(r1, rn) >= 10 and dg >= -0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
