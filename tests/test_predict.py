"`lss-study predict` (issue #13): one patient through a trained run, its outputs, its PHI scrubbing, and bad input."
import json, os, shutil, subprocess, sys
import numpy as np, pandas as pd, pydicom, pytest
from lss_nbdev.testing import PLANTED_PHI, write_phantom_study, plant_linkable
from lss_nbdev.predict.privacy import find_identifiers, keyed_uid, load_key, KEY_ENV
from lss_nbdev.predict.dicom_seg import SOURCE_DIR
from lss_nbdev.predict.pipeline import load_pipeline
from lss_nbdev.predict.patient import predict
from lss_nbdev.data.mendeley import write_fake_mendeley
from lss_nbdev.study.cli import cli
from lss_nbdev.core.rundir import card_entry
from conftest import child_env, lss_study_process

@pytest.fixture(scope="module", autouse=True)
def user_key(tmp_path_factory):
    "The pseudonym key of these tests: a temporary file named by $LSS_STUDY_KEY (in-process and for the console script), never the real home."
    kf = tmp_path_factory.mktemp("key")/"pseudonym.key"
    old = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = str(kf)  # child processes inherit it (`child_env`)
    yield kf
    if old is None: os.environ.pop(KEY_ENV, None)
    else: os.environ[KEY_ENV] = old

@pytest.fixture(scope="module")
def run(tiny_run):
    "The session's tiny trained run (tests/conftest.py: 9 phantom patients, one epoch, ARRG one epoch), read only; tests that change a run copy it."
    return tiny_run

@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    "One phantom patient as a DICOM study (Mendeley layout) with planted patient attributes, and its truth."
    folder = tmp_path_factory.mktemp("patient")/"study"
    return folder, write_phantom_study(folder, seed=5)

def cli_error(monkeypatch, capsys, *args):
    "Run the console script's entry in-process; return (exit code, stderr lines)."
    monkeypatch.setattr(sys, "argv", ["lss-study", *map(str, args)])
    with pytest.raises(SystemExit) as e: cli()
    return e.value.code, [l for l in capsys.readouterr().err.splitlines() if l.strip()]

def test_predict_cli_writes_every_output(run, patient, tmp_path):
    folder, truth = patient
    r = lss_study_process("predict", "--run", str(run), str(folder), "--out", str(tmp_path/"out"))
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path/"out"
    assert sorted(p.name for p in out.iterdir()) == [".lss-predict.json", "canal_seg.dcm", SOURCE_DIR, "index.html", "levels.csv", "overlays", "report.json", "report.md", "rsna.csv"]
    lv = pd.read_csv(out/"levels.csv")
    assert list(lv.level) == list(truth.level) == [p.stem for p in sorted((out/"overlays").glob("*.png"))]
    assert lv.slice.str.extract(r"instance (\d+)")[0].astype(int).tolist() == list(truth.instance)
    assert (lv.level_method == "geometry").all() and lv.slice_rule.str.startswith("disc blocks of the geometry").all()
    assert set(lv.rsna_grade) <= {"Normal/Mild", "Moderate", "Severe"} and set(lv.grade) <= {"Grade A", "Grade B&C", "Grade D"}
    assert np.allclose(lv[["p_A", "p_BC", "p_D"]].sum(axis=1), 1, atol=1e-3)
    assert (lv.confidence == lv[["p_A", "p_BC", "p_D"]].max(axis=1)).all()
    assert lv.level_verified.all() and lv.geometry.str.contains("in the same block").all()
    rsna = pd.read_csv(out/"rsna.csv")
    assert list(rsna.columns) == ["row_id", "normal_mild", "moderate", "severe"] and len(rsna) == 3
    assert np.allclose(rsna[["normal_mild", "moderate", "severe"]].values, lv[["p_A", "p_BC", "p_D"]].values, atol=1e-3)
    md = (out/"report.md").read_text()
    assert all(f"### {l} ·" in md for l in truth.level)
    rj = json.loads((out/"report.json").read_text())
    assert [l["level"] for l in rj["levels"]] == list(truth.level)
    assert rj["patient"] == lv.patient[0] and rj["patient"].startswith("P-")
    page = (out/"index.html").read_text()
    assert page.count("src='data:image/png;base64,") == 3
    assert not any(s in page for s in ("http://", "https://", "<script", "<link"))  # nothing fetched: readable offline
    seg = pydicom.dcmread(out/"canal_seg.dcm")
    src = pydicom.dcmread(sorted(folder.rglob("T2_TSE_TRA*/*.ima"))[0])
    copy = pydicom.dcmread(out/SOURCE_DIR/"level_1.dcm")
    assert seg.Modality == "SEG" and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == copy.SeriesInstanceUID == keyed_uid(load_key(), src.SeriesInstanceUID)
    assert int(seg.NumberOfFrames) == 3

def test_no_identifying_attribute_in_any_output(run, patient, tmp_path):
    "PatientName, PatientID, PatientBirthDate and InstitutionName planted in every input file appear in no output file."
    folder, _ = patient
    assert len(find_identifiers(folder, PLANTED_PHI)) > 0  # the search finds them where they are
    out = predict(run, folder, tmp_path/"out", verbose=False)
    hits = find_identifiers(out, PLANTED_PHI)
    assert hits.empty, hits
    searched = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert "canal_seg.dcm" in searched and "index.html" in searched and any(s.startswith("overlays/") for s in searched)
    rsna = tmp_path/"rsna"/"train_images"/"2001"
    write_phantom_study(rsna, seed=5, layout="rsna")
    hits = find_identifiers(predict(run, rsna, tmp_path/"out_rsna", verbose=False), PLANTED_PHI)
    assert hits.empty, hits

def test_pseudonym_is_stable_and_keyed(run, patient, tmp_path):
    folder, _ = patient
    a = pd.read_csv(predict(run, folder, tmp_path/"a", verbose=False)/"levels.csv").patient[0]
    b = pd.read_csv(predict(run, folder, tmp_path/"b", verbose=False)/"levels.csv").patient[0]
    assert a == b
    assert pd.read_csv(predict(run, folder, tmp_path/"c", key=tmp_path/"keys"/"other.key", verbose=False)/"levels.csv").patient[0] != a
    assert not [p for p in run.rglob("*") if "key" in p.name]  # the key is the user's, never the run's
    assert pd.read_csv(predict(run, folder, tmp_path/"d", pseudonym="case-17", verbose=False)/"levels.csv").patient[0] == "case-17"

def _two_patient_ids(d):
    write_phantom_study(d, seed=1)
    f = sorted(d.rglob("*.ima"))[0]; ds = pydicom.dcmread(f); ds.PatientID = "SOMEONE-ELSE"; ds.save_as(f)

def _no_axial(d):
    write_phantom_study(d, seed=1); shutil.rmtree(d/"L-SPINE/T2_TSE_TRA_384_0003")

def _odd_size(d):
    write_phantom_study(d, seed=1)
    f = d/"L-SPINE/T2_TSE_TRA_384_0003/0007.ima"; ds = pydicom.dcmread(f)
    ds.PixelData = ds.pixel_array[:256, :200].copy().tobytes(); ds.Rows, ds.Columns = 256, 200; ds.save_as(f)

def _not_a_study(d):
    d.mkdir(parents=True); (d/"notes.txt").write_text("not an image")

def _spacing(d):
    write_phantom_study(d, seed=1)
    for f in d.rglob("T2_TSE_TRA*/*.ima"): ds = pydicom.dcmread(f); ds.PixelSpacing = [68.75, 68.75]; ds.save_as(f)

def _rows(d):
    write_phantom_study(d, seed=1)
    f = d/"L-SPINE/T2_TSE_TRA_384_0003/0007.ima"; ds = pydicom.dcmread(f); ds.Rows = 300; ds.save_as(f)

def _double(d):
    write_phantom_study(d, seed=1)
    f = d/"L-SPINE/T2_TSE_TRA_384_0003/0004.ima"; shutil.copy(f, f.with_name("0004 (1).ima"))

@pytest.mark.parametrize("make, message", [
    (_not_a_study, "not a study: no DICOM file, no NIfTI volume and no image"),
    (lambda d: write_fake_mendeley(d, n_patients=2), "this looks like several patients"),
    (_two_patient_ids, "2 patients in one input (PatientID differs"),
    (_no_axial, "no axial T2 series: found 't1_tse_tra' (3 files, axial); 't2_tse_sag_384' (3 files, sagittal)"),
    (_odd_size, "series 't2_tse_tra_384' (15 files): slices of different sizes (320×320 in 14 files; 256×200 in ['0007.ima'])"),
    (_spacing, "pixel spacing 68.75×68.75 mm is outside the accepted 0.1-5 mm"),  # what cannot be measured is refused the same way
    (_rows, "0007.ima: Rows × Columns = 300×320"),
    (_double, "2 slices share a position with another"),
])
def test_bad_input_is_one_line_and_writes_nothing(run, tmp_path, monkeypatch, capsys, make, message):
    make(tmp_path/"input")
    code, err = cli_error(monkeypatch, capsys, "predict", "--run", run, tmp_path/"input", "--out", tmp_path/"out")
    assert code == 2 and len(err) == 1 and err[0].startswith("lss-study: error: "), err
    assert message in err[0], err
    assert not (tmp_path/"out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

def test_run_without_a_trained_model(patient, tmp_path, monkeypatch, capsys):
    folder, _ = patient
    (tmp_path/"empty_run").mkdir()
    code, err = cli_error(monkeypatch, capsys, "predict", "--run", tmp_path/"empty_run", folder, "--out", tmp_path/"out")
    assert code == 2 and len(err) == 1 and f"run directory {tmp_path/'empty_run'} has no model_card.json" in err[0], err
    assert "--stages train,explain" in err[0]
    code, err = cli_error(monkeypatch, capsys, "predict", "--run", tmp_path/"no_such_run", folder, "--out", tmp_path/"out")
    assert code == 2 and "the run directory does not exist" in err[0]
    assert not (tmp_path/"out").exists()

def test_model_trained_at_another_input_size(run, patient, tmp_path, monkeypatch, capsys):
    "A checkpoint whose weights were trained at 224 px where the run's config builds another size is refused, naming the file."
    from safetensors.torch import save_model
    from lss_nbdev.model.train import build_model
    folder, _ = patient
    other = tmp_path/"run224"
    shutil.copytree(run, other)
    pipe = load_pipeline(other)
    from lss_nbdev.core.rundir import slug
    [ckpt] = list((other/"checkpoints").glob(f"{slug(pipe.name)}-*/best.safetensors"))  # the served model's, not its twins'
    save_model(build_model(pipe.cfg.replace(**{"model.image_size": 224})), str(ckpt))
    card = json.loads((other/"model_card.json").read_text())  # a card that names this file: the size check is the one that fails
    card["models"][pipe.name]["checkpoint"] = card_entry(other, ckpt)
    (other/"model_card.json").write_text(json.dumps(card))
    capsys.readouterr()
    code, err = cli_error(monkeypatch, capsys, "predict", "--run", other, folder, "--out", tmp_path/"out")
    assert code == 2 and len(err) == 1 and str(ckpt) in err[0] and "another input size" in err[0] and f"input {pipe.cfg.model.image_size} px" in err[0], err
    assert "trained at about 224 px" in err[0], err
    assert not (tmp_path/"out").exists()

def test_out_is_replaced_whole_or_left_alone(run, patient, tmp_path, monkeypatch):
    import lss_nbdev.predict.patient as P
    folder, _ = patient
    out = predict(run, folder, tmp_path/"out", verbose=False)
    before = (out/"levels.csv").read_bytes()
    def broken(*a, **k): raise RuntimeError("disk full (simulated)")
    monkeypatch.setattr(P, "index_html", broken)
    with pytest.raises(RuntimeError): predict(run, folder, out, verbose=False)
    assert (out/"levels.csv").read_bytes() == before and (out/"index.html").exists()  # the earlier output, untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial folder left
    monkeypatch.undo()
    (tmp_path/"mine").mkdir(); (tmp_path/"mine"/"thesis.tex").write_text("x")
    with pytest.raises(ValueError, match="not an earlier predict output"): predict(run, folder, tmp_path/"mine", verbose=False)

def test_slices_folder_and_levels(run, patient, tmp_path):
    "A folder of DICOM slices mapped to levels by --levels (file-name order); pixel spacing from the DICOM headers."
    folder, truth = patient
    files = sorted(folder.rglob("T2_TSE_TRA*/*.ima"))
    (tmp_path/"slices").mkdir()
    for lvl, i in zip(truth.level, truth.instance): shutil.copy(files[i - 1], tmp_path/"slices"/f"{lvl}.dcm")
    lv = pd.read_csv(predict(run, tmp_path/"slices", tmp_path/"out", levels="L3-L4,L4-L5,L5-S1", verbose=False)/"levels.csv")
    ref = pd.read_csv(predict(run, folder, tmp_path/"ref", verbose=False)/"levels.csv")
    assert np.allclose(lv[["p_A", "p_BC", "p_D"]], ref[["p_A", "p_BC", "p_D"]], atol=1e-4)
    assert np.allclose(lv.dural_sac_area_mm2, ref.dural_sac_area_mm2)
    lv2 = pd.read_csv(predict(run, tmp_path/"slices", tmp_path/"out2", levels="L4-L5,L5-S1", verbose=False)/"levels.csv")
    assert list(lv2.level) == ["L4-L5", "L5-S1"] and list(lv2.slice.str.extract(r"instance (\d+)")[0].astype(int)) == list(truth.instance[1:])
    assert (lv2.level_method == "geometry").all() and not lv2.level_verified.any()  # the three slices' disc blocks place them; the count cannot check

def test_unknown_model_names_the_run_s_models(run, patient, tmp_path):
    folder, _ = patient
    with pytest.raises(ValueError, match=r"--model 'nope': run .* has models \['tiny \(random init\)', 'tiny \(random init\) · anatomical target', 'tiny \(random init\) · anatomical target · paper decoder'\]"):
        predict(run, folder, tmp_path/"out", model="nope", verbose=False)
    lv = pd.read_csv(predict(run, folder, tmp_path/"main", model="tiny (random init)", verbose=False)/"levels.csv")
    assert len(lv) == 3
    assert "model 'tiny (random init)' of run" in (tmp_path/"main"/"report.md").read_text()

def test_serves_exactly_what_its_model_card_names(run, patient, tmp_path, monkeypatch, capsys):
    "A newer checkpoint of the same model under the same name (another seed's, say) is never picked up by its mtime; the temperature is the card's; a missing checkpoint is one line, exit 2."
    import torch
    from safetensors.torch import save_model
    from lss_nbdev.model.train import build_model
    folder, _ = patient
    other = tmp_path/"run"; shutil.copytree(run, other)
    card = json.loads((other/"model_card.json").read_text())
    name = card["default"]; entry = card["models"][name]
    pipe = load_pipeline(other)
    assert pipe.name == name and pipe.temperature == entry["temperature"] is not None
    served = other/entry["checkpoint"]["path"]
    decoy = served.parent.with_name(served.parent.name.rsplit("-", 1)[0] + "-0123456789ab")  # same model name, another key
    shutil.copytree(served.parent, decoy)
    torch.manual_seed(1); save_model(build_model(pipe.cfg), str(decoy/"best.safetensors"))  # newer, other weights
    os.utime(decoy/"best.safetensors", (served.stat().st_mtime + 100,) * 2)
    a = predict(run, folder, tmp_path/"a", pseudonym="P-test", verbose=False)
    b = predict(other, folder, tmp_path/"b", pseudonym="P-test", verbose=False)
    assert (a/"levels.csv").read_text() == (b/"levels.csv").read_text()
    served.unlink()
    capsys.readouterr()
    code, err = cli_error(monkeypatch, capsys, "predict", "--run", other, folder, "--out", tmp_path/"c")
    assert code == 2 and len(err) == 1 and entry["checkpoint"]["path"] in err[0] and "missing" in err[0], err
    assert not (tmp_path/"c").exists()

def test_predict_reads_no_pickle_of_the_run(run, patient, tmp_path):
    "Every pickle in a copied run replaced by one that would create a file: predict serves the run and nothing runs."
    import pickle
    class Plant:
        def __reduce__(self): return (open, (str(tmp_path/"PWNED"), "w"))
    folder, _ = patient
    other = tmp_path/"run"; shutil.copytree(run, other)
    for p in (other/"cache").rglob("*.pkl"): p.write_bytes(pickle.dumps(Plant()))
    for p in (other/"checkpoints").rglob("state.pt"): p.write_bytes(pickle.dumps(Plant()))
    predict(other, folder, tmp_path/"out", verbose=False)
    assert (tmp_path/"out"/"levels.csv").exists() and not (tmp_path/"PWNED").exists()

def test_out_that_is_not_predict_s_is_refused_and_kept(run, patient, tmp_path, monkeypatch, capsys):
    "The probe's two cases: a folder with report.json ({}), thesis.docx and sub/raw.csv; the input's parent. One line, exit 2, nothing deleted."
    folder, _ = patient
    mine = tmp_path/"mine"; (mine/"sub").mkdir(parents=True)
    (mine/"report.json").write_text("{}"); (mine/"thesis.docx").write_text("x"); (mine/"sub"/"raw.csv").write_text("a")
    code, err = cli_error(monkeypatch, capsys, "predict", "--run", run, folder, "--out", mine)
    assert code == 2 and len(err) == 1 and "is not an earlier predict output" in err[0], err
    assert sorted(str(p.relative_to(mine)) for p in mine.rglob("*")) == ["report.json", "sub", "sub/raw.csv", "thesis.docx"]
    shutil.copytree(folder, tmp_path/"parent"/"study")
    n = len(list((tmp_path/"parent").rglob("*")))
    code, err = cli_error(monkeypatch, capsys, "predict", "--run", run, tmp_path/"parent"/"study", "--out", tmp_path/"parent")
    assert code == 2 and len(err) == 1 and "contains the input" in err[0], err
    assert len(list((tmp_path/"parent").rglob("*"))) == n

def test_nothing_linkable_leaves(run, tmp_path, capsys):
    "Vendor UIDs, referring physician, accession number, study date, a private tag and free text in SeriesDescription: in no output; the SEG and its pseudonymised source read back with highdicom as a pair."
    import highdicom as hd
    study = tmp_path/"Quillfeather-2021"  # a folder named as users name them
    write_phantom_study(study, seed=5)
    planted = plant_linkable(study)
    needles = {**PLANTED_PHI, **planted, **{f"description {i}": w for i, w in enumerate(planted["SeriesDescription"].split())}}
    out = predict(run, study, tmp_path/"out", verbose=False)
    assert find_identifiers(out, needles).empty, find_identifiers(out, needles)
    assert find_identifiers(out, {"study folder": study.name}).empty  # no user file or folder name
    seg = hd.seg.segread(out/"canal_seg.dcm")
    copies = {c.SOPInstanceUID: c for c in (pydicom.dcmread(f) for f in sorted((out/SOURCE_DIR).glob("*.dcm")))}
    assert seg.number_of_segments == 1 and seg.get_segment_description(1).segment_label == "thecal sac (predicted)"
    assert sorted(u[2] for u in seg.get_source_image_uids()) == sorted(copies)
    for f in seg.PerFrameFunctionalGroupsSequence:
        c = copies[f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        assert np.allclose(f.PlanePositionSequence[0].ImagePositionPatient, c.ImagePositionPatient)
        assert np.allclose(f.PlaneOrientationSequence[0].ImageOrientationPatient, c.ImageOrientationPatient)
    (tmp_path/"slices").mkdir()
    for i, f in enumerate(sorted(study.rglob("T2_TSE_TRA*/*.ima"))[2::5]): shutil.copy(f, tmp_path/"slices"/f"Quillfeather_{i}.dcm")
    sl = predict(run, tmp_path/"slices", tmp_path/"out_slices", levels="L3-L4,L4-L5,L5-S1", verbose=False)
    assert pd.read_csv(sl/"levels.csv").slice.tolist() == ["file #1", "file #2", "file #3"]
    assert find_identifiers(sl, {**needles, "file name": "Quillfeather"}).empty
    capsys.readouterr()
    predict(run, study, tmp_path/"kept", keep_source_uids=True, verbose=False)
    assert "--keep-source-uids" in capsys.readouterr().out
    assert json.loads((tmp_path/"kept"/"report.json").read_text())["source_uids"] == "kept"


def test_prompt_encoding_replaces_the_text_tower(run, tmp_path):
    "The first load of a tiny run saves the frozen text tower's prompt encoding under <run>/cache; later loads build no text tower (and import no transformers), with the same outputs."
    import torch
    other = tmp_path/"run"; shutil.copytree(run, other)
    shutil.rmtree(other/"cache"/"prompt_encodings", ignore_errors=True)
    first = load_pipeline(other)
    assert first.model.backbone.text_tower is not None
    [saved] = list((other/"cache"/"prompt_encodings").glob("*.safetensors"))
    second = load_pipeline(other)
    assert second.model.backbone.text_tower is None
    x = torch.randn(2, 3, first.cfg.model.image_size, first.cfg.model.image_size)
    with torch.no_grad(): a, b = first.model(x), second.model(x)
    assert torch.equal(a["grade_logits"], b["grade_logits"]) and torch.equal(a["mask_logits"], b["mask_logits"])
    code = f"import sys; from lss_nbdev.predict.pipeline import load_pipeline; load_pipeline({str(other)!r}); print('transformers' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env())
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "False", r.stderr[-2000:]
    saved.write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match="unreadable prompt encoding"): load_pipeline(other)
