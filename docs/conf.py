# Sphinx configuration for `make docs` (docs/build.py runs `sphinx-build -c docs _docs_build/src _docs`).
# The site's sources are the notebooks of nbs/, executed and processed by nbdev; MyST-NB renders them
# as they are (no execution here). Everything a page loads is bundled: furo's CSS and JS, MathJax 3 with
# its fonts (sphinx-mathjax-offline), the search index.
from configparser import ConfigParser
from pathlib import Path

_cfg = ConfigParser(); _cfg.read(Path(__file__).resolve().parent.parent/'settings.ini')
_d = _cfg['DEFAULT']

project = _d['title']
author = _d['author']
copyright = _d['copyright']
release = version = _d['version']

extensions = ['myst_nb', 'sphinx-mathjax-offline']
root_doc = 'index'
exclude_patterns = ['**.ipynb_checkpoints']
templates_path = ['_templates']

# MyST: $...$ and $$...$$ math, \begin{align} blocks, ::: fences, <img> in markdown
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence', 'html_image']
myst_dmath_double_inline = True
nb_execution_mode = 'off'            # docs/build.py executed the notebooks with nbdev's processors
nb_output_stderr = 'remove'          # warnings and progress bars, as Quarto hides them with `warning: false`
nb_merge_streams = True
nb_render_markdown_format = 'myst'   # text/markdown outputs (tables, math)
suppress_warnings = ['myst.header', 'misc.highlighting_failure', 'mystnb.unknown_mime_type', 'myst.xref_missing']

html_theme = 'furo'
html_title = _d['title']
html_static_path = ['_static']
html_css_files = ['lss_docs.css']
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    'navigation_with_keys': True,
    'top_of_page_buttons': [],
}
