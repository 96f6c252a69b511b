"The `lss-study` console script, run as a user would run it."
import os, subprocess, sys
from pathlib import Path
import pandas as pd, pytest

BIN = Path(sys.executable).parent

def lss_study(*args, cwd=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    return subprocess.run([str(BIN/"lss-study"), *args], capture_output=True, text=True, env=env, cwd=cwd)

def test_cohort_stage_writes_its_files(tmp_path):
    r = lss_study("run", "--data", "phantom", "--out", str(tmp_path/"run"), "--set", "data.n_patients=9",
                  "--stages", "cohort")
    assert r.returncode == 0, r.stderr
    for f in ["config.yaml", "tables/cohort.csv", "tables/cohort.md", "figures/cohort_examples.png", "REPORT.md"]:
        assert (tmp_path/"run"/f).exists(), f
    tab = pd.read_csv(tmp_path/"run/tables/cohort.csv")
    assert tab[tab.grade == "all"].patients.sum() == 9

@pytest.mark.parametrize("args, message", [
    (["--data", "kaggle:/x"], "unknown kind 'kaggle'"),
    (["--data", "rsna:/no/such/dir"], "does not exist"),
    (["--set", "train.epochs=3"], "unknown config key 'train.epochs'"),
    (["--stages", "cohort,dance"], "unknown stage(s) ['dance']"),
])
def test_bad_arguments_say_what_is_wrong(tmp_path, args, message):
    r = lss_study("run", "--out", str(tmp_path/"run"), *args)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr[-2000:]
