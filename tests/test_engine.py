"The study engine as a user drives it: the stage graph's cache, replay, the lock, and one-line errors for bad input."
import json, os
from pathlib import Path
import pandas as pd
from conftest import TINY, TINY_STAGES, lss_study, lss_study_process

def statuses(run_dir:Path) -> dict:
    return {s["stage"]: s["status"] for s in json.loads((run_dir/"manifest.json").read_text())["stages"]}

def test_changes_rerun_only_the_stages_that_depend_on_them(tiny_run_copy):
    "Train once (a copy of the session's `TINY` run); a marker planted in a checkpoint survives changes of eval.n_bootstrap, the ARRG beam size and the device."
    out, stages = tiny_run_copy, TINY_STAGES
    assert "cache hit" not in statuses(out).values()  # the run was computed from an empty folder
    hits = lambda: {s for s, v in statuses(out).items() if v == "cache hit"}
    [ckpt] = [d for d in (out/"checkpoints").iterdir() if d.name.startswith("tiny_random_init-")]
    (ckpt/"marker").write_text("planted"); best = (ckpt/"best.safetensors").stat().st_mtime_ns
    r = lss_study("run", "--out", str(out), *TINY, "--set", "eval.n_bootstrap=60", *stages)
    assert r.returncode == 0, r.stderr[-3000:]
    assert hits() == {"cohort", "preprocess", "train", "crossfit"}, statuses(out)
    assert "stage train: cache hit" in r.stdout
    r = lss_study("run", "--out", str(out), *TINY, "--set", "eval.n_bootstrap=60", "--set", "arrg.beam_size=1", "--set", "device=cpu", *stages)
    assert r.returncode == 0, r.stderr[-3000:]
    assert hits() == {"cohort", "preprocess", "train", "crossfit", "evaluate", "statistics", "explain", "localisation"}, statuses(out)
    assert (ckpt/"marker").read_text() == "planted" and (ckpt/"best.safetensors").stat().st_mtime_ns == best
    report = (out/"REPORT.md").read_text()
    assert "| train | cache hit |" in report and "manifest.json" in report

def test_training_runs_in_parallel_give_the_numbers_of_one_at_a_time(tmp_path):
    "`--workers 2` trains two models at once, in two processes; every table is the same, byte for byte, as with `--workers 1`."
    stages = ["--set", "train.max_epochs=2", "--stages", "cohort,preprocess,train,evaluate,crossfit"]
    for w in (1, 2):
        r = lss_study("run", "--out", str(tmp_path/f"w{w}"), *TINY, *stages, "--workers", str(w))
        assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path/"w2/manifest.json").read_text())
    assert m["workers"] == 2 and {j["stage"] for j in m["jobs"]} == {"train", "crossfit"} and {j["workers"] for j in m["jobs"]} == {2}
    tables = sorted(p.name for p in (tmp_path/"w1/tables").glob("*.csv"))
    assert "segmentation.csv" in tables and "classification.csv" in tables
    for t in tables: assert (tmp_path/"w1/tables"/t).read_bytes() == (tmp_path/"w2/tables"/t).read_bytes(), t

def test_a_stage_alone_runs_what_it_reads(tmp_path):
    "`--stages statistics` on an empty run directory computes cohort → evaluate first, one line each."
    r = lss_study("run", "--out", str(tmp_path/"run"), *TINY, "--stages", "statistics")
    assert r.returncode == 0, r.stderr[-3000:]
    said = [l.split(":")[0] for l in r.stdout.splitlines() if l.startswith("stage ")]
    assert said == ["stage cohort", "stage preprocess", "stage train", "stage evaluate", "stage statistics"], r.stdout
    assert (tmp_path/"run/tables/statistics.csv").exists()

def test_replay_reproduces_a_run_on_a_cohort_that_is_not_the_phantom(tmp_path):
    "`--config runs/X/config.yaml --out runs/Y` keeps X's data source; a flag given overrides it."
    from lss_nbdev.data.mendeley import write_fake_mendeley
    write_fake_mendeley(tmp_path/"mendeley", n_patients=6)
    x, y = tmp_path/"x", tmp_path/"y"
    r = lss_study("run", "--data", f"mendeley:{tmp_path/'mendeley'}", "--notes", str(tmp_path/"mendeley/notes.csv"),
                  "--out", str(x), "--stages", "cohort", "--set", "real.source=null")
    assert r.returncode == 0, r.stderr[-3000:]
    r = lss_study("run", "--config", str(x/"config.yaml"), "--out", str(y), "--stages", "cohort")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (x/"config.yaml").read_text() == (y/"config.yaml").read_text()
    pd.testing.assert_frame_equal(pd.read_csv(x/"tables/cohort.csv"), pd.read_csv(y/"tables/cohort.csv"))
    r = lss_study("run", "--config", str(x/"config.yaml"), "--data", "phantom", "--set", "data.n_patients=5", "--out", str(tmp_path/"z"),
                  "--stages", "cohort")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "source: phantom" in (tmp_path/"z/config.yaml").read_text()

def test_one_model_skips_statistics_and_the_run_goes_on(tmp_path):
    "A cohort without true masks and no comparison trains one model: statistics says so in one line; explain still runs."
    from lss_nbdev.data.mendeley import write_fake_mendeley
    write_fake_mendeley(tmp_path/"mendeley", n_patients=8)
    r = lss_study("run", "--data", f"mendeley:{tmp_path/'mendeley'}", "--notes", str(tmp_path/"mendeley/notes.csv"), *TINY,
                  "--out", str(tmp_path/"run"), "--stages", "train,statistics,explain")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "stage statistics: skipped: it compares models, and this run trained one" in r.stdout
    assert statuses(tmp_path/"run")["explain"] == "ran"

def test_a_second_run_into_the_same_directory_is_refused(tmp_path):
    from lss_nbdev.study.cli import RunLock
    (tmp_path/"run").mkdir()
    with RunLock(tmp_path/"run"):
        r = lss_study_process("run", "--out", str(tmp_path/"run"), *TINY, "--stages", "cohort")  # another process
    assert r.returncode == 2 and f"is in use by lss-study pid {os.getpid()}" in r.stderr, r.stderr[-2000:]

BAD_INPUT = [
    (["--set", "train.max_epochs=abc"], "'train.max_epochs' must be int, found 'abc'"),
    (["--set", "bogus.key=1"], "unknown config key 'bogus.key'"),
    (["--set", "train.max_epochs.x=1"], "is a value, not a section"),
    (["--set", "data=1"], "'data' is a section"),
    (["--set", "loss.anti_windup=sometimes"], "'loss.anti_windup' must be one of"),
    (["--config", "{tmp}/data5.yaml"], "data5.yaml: config section 'data' must be a mapping"),
    (["--config", "{tmp}/list.yaml"], "list.yaml: a config must be a mapping"),
    (["--config", "{tmp}"], "is a directory"),
    (["--out", "{tmp}/afile"], "afile: is a file, not a directory"),
    (["--out", "/proc/lss_nbdev_run"], "--out /proc/lss_nbdev_run:"),  # a file system that refuses it, even to root
    (["--data", "folder:{tmp}/empty.csv"], "empty.csv is not a readable CSV"),
    (["--profile", "paper", "--set", "model.weights.llava-med=default"], "preflight found"),
]
def test_bad_input_is_one_line(tmp_path):
    "Each bad input gives exit status 2 and one line naming the key or the file, never a traceback."
    (tmp_path/"data5.yaml").write_text("data: 5\n"); (tmp_path/"list.yaml").write_text("- 1\n")
    (tmp_path/"afile").write_text("x"); (tmp_path/"empty.csv").write_text("")
    for args, message in BAD_INPUT:
        case = [a.replace("{tmp}", str(tmp_path)) for a in args]
        r = lss_study("run", *(case if "--out" in case else ["--out", str(tmp_path/"run"), *case]))
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (args, r.returncode, r.stderr)

def test_vlm_report_path_adds_table_4_rows(tiny_run_copy):
    "With `arrg.vlm_path` a SmolVLM model writes findings with its own language model: Table 4 and Table 5 get its rows (in a copy of the session's run: its tiny models are not trained again)."
    out = tiny_run_copy
    r = lss_study("run", "--out", str(out), *TINY, "--set", "model.compare=[smolvlm]", "--set", "arrg.vlm_path=true",
                  "--set", "arrg.vlm_epochs=1", "--set", "arrg.max_tokens=4", "--set", "arrg.beam_size=1", "--stages", "arrg")
    assert r.returncode == 0, r.stderr[-3000:]
    nlg = pd.read_csv(out/"tables/report_generation.csv")
    assert any("smolvlm" in str(m) and "own language model" in str(m) for m in nlg.iloc[:, 0]), nlg.iloc[:, 0].tolist()
    assert "own language model" in (out/"tables/report_generation.md").read_text().splitlines()[0]
    assert any("own language model" in m for m in pd.read_csv(out/"tables/report_grading.csv").model)

def test_an_edit_of_the_training_code_retrains_and_an_edit_of_a_plotting_helper_does_not(tmp_path, monkeypatch):
    "Keys carry the code: the same run, read by an edited copy of the package, retrains after a loss edit, and after a plotting edit reruns stages but trains nothing."
    import shutil
    import lss_nbdev.core.rundir as rundir
    from lss_nbdev.study.cli import build_config, run_study
    cfg = build_config(sets=[s for s in TINY if s != "--set"])
    out, stages = tmp_path/"run", ["cohort", "preprocess", "train"]
    models = lambda: sorted(p.name for p in (out/"checkpoints").iterdir() if p.is_dir() and p.name != "prefixes")
    def run_with(edit=None):
        root = tmp_path/f"pkg-{len(list(tmp_path.glob('pkg-*')))}"/"lss_nbdev"
        shutil.copytree(rundir.PACKAGE_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
        if edit: (root/edit[0]).write_text((root/edit[0]).read_text().replace(*edit[1:]))
        monkeypatch.setattr(rundir, "PACKAGE_DIR", root); rundir._cached_code_fingerprint.cache_clear()
        return run_study(cfg, out, stages=stages, workers=1)
    first = run_with(); before = models()
    assert len(first.jobs) == 4 and len(before) == 4  # default, anatomical target, paper decoder, U-Net peer
    plot = run_with(("evaluation/study_figures.py", "def plot_training_curves(", "PLOT_EDIT = 1\n\ndef plot_training_curves("))
    assert plot.jobs == [] and models() == before  # nothing retrained ...
    assert {r["stage"]: r["status"] for r in plot.records}["train"] == "ran"  # ... though the stage that draws with it reran
    loss = run_with(("model/losses.py", "eps:float=1e-6", "eps:float=2e-6"))
    assert len(loss.jobs) == 4 and len(models()) == 8  # every model retrained, into new folders
    rundir._cached_code_fingerprint.cache_clear()

def test_rewriting_a_mask_of_a_folder_cohort_recomputes_it(tmp_path):
    "A folder cohort whose mask file is rewritten under the same path is loaded again (the manifest says ran, not cache hit)."
    import shutil, time
    data = tmp_path/"data"; shutil.copytree(Path(__file__).resolve().parents[1]/"data/spider_examples", data)
    df = pd.read_csv(data/"cases.csv")
    df = df[df.patient_id.isin(df.patient_id.unique()[:6])].reset_index(drop=True)  # six patients load in a second; the key follows one file
    df["grade"] = [("A", "BC", "D")[i % 3] for i in range(len(df))]; df.to_csv(data/"cases.csv", index=False)
    args = ["run", "--data", f"folder:{data/'cases.csv'}", "--out", str(tmp_path/"run"), "--set", "real.source=null", "--stages", "cohort"]
    assert lss_study(*args).returncode == 0
    assert lss_study(*args).returncode == 0 and statuses(tmp_path/"run") == {"cohort": "cache hit"}
    mask = data/df.mask_path[0]
    mask.write_bytes(mask.read_bytes()); os.utime(mask, ns=(time.time_ns(), time.time_ns() + 10**9))  # rewritten in place
    r = lss_study(*args)
    assert r.returncode == 0 and statuses(tmp_path/"run") == {"cohort": "ran"}, r.stderr[-2000:]
