"The `lss-study` command line as a user runs it: through its console-script entry in this process (`conftest.lss_study`), and the script itself in its own."
import pickle
from lss_nbdev.core.rundir import dump_signed, load_signed
from pathlib import Path
import pandas as pd, pytest
from conftest import TINY, lss_study, lss_study_process

def test_cohort_stage_writes_its_files(tmp_path):
    "The console script itself, in its own process."
    r = lss_study_process("run", "--data", "phantom", "--out", str(tmp_path/"run"), "--set", "data.n_patients=9",
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

def test_pipeline_end_to_end_writes_tables_and_resumes(tiny_run_copy, tmp_path):
    "Cohort → preprocessing → two models → statistics on a very small phantom (into a copy of the session's run, trained with these settings); a second run reads the caches."
    args = ["run", "--out", str(tiny_run_copy), *TINY, "--stages", "cohort,preprocess,train,statistics,explain"]
    r = lss_study(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "stage train: cache hit" in r.stdout  # the session's models, not trained again
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
    saved = load_signed(cached)  # signed by this machine's cache key, as the run wrote it
    pred = saved["output"].predictions["tiny (random init)"]
    pred["mask_probs"] = [p * 0 for p in pred["mask_probs"]]
    dump_signed(saved, cached)
    r = lss_study(*[a.replace("eval.n_bootstrap=50", "eval.n_bootstrap=51") for a in args])
    assert r.returncode == 0, r.stderr[-3000:]
    after = pd.read_csv(tables/"segmentation.csv")
    planted = after[(after.model == "tiny (random init)") & (after.metric == "dice")]
    assert len(planted) and (planted.value == 0).all(), planted
    other = lambda df: df[df.model != "tiny (random init)"].reset_index(drop=True)[["model", "target", "group", "metric", "value"]]
    pd.testing.assert_frame_equal(other(after), other(before))

def test_mendeley_layout_through_the_cli(tmp_path):
    "A cohort in the Mendeley layout runs through cohort and preprocessing; without --notes the error says so."
    from lss_nbdev.data.mendeley import write_fake_mendeley
    truth = write_fake_mendeley(tmp_path/"mendeley", n_patients=6)
    r = lss_study("run", "--data", f"mendeley:{tmp_path/'mendeley'}", "--notes", str(tmp_path/"mendeley/notes.csv"),
                  "--out", str(tmp_path/"run"), "--stages", "cohort,preprocess")
    assert r.returncode == 0, r.stderr[-3000:]
    tab = pd.read_csv(tmp_path/"run/tables/cohort.csv")
    assert tab[tab.grade == "all"].slices.sum() == len(truth)
    assert (tmp_path/"run/tables/preprocessing_pseudomask.csv").exists()
    r = lss_study("run", "--data", f"mendeley:{tmp_path/'mendeley'}", "--out", str(tmp_path/"run2"))
    assert r.returncode == 2 and "needs --notes" in r.stderr

class _Plant:
    "A pickle that creates `path` when it is unpickled."
    def __init__(self, path): self.path = str(path)
    def __reduce__(self): return (open, (self.path, "w"))

def test_a_run_directory_from_someone_else_runs_no_code(tmp_path):
    "Planted pickles in a run's cache (no MAC under this machine's key) are recomputed, never unpickled; the run says why."
    args = ["run", "--out", str(tmp_path/"run"), "--set", "data.n_patients=9", "--stages", "cohort"]
    assert lss_study(*args).returncode == 0
    marker = tmp_path/"PWNED"
    for p in (tmp_path/"run/cache").glob("*.pkl"): p.write_bytes(pickle.dumps(_Plant(marker)))
    r = lss_study(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not marker.exists()
    assert "not signed by lss_nbdev's cache" in r.stdout + r.stderr and "running it again" in r.stdout + r.stderr

def test_ids_from_a_folder_csv_stay_inside_the_run(tmp_path):
    "A folder CSV whose patient_id climbs out of the run directory writes nothing outside it."
    import shutil
    src = Path(__file__).resolve().parents[1]/"data/spider_examples"
    data = tmp_path/"data"; shutil.copytree(src, data)
    df = pd.read_csv(data/"cases.csv")
    df = df[df.patient_id.isin(df.patient_id.unique()[:6])]  # six patients are enough here (and denoise in seconds)
    df.loc[df.patient_id == df.patient_id.iloc[0], "patient_id"] = "../../../../ESCAPED"
    df["grade"] = [("A", "BC", "D")[i % 3] for i in range(len(df))]  # graded, so that the preprocessing stage denoises it
    df.to_csv(data/"cases.csv", index=False)
    before = {p for p in tmp_path.rglob("*")}
    r = lss_study("run", "--data", f"folder:{data/'cases.csv'}", "--out", str(tmp_path/"a/b/run"), "--stages", "cohort,preprocess",
                  "--set", "real.source=null")
    assert r.returncode == 0, r.stderr[-3000:]
    new = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in new if not (p.is_relative_to(tmp_path/"a/b/run") or p in (tmp_path/"a", tmp_path/"a/b"))]
    assert not outside and not list(Path("/").glob("ESCAPED*")), outside
    assert list((tmp_path/"a/b/run/cache/denoise").glob("*/ESCAPED*.npy"))

@pytest.mark.parametrize("setting, message", [
    ("train.lr_decoder=.nan", "train.lr_decoder"), ("train.max_epochs=-3", "train.max_epochs"), ("train.batch_size=0", "train.batch_size"),
    ("eval.n_bootstrap=-1", "eval.n_bootstrap"), ("eval.ci=2", "eval.ci")])
def test_settings_that_cannot_train_are_refused_before_anything_runs(tmp_path, setting, message):
    r = lss_study("run", "--out", str(tmp_path/"run"), "--set", setting, "--stages", "cohort")
    assert r.returncode == 2 and message in r.stderr and not (tmp_path/"run").exists(), r.stderr[-2000:]

def test_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    "`run --out` into a folder of someone's files (no run marker) writes nothing there."
    mine = tmp_path/"thesis"; (mine/"tables").mkdir(parents=True)
    (mine/"REPORT.md").write_text("my report"); (mine/"config.yaml").write_text("mine: 1\n"); (mine/"tables/cohort.csv").write_text("a\n1\n")
    r = lss_study("run", "--out", str(mine), "--set", "data.n_patients=9", "--stages", "cohort")
    assert r.returncode == 2 and "is not a run directory" in r.stderr, r.stderr[-2000:]
    assert (mine/"REPORT.md").read_text() == "my report" and (mine/"config.yaml").read_text() == "mine: 1\n"
    assert (mine/"tables/cohort.csv").read_text() == "a\n1\n" and sorted(p.name for p in mine.iterdir()) == ["REPORT.md", "config.yaml", "tables"]
