"""Shared fixtures and helpers: one tiny trained run per session, built once (by one pytest-xdist worker, the others wait for it),
that the engine, CLI and predict tests read or copy; `lss-study` run as its console script does, in a new process or in this one."""
import contextlib, io, os, shutil, subprocess, sys, traceback
from pathlib import Path
import pytest
from filelock import FileLock

BIN = Path(sys.executable).parent
SMALL_NET = ["--set", "model.image_size=32", "--set", "model.patch_size=8", "--set", "model.d_shared=16"]
# a 4 × 4 patch grid: none of these tests claims anything that depends on the network's size (13_-16_ test the networks at their sizes)
TINY = ["--set", "data.n_patients=9", "--set", "train.max_epochs=1", "--set", "model.compare=[]", "--set", "eval.n_bootstrap=50",
        "--set", "arrg.epochs=1", "--set", "real.source=null", "--set", "eval.localisation_cases=3", *SMALL_NET]
# 9 phantom patients, the small network for one epoch, ARRG one epoch, no real data, localisation scored on 3 test slices (one per grade)
TINY_STAGES = ["--stages", "cohort,preprocess,train,evaluate,statistics,explain,arrg"]

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("MPLBACKEND", "Agg")

def child_env() -> dict:
    "The environment of a child process: this one's as it is now (a fixture's variables too), offline, no display."
    return dict(os.environ, HF_HUB_OFFLINE="1", MPLBACKEND="Agg")

def lss_study_process(*args) -> subprocess.CompletedProcess:
    "The `lss-study` console script in a new process: its exit status, stdout and stderr."
    return subprocess.run([str(BIN/"lss-study"), *map(str, args)], capture_output=True, text=True, env=child_env())

def lss_study(*args) -> subprocess.CompletedProcess:
    """`lss-study ARGS` through the console script's entry point (`cli`) in this process, returned as `lss_study_process` returns it:
    exit status (a traceback: 1, printed to stderr), stdout, stderr. It saves each call the ~5 s of imports and code keys
    of a new process; the tests of what only a process shows (its pid's lock, the script itself) use `lss_study_process`."""
    from lss_nbdev.study.cli import cli
    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = ["lss-study", *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try: cli(); code = 0
            except SystemExit as e: code = e.code if isinstance(e.code, int) else 1
            except Exception: code = 1; traceback.print_exc()
    finally: sys.argv = argv
    return subprocess.CompletedProcess(["lss-study", *args], code, out.getvalue(), err.getvalue())

@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, worker_id) -> Path:
    "`lss-study run` with `TINY` through ARRG into an empty folder, once per session. Read it only; to change it, take `tiny_run_copy`."
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent  # the workers' common folder
    out = shared/"tiny"/"run"
    with FileLock(str(shared/"tiny.lock")):
        if not (shared/"tiny"/"built").is_file():  # written only after a run that exited 0
            shutil.rmtree(out, ignore_errors=True)
            r = lss_study_process("run", "--out", out, *TINY, *TINY_STAGES)  # as a user runs it
            assert r.returncode == 0, r.stderr[-3000:]
            (shared/"tiny"/"built").touch()
    return out

@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path) -> Path:
    "A copy of `tiny_run` at tmp_path/run for a test that runs stages into it or edits it (cache keys do not name the folder)."
    return Path(shutil.copytree(tiny_run, tmp_path/"run", symlinks=True))

def pytest_configure(config):
    # The 1-epoch models that these tests train separate their few validation slices perfectly or not at all, so their temperature
    # sits at a search bound; `lss-study` run in this process would list that warning once per run. 23_calibration tests it.
    config.addinivalue_line("filterwarnings", "ignore:TemperatureScaler. T = .* is not identifiable:UserWarning")
