"README.md must be the rendering of nbs/index.ipynb (`make readme`), and start with the two commands."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_readme_matches_index():
    md = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "markdown", "--no-input", "--stdout",
                         str(ROOT/"nbs/index.ipynb")], capture_output=True, text=True, check=True).stdout
    md = md.replace("](images/", "](nbs/images/")  # images live beside the notebook
    assert (ROOT/"README.md").read_text() == md, "README.md is stale: run `make readme`"

def test_readme_starts_with_the_two_commands():
    text = (ROOT/"README.md").read_text()
    first_block = text.split("```sh", 1)[1].split("```", 1)[0]
    assert [l.split()[:2] for l in first_block.strip().splitlines()] == [["make", "study"], ["make", "test"]]

def test_readme_findings_come_from_the_committed_run():
    "The findings table in the README is what `findings_markdown` writes from results/quick (no hand-typed number)."
    from lss_nbdev.study.findings import findings_markdown
    assert findings_markdown(ROOT/"results/quick") in (ROOT/"README.md").read_text(), "README's findings differ from results/quick: run `make results`"
