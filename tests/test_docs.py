"The docs build's conversion of nbdev-processed notebooks for MyST-NB (docs/build.py); no notebook runs, no browser"
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'docs'))
import build  # noqa: E402

def _names(): return {p.stem: build._html_name(p) for p in (ROOT/'nbs').glob('*.ipynb')}

def test_sidebar_lists_every_notebook_once():
    parts = build.sidebar()
    listed = [n for _, ns in parts for n in ns]
    assert sorted(listed) == sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb'))
    assert len(set(_names().values())) == len(listed)   # one page name per notebook, as Quarto names them

def test_toctrees_follow_sidebar_parts():
    names = dict(_names(), results='results')
    t = build.toctrees([(None, ['results'])] + build.sidebar(), names)
    caps = [l.split(': ', 1)[1] for l in t.splitlines() if l.startswith(':caption:')]
    assert caps == [s for s, _ in build.sidebar()[1:]]
    assert 'config\n' in t and 'index\n' not in t

def test_to_myst_applies_quarto_options_and_links():
    site = build._site_url()
    nb = dict(metadata=dict(docs_frontmatter=dict(title='T', description='D')), cells=[
        dict(cell_type='markdown', metadata={}, source=f'see [`f`]({site}config.html#f) and [n](16_train.ipynb)\n\n| a | $|x|$ |'),
        dict(cell_type='code', metadata={}, source='#| output: asis\n#| echo: false\nshow_doc(f)', execution_count=None,
             outputs=[dict(output_type='display_data', metadata={}, data={'text/markdown': ['### f\n']})]),
        dict(cell_type='code', metadata={}, source='#| echo: false\nplot()', execution_count=None,
             outputs=[dict(output_type='stream', name='stdout', text=['\x1b[31mred\x1b[0m\n'])]),
        dict(cell_type='code', metadata={}, source='#| include: false\nx = 1', outputs=[], execution_count=None)])
    cells = build.to_myst(nb, _names())['cells']
    assert cells[0]['source'] == '# T\n\n> D\n'
    assert f'{site}train.html' in cells[1]['source'] and r'$\vert x\vert $' in cells[1]['source']
    assert cells[2] == dict(cell_type='markdown', metadata={}, source='### f\n', id='c2')   # show_doc: its markdown
    assert cells[3]['metadata']['tags'] == ['remove-input'] and cells[3]['outputs'][0]['text'] == ['red\n']
    assert len(cells) == 4                                                                   # include: false dropped
