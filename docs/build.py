"""Build the documentation site under `_docs/` without Quarto: `make docs`.

nbdev processes every notebook of `nbs/` with its own processors (`nbdev.processors.FilterDefaults`:
frontmatter, `show_doc` cells after every export, `#| hide`, `#| export` cells removed, links to the API),
except that `exec_show_docs` (which runs only the cells `show_doc` needs) is replaced by `exec_all`, which
runs every code cell the way `nbdev_test` does (cwd `nbs/`, `IN_TEST=1`, cells flagged with one of
settings.ini's `tst_flags` or `eval: false` are not run). Quarto's cell options (`output: asis`,
`echo: false`, `include: false`) are then applied, and Sphinx with MyST-NB renders the notebooks as they
are, without executing them again. `nbs/sidebar.yml` gives the sidebar and `index.ipynb` the home page;
`results/quick/` and the README's findings give the results page.

    python docs/build.py             # all notebooks (executed ones are cached in _docs_build/exec)
    python docs/build.py --force     # execute every notebook again
    python docs/build.py --only 15_pid_tversky 00_config   # a quick look at a few pages
"""
from __future__ import annotations
import argparse, hashlib, html, json, os, re, shutil, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
BUILD = ROOT/'_docs_build'   # intermediate files: executed notebooks, the Sphinx source tree
OUT = ROOT/'_docs'           # the site (nbdev.yml's output-dir, as nbdev_docs writes it)
_re_ansi = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')
_re_qopt = re.compile(r'^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')

# ---------------------------------------------------------------------------------------------------------
# In a worker process: execute and process one notebook
def _renderer():
    "A `show_doc` renderer that adds fastcore's docments table (parameters, types, defaults, details)"
    from nbdev.showdoc import BasicMarkdownRenderer
    from nbdev.doclinks import NbdevLookup
    from fastcore.docments import DocmentTbl, _show_param, _ital_first
    import inspect, textwrap

    class TableRenderer(BasicMarkdownRenderer):
        def _sig(self):
            if self.sig is None: return ''
            ps = [_show_param(p) for p in self.sig.parameters.values() if p.name != 'self']
            ret = self.sig.return_annotation
            r = '' if ret is inspect.Signature.empty else '->' + inspect.formatannotation(ret).strip("'")
            s = f"{self.nm}({', '.join(ps)}){r}"
            return textwrap.fill(s, 100, subsequent_indent='    ', break_long_words=False, break_on_hyphens=False)

        def _repr_markdown_(self):
            h = '#'*self.title_level
            doc = f'{h} {self.nm}\n\n'
            src = NbdevLookup().code(self.fn)
            if src: doc += f'<a class="sd-source reference external" href="{html.escape(src)}">source</a>\n\n'
            sig = self._sig()
            if sig: doc += f'```python\n{sig}\n```\n\n'
            if self.docs: doc += _ital_first(self.docs) + '\n\n'
            try: tbl = DocmentTbl(self.sym)._repr_markdown_()
            except Exception: tbl = ''
            if tbl: doc += tbl + '\n'
            return doc
    return TableRenderer

def _exec_all():
    from nbdev.process import Processor
    from nbdev.config import get_config
    from execnb.shell import CaptureShell

    class exec_all(Processor):
        "Execute every code cell as `nbdev_test` does: not those flagged with `tst_flags` or `eval: false`"
        def begin(self):
            self.flags = set(get_config().tst_flags.split())
            self.k = CaptureShell(self.nb.path_)
            self.k.run_cell('from nbdev.showdoc import show_doc')

        def __call__(self, cell):
            if cell.cell_type != 'code' or not cell.source.strip(): return
            if 'nbdev_export'+'(' in cell.source: return
            d = getattr(cell, 'directives_', None) or {}
            if d.get('eval:', [''])[0].lower() == 'false': return
            if self.flags & d.keys():
                cell.metadata['docs_skipped'] = sorted(self.flags & d.keys())
                return
            self.k.cell(cell)
            if self.k.exc:
                tb = ''.join(self.k.prettytb(fname=self.nb.path_)) if hasattr(self.k, 'prettytb') else ''
                raise RuntimeError(f'{Path(self.nb.path_).name}: cell {cell.idx_} failed:\n{cell.source}\n{tb}') from self.k.exc
    return exec_all

def execute_one(src:Path, dst:Path):
    "Process `src` with nbdev's processors, every cell executed, into the notebook `dst`"
    os.environ['IN_TEST'] = '1'
    os.environ.setdefault('MPLBACKEND', 'Agg')
    import nbdev.showdoc, nbdev.processors
    from nbdev.processors import FilterDefaults, exec_show_docs
    from execnb.nbio import read_nb
    nbdev.showdoc.BasicMarkdownRenderer = _renderer()   # show_doc looks this name up when it is called
    exec_all = _exec_all()

    class DocsFilter(FilterDefaults):
        def base_procs(self): return [exec_all if p is exec_show_docs else p for p in super().base_procs()]

    src = Path(src).resolve()
    nb = read_nb(src)
    os.chdir(src.parent)
    sys.path.insert(0, str(ROOT))
    DocsFilter()(nb)
    fm = getattr(nb, 'frontmatter_', {}) or {}
    cells = [_clean_cell(c) for c in nb.cells]
    res = dict(cells=[c for c in cells if c is not None], metadata=dict(nb.metadata), nbformat=4, nbformat_minor=5)
    res['metadata']['docs_frontmatter'] = {k:v for k,v in fm.items() if isinstance(v, (str, int, float, bool))}
    Path(dst).write_text(json.dumps(res, indent=1, default=str))

def _clean_cell(c):
    "An nbformat cell from an nbdev-processed `NbCell` (drops the processors' private attributes)"
    d = dict(cell_type=c.cell_type, metadata=dict(c.get('metadata', {})), source=c.source)
    if c.cell_type == 'code':
        d['outputs'] = [dict(o) for o in c.get('outputs', []) or []]
        for o in d['outputs']:
            if 'data' in o: o['data'] = dict(o['data'])
            if 'metadata' in o: o['metadata'] = dict(o['metadata'])
        d['execution_count'] = None
    return d

# ---------------------------------------------------------------------------------------------------------
# Turning the processed notebooks into MyST-NB's input (what Quarto would do with the same notebooks)
def _site_url():
    from nbdev.config import get_config
    cfg = get_config()
    return cfg.doc_host.rstrip('/') + '/' + cfg.doc_baseurl.strip('/') + '/'

def _html_name(nb_path:Path) -> str:
    "The page name Quarto and nbdev give a notebook: `00_config.ipynb` -> `config`"
    from nbdev.doclinks import _nbpath2html
    return _nbpath2html(Path(nb_path)).stem

def _quarto_opts(src:str):
    "Split a code cell into its leading Quarto options (`#| key: value`) and the rest"
    lines, opts = src.splitlines(), {}
    while lines and (m := _re_qopt.match(lines[0])):
        opts[m.group(1)] = m.group(2).strip('"\'')
        lines.pop(0)
    return opts, '\n'.join(lines)

def _md_text(o) -> str | None:
    data = o.get('data', {})
    for k in ('text/markdown', 'text/plain'):
        if k in data: return ''.join(data[k])
    if o.get('output_type') == 'stream': return ''.join(o.get('text', []))

def _link_local(md:str, names:dict) -> str:
    "Links to other notebooks (`16_train.ipynb`) go to their page on the site (rewritten to relative links later)"
    site = _site_url()
    def sub(m):
        stem = Path(m.group(2)).stem
        return f'{m.group(1)}{site}{names[stem]}.html' if stem in names else m.group(0)
    return re.sub(r'(\]\()(?:\./)?(?:nbs/)?([\w.-]+\.ipynb)(?=[#)])', sub, md)

def _table_math(md:str) -> str:
    "In a pipe-table row, a `|` inside `$...$` would split the cell (GFM splits rows before it reads math)"
    fix = lambda m: re.sub(r'(?<!\\)\|', r'\\vert ', m.group(0))
    return '\n'.join(re.sub(r'\$[^$\n]+\$', fix, l) if l.lstrip().startswith('|') else l for l in md.split('\n'))

def to_myst(nb:dict, names:dict, extra_md:str='') -> dict:
    "Apply Quarto's cell options, frontmatter and links to a processed notebook, for MyST-NB"
    fm = nb['metadata'].pop('docs_frontmatter', {})
    cells = []
    title = fm.get('title')
    if title:
        head = f"# {title}\n"
        if fm.get('description'): head += f"\n> {fm['description']}\n"
        cells.append(dict(cell_type='markdown', metadata={}, source=head))
    for c in nb['cells']:
        if c['cell_type'] == 'raw': continue
        if c['cell_type'] == 'markdown':
            if c['source'].strip().startswith('<!-- WARNING'): continue
            c['source'] = _table_math(_link_local(c['source'], names))
            cells.append(c); continue
        opts, src = _quarto_opts(c['source'])
        if opts.get('include') == 'false': continue
        outs = c.get('outputs', [])
        for o in outs:
            if o.get('output_type') == 'stream': o['text'] = [_re_ansi.sub('', t) for t in o.get('text', [])]
        if opts.get('output') == 'asis':
            if opts.get('echo') != 'false' and src.strip():
                cells.append(dict(cell_type='code', metadata={}, source=src, outputs=[], execution_count=None))
            for o in outs:
                t = _md_text(o)
                if t and t.strip(): cells.append(dict(cell_type='markdown', metadata={}, source=_link_local(t, names)))
            continue
        if opts.get('output') == 'false': outs = []
        tags = list(c['metadata'].get('tags', []))
        if opts.get('echo') == 'false' or not src.strip():
            if not outs: continue
            tags.append('remove-input')
        md = {k:v for k,v in c['metadata'].items() if k not in ('tags', 'language', 'docs_skipped')}
        if tags: md['tags'] = tags
        cells.append(dict(cell_type='code', metadata=md, source=src, outputs=outs, execution_count=None))
    if extra_md: cells.append(dict(cell_type='markdown', metadata={}, source=extra_md))
    for i, c in enumerate(cells): c['id'] = f'c{i}'
    nb['cells'] = cells
    nb['metadata'].setdefault('kernelspec', dict(name='python3', display_name='Python 3', language='python'))
    nb['metadata']['language_info'] = dict(name='python', pygments_lexer='ipython3')
    return nb

# ---------------------------------------------------------------------------------------------------------
def sidebar():
    "`nbs/sidebar.yml` as [(section or None, [notebook file names])]"
    import yaml
    sb = yaml.safe_load((ROOT/'nbs/sidebar.yml').read_text())['website']['sidebar']['contents']
    res, top = [], []
    for e in sb:
        if isinstance(e, str): top.append(e)
        else: res.append((e['section'], [o if isinstance(o, str) else o['href'] for o in e['contents']]))
    return [(None, top)] + res

def toctrees(parts, names) -> str:
    res = []
    for caption, nbs in parts:
        entries = [names[Path(n).stem] for n in nbs if Path(n).stem in names and names[Path(n).stem] != 'index']
        if not entries: continue
        cap = f':caption: {caption}\n' if caption else ''
        res.append('```{toctree}\n:hidden:\n' + cap + '\n' + '\n'.join(entries) + '\n```\n')
    return '\n'.join(res)

def _table_html(csv:Path) -> str:
    import pandas as pd
    df = pd.read_csv(csv, keep_default_na=False)
    t = df.to_html(index=False, border=0, classes='docutils results-table', escape=True)
    t = '\n'.join(l for l in t.splitlines() if l.strip())
    n = len(df)
    if n > 25: return f'<details><summary>{n} rows (click to show)</summary>\n{t}\n</details>'
    return t

def results_page(src:Path, names:dict) -> str:
    "The quick study's results: the README's findings, its figures, every table of results/quick/tables"
    from nbdev.config import get_config
    git = get_config().git_url.rstrip('/') + '/blob/main/'
    readme = (ROOT/'README.md').read_text()
    m = re.search(r'^## What the quick study finds\n(.*?)(?=^## )', readme, flags=re.M|re.S)
    findings = m.group(1).strip() if m else '_README.md has no section "What the quick study finds"._'
    findings = re.sub(r'^#(#+) ', r'\1 ', findings, flags=re.M)
    findings = findings.replace('](nbs/images/', '](images/')
    findings = _link_local(findings, names)
    findings = re.sub(r'\]\((?!https?:|images/|#)([^)]+)\)', lambda m: f']({git}{m.group(1)})', findings)
    tables = sorted((ROOT/'results/quick/tables').glob('*.csv'))
    out = ['# Quick study results', '',
           '> What `make study` measured (profile `quick`, phantom data): the findings as the README states them, '
           'the figures, and every table under `results/quick/tables/`.', '',
           '## Findings', '', findings, '', '## Figures', '']
    for img in sorted((ROOT/'nbs/images').glob('*.png')):
        out += [f'![{img.stem}](images/{img.name})', '', f'`nbs/images/{img.name}`', '']
    out += ['## Tables', '', 'Each table is a CSV file under `results/quick/tables/`, written by `make study` '
            '(`runs/quick/tables/`) and copied by `make results`. Long tables are folded.', '']
    for t in tables:
        out += [f'### {t.stem}', '', f'[`results/quick/tables/{t.name}`]({git}results/quick/tables/{t.name})', '',
                _table_html(t), '']
    for f in ('config.yaml', 'manifest.json'):
        p = ROOT/'results/quick'/f
        if p.exists():
            lang = 'yaml' if f.endswith('yaml') else 'json'
            out += [f'## {f}', '', f'```{lang}', p.read_text().rstrip(), '```', '']
    return '\n'.join(out)

# ---------------------------------------------------------------------------------------------------------
def _hash(*paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        for f in sorted(p.rglob('*')) if p.is_dir() else [p]:
            if f.is_file() and '__pycache__' not in f.parts: h.update(str(f.relative_to(ROOT)).encode()); h.update(f.read_bytes())
    return h.hexdigest()[:16]

def execute_all(nbs, force=False, workers=2):
    "Execute and process `nbs` in `workers` processes; a notebook whose inputs did not change is read from the cache"
    ex = BUILD/'exec'; ex.mkdir(parents=True, exist_ok=True)
    common = _hash(ROOT/'lss_nbdev', ROOT/'settings.ini', ROOT/'results/quick', DOCS/'build.py')
    times, failed = {}, []
    def run(nb):
        key = _hash(nb) + common
        dst, keyf = ex/f'{nb.stem}.ipynb', ex/f'{nb.stem}.key'
        if not force and dst.exists() and keyf.exists() and keyf.read_text() == key: return nb, 0.0, 'cached'
        t = time.time()
        log = ex/f'{nb.stem}.log'
        with open(log, 'w') as lf:
            r = subprocess.run([sys.executable, __file__, '--execute-one', str(nb), str(dst)], cwd=ROOT, stdout=lf, stderr=subprocess.STDOUT)
        dt = time.time()-t
        if r.returncode: return nb, dt, f'FAILED (see {log.relative_to(ROOT)})'
        keyf.write_text(key)
        return nb, dt, 'executed'
    with ThreadPoolExecutor(workers) as pool:
        for nb, dt, status in pool.map(run, nbs):
            times[nb.name] = dt
            print(f'  {nb.name:32} {status:10} {dt:6.1f} s', flush=True)
            if status.startswith('FAILED'):
                failed.append(nb)
                print('    ' + '\n    '.join((ex/f'{nb.stem}.log').read_text().splitlines()[-25:]), flush=True)
    return times, failed

def post_process(out:Path) -> int:
    """Links to the site's own pages (nbdev's API links, links between notebooks) become relative links; a
    symbol that has no `show_doc` section of its own (a method, a property) links to its class, else the page"""
    from docutils.nodes import make_id
    site = re.escape(_site_url())
    pat = re.compile(r'href="' + site + r'([\w.-]*?\.html)(?:#([^"]*))?"')
    ids = {f.name: set(re.findall(r'\bid="([^"]+)"', f.read_text())) for f in out.glob('*.html')}
    def anchor(page, frag):
        if not frag: return ''
        for cand in (frag, frag.split('.')[0]):
            if make_id(cand) in ids.get(page, ()): return '#' + make_id(cand)
        return ''
    n = 0
    for f in out.rglob('*.html'):
        s = f.read_text()
        rel = os.path.relpath(out, f.parent)
        pre = '' if rel == '.' else rel + '/'
        s2, k = pat.subn(lambda m: f'href="{pre}{m.group(1)}{anchor(m.group(1), m.group(2))}"', s)
        if k: f.write_text(s2.replace('class="reference external" href="' + pre, 'class="reference internal" href="' + pre)); n += k
    return n

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--only', nargs='*', help='notebook names (without .ipynb) to build; index is always built')
    ap.add_argument('--force', action='store_true', help='execute every notebook again')
    ap.add_argument('--workers', type=int, default=int(os.environ.get('DOCS_WORKERS', 2)))
    ap.add_argument('--execute-one', nargs=2, metavar=('SRC', 'DST'), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.execute_one: return execute_one(*map(Path, a.execute_one))

    t0 = time.time()
    os.chdir(ROOT)
    parts = sidebar()
    listed = [ROOT/'nbs'/n for _, ns in parts for n in ns]
    others = [p for p in sorted((ROOT/'nbs').glob('*.ipynb')) if p not in listed]
    nbs = listed + others
    if others: print('not in nbs/sidebar.yml (built, listed under "Other"):', ', '.join(p.name for p in others))
    if a.only: nbs = [p for p in nbs if p.stem in a.only or p.stem == 'index']
    names = {p.stem: _html_name(p) for p in nbs}

    print(f'executing {len(nbs)} notebooks ({a.workers} workers; cwd nbs/; cells flagged with tst_flags skipped)', flush=True)
    times, failed = execute_all(nbs, force=a.force, workers=a.workers)
    if failed: sys.exit(f'docs: {len(failed)} notebook(s) failed: ' + ', '.join(p.name for p in failed))
    t_exec = time.time() - t0

    src = BUILD/'src'
    shutil.rmtree(src, ignore_errors=True); src.mkdir(parents=True)
    shutil.copytree(ROOT/'nbs/images', src/'images')
    if others: parts = parts + [('Other', [p.name for p in others])]
    if a.only: parts = [(c, [n for n in ns if Path(n).stem in names]) for c, ns in parts]
    parts = [(None, ['results'])] + parts if not a.only else parts
    names['results'] = 'results'
    for nb in nbs:
        d = json.loads((BUILD/'exec'/f'{nb.stem}.ipynb').read_text())
        extra = toctrees(parts, names) if nb.stem == 'index' else ''
        (src/f'{names[nb.stem]}.ipynb').write_text(json.dumps(to_myst(d, names, extra), indent=1))
    if not a.only: (src/'results.md').write_text(results_page(src, names))

    t1 = time.time()
    shutil.rmtree(OUT, ignore_errors=True)
    warn = BUILD/'sphinx-warnings.log'
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-c', str(DOCS), '-d', str(BUILD/'doctrees'),
           '-w', str(warn), str(src), str(OUT)]
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode: sys.exit(f'docs: sphinx-build failed ({r.returncode})')
    shutil.rmtree(OUT.parent/'jupyter_execute', ignore_errors=True)   # MyST-NB's copy of the outputs, beside _docs/
    nlinks = post_process(OUT)
    (OUT/'.nojekyll').touch()
    pages = sorted(p.name for p in OUT.glob('*.html') if p.stem not in ('genindex', 'search'))
    nwarn = len([l for l in warn.read_text().splitlines() if 'WARNING' in l]) if warn.exists() else 0
    info = dict(pages=len(pages), notebooks=len(nbs), seconds_total=round(time.time()-t0, 1),
                seconds_execute=round(t_exec, 1), seconds_sphinx=round(time.time()-t1, 1),
                sphinx_warnings=nwarn, links_made_relative=nlinks,
                notebook_seconds={k: round(v, 1) for k, v in times.items()})
    (BUILD/'build-info.json').write_text(json.dumps(info, indent=1))
    print(f'docs: {len(pages)} pages in {OUT.relative_to(ROOT)}/ ({info["seconds_total"]} s: executing '
          f'{info["seconds_execute"]} s, sphinx {info["seconds_sphinx"]} s; {nwarn} sphinx warnings in '
          f'{warn.relative_to(ROOT)}). Open {OUT.relative_to(ROOT)}/index.html; check it with `make docs-check`.')

if __name__ == '__main__': main()
