"Shared fixtures: one tiny trained run per session, built once (by one pytest-xdist worker, the others wait for it), that the engine, CLI and predict tests read or copy."
import os, shutil, subprocess, sys
from pathlib import Path
import pytest
from filelock import FileLock

BIN = Path(sys.executable).parent
TINY = ["--set", "data.n_patients=9", "--set", "train.max_epochs=1", "--set", "model.compare=[]", "--set", "eval.n_bootstrap=50",
        "--set", "arrg.epochs=1", "--set", "real.source=null", "--set", "eval.localisation_cases=3"]
# 9 phantom patients, one epoch, ARRG one epoch, no real data, localisation scored on 3 test slices (one per grade)
TINY_STAGES = ["--stages", "cohort,preprocess,train,evaluate,statistics,explain,arrg"]
SMALL_NET = ["--set", "model.image_size=32", "--set", "model.patch_size=8", "--set", "model.d_shared=16"]
# a 4 × 4 patch grid: for tests of the engine (workers, the stage graph), whose claims do not depend on the network's size

@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, worker_id) -> Path:
    "`lss-study run` with `TINY` through ARRG into an empty folder, once per session. Read it only; to change it, take `tiny_run_copy`."
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent  # the workers' common folder
    out = shared/"tiny"/"run"
    with FileLock(str(shared/"tiny.lock")):
        if not (shared/"tiny"/"built").is_file():  # written only after a run that exited 0
            shutil.rmtree(out, ignore_errors=True)
            r = subprocess.run([str(BIN/"lss-study"), "run", "--out", str(out), *TINY, *TINY_STAGES], capture_output=True, text=True,
                               env=dict(os.environ, HF_HUB_OFFLINE="1", MPLBACKEND="Agg"))
            assert r.returncode == 0, r.stderr[-3000:]
            (shared/"tiny"/"built").touch()
    return out

@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path) -> Path:
    "A copy of `tiny_run` at tmp_path/run for a test that runs stages into it or edits it (cache keys do not name the folder)."
    return Path(shutil.copytree(tiny_run, tmp_path/"run", symlinks=True))
