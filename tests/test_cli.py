"The `lss-study` console script, run as a user would run it."
import os, pickle, subprocess, sys
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

def test_pipeline_end_to_end_writes_tables_and_resumes(tmp_path):
    "Cohort → preprocessing → two models → statistics on a very small phantom; a second run reads the caches."
    args = ["run", "--out", str(tmp_path/"run"), "--set", "data.n_patients=9", "--set", "train.max_epochs=1",
            "--set", "model.compare=[]", "--set", "eval.n_bootstrap=50", "--stages", "cohort,preprocess,train,statistics,explain"]
    r = lss_study(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    tables = tmp_path/"run/tables"
    for f in ["cohort", "preprocessing_pseudomask", "classification", "segmentation", "segmentation_by_grade", "statistics",
              "calibration", "evidence", "failure_cases", "stability"]:
        assert (tables/f"{f}.csv").exists() and (tables/f"{f}.md").exists(), f
    stats = pd.read_csv(tables/"statistics.csv")
    slice_level = stats[stats.level.str.startswith("slice")]
    assert {t.split()[0] for t in slice_level.test} == {"McNemar", "Wilcoxon"}, stats.test.tolist()
    assert stats[stats.level == "patient"].test.str.startswith("patient-level paired sign-flip").all()
    assert stats.p_value.between(0, 1).all() and stats.p_holm.between(0, 1).all()
    before = pd.read_csv(tables/"segmentation.csv")
    # plant a marker in the train stage's cached output: empty masks for the default model; a change of the bootstrap
    # reruns the evaluation, which must score them (read through the cache), not retrain
    [cached] = (tmp_path/"run/cache").glob("stage-train-*.pkl")
    saved = pickle.loads(cached.read_bytes())
    pred = saved["output"]["predictions"]["tiny (random init)"]
    pred["mask_probs"] = [p * 0 for p in pred["mask_probs"]]
    cached.write_bytes(pickle.dumps(saved))
    r = lss_study(*[a.replace("eval.n_bootstrap=50", "eval.n_bootstrap=51") for a in args])
    assert r.returncode == 0, r.stderr[-3000:]
    after = pd.read_csv(tables/"segmentation.csv")
    planted = after[(after.model == "tiny (random init)") & (after.metric == "dice")]
    assert len(planted) and (planted.value == 0).all(), planted
    other = lambda df: df[df.model != "tiny (random init)"].reset_index(drop=True)[["model", "target", "group", "metric", "value"]]
    pd.testing.assert_frame_equal(other(after), other(before))

def test_mendeley_layout_through_the_cli(tmp_path):
    "A cohort in the Mendeley layout runs through cohort and preprocessing; without --notes the error says so."
    from lss_nbdev.mendeley import write_fake_mendeley
    truth = write_fake_mendeley(tmp_path/"mendeley", n_patients=6)
    r = lss_study("run", "--data", f"mendeley:{tmp_path/'mendeley'}", "--notes", str(tmp_path/"mendeley/notes.csv"),
                  "--out", str(tmp_path/"run"), "--stages", "cohort,preprocess")
    assert r.returncode == 0, r.stderr[-3000:]
    tab = pd.read_csv(tmp_path/"run/tables/cohort.csv")
    assert tab[tab.grade == "all"].slices.sum() == len(truth)
    assert (tmp_path/"run/tables/preprocessing_pseudomask.csv").exists()
    r = lss_study("run", "--data", f"mendeley:{tmp_path/'mendeley'}", "--out", str(tmp_path/"run2"))
    assert r.returncode == 2 and "needs --notes" in r.stderr
