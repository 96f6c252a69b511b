"""Check the built site (`_docs/`) in headless Chromium with the network off: `make docs-check`.

Every page, read as HTML: each internal link (`href`, `src`, with its `#fragment`) resolves to a file and an
id in it; no page or stylesheet loads anything from the network (scripts, styles, fonts, images); the
sidebar has nbs/sidebar.yml's parts in its order. In Chromium (Debian's `chromium`, driven over the
DevTools protocol on a pipe, no extra packages), in a network namespace of its own where `unshare` works
(else requests that leave file:// are only recorded), the home page, notebook pages and the results page:
they load, every image loads, no console error or exception, no request leaves file://, every math
element is typeset by MathJax without an error; a screenshot of each goes to `_docs/_check/`.

    python docs/check.py [--pages index pid_tversky phantom results]
"""
from __future__ import annotations
import argparse, base64, json, os, re, shutil, subprocess, sys, tempfile, time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit, unquote

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
SITE = ROOT/'_docs'
CHECK = SITE/'_check'
DEFAULT_PAGES = ['index', 'pid_tversky', 'explain', 'results']

# ---------------------------------------------------------------------------------------------------------
# Static checks of every page
class _Links(HTMLParser):
    def __init__(self):
        super().__init__(); self.links, self.ids, self.captions, self._cap = [], set(), [], False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if 'id' in a: self.ids.add(a['id'])
        if tag == 'a' and 'name' in a: self.ids.add(a['name'])
        for k in ('href', 'src'):
            if a.get(k) is not None: self.links.append((tag, k, a[k], a.get('rel', '')))
        if tag == 'span' and 'caption-text' in (a.get('class') or ''): self._cap = True
    def handle_data(self, data):
        if self._cap: self.captions.append(data.strip()); self._cap = False

_parsed = {}
def parse(f:Path) -> _Links:
    if f not in _parsed:
        p = _Links(); p.feed(f.read_text(errors='replace')); _parsed[f] = p
    return _parsed[f]

def static_checks(site:Path):
    broken, network, pages = [], [], sorted(p for p in site.rglob('*.html') if '_check' not in p.parts)
    for f in pages:
        p = parse(f)
        for tag, attr, url, rel in p.links:
            u = urlsplit(url)
            if u.scheme in ('http', 'https', '') and url.startswith('//'): u = urlsplit('https:' + url)
            if u.scheme in ('http', 'https'):
                # a plain link away (<a href>) is not loaded; anything else the page would fetch is
                if tag != 'a' and not (tag == 'link' and rel in ('canonical',)):
                    network.append(f'{f.relative_to(site)}: <{tag} {attr}="{url}">')
                continue
            if u.scheme in ('mailto', 'data', 'javascript', 'about', 'blob'): continue
            if u.scheme: broken.append(f'{f.relative_to(site)}: {url} (scheme {u.scheme})'); continue
            target = (f.parent/unquote(u.path)).resolve() if u.path else f
            if target.is_dir(): target = target/'index.html'
            if not target.exists(): broken.append(f'{f.relative_to(site)}: {url} (no file)'); continue
            if u.fragment and target.suffix == '.html' and unquote(u.fragment) not in parse(target).ids:
                broken.append(f'{f.relative_to(site)}: {url} (no id "{u.fragment}")')
    for css in site.rglob('*.css'):
        for m in re.finditer(r'(?:url\(\s*[\'"]?|@import\s+[\'"])((?:https?:)?//[^\'")\s]+)', css.read_text(errors='replace')):
            network.append(f'{css.relative_to(site)}: {m.group(1)}')
    return pages, broken, network

def sidebar_parts():
    import yaml
    sb = yaml.safe_load((ROOT/'nbs/sidebar.yml').read_text())['website']['sidebar']['contents']
    return [e['section'] for e in sb if isinstance(e, dict)]

# ---------------------------------------------------------------------------------------------------------
# Chromium over the DevTools protocol (--remote-debugging-pipe: fd 3 in, fd 4 out, NUL-separated JSON)
def find_chromium():
    for n in ('chromium', 'chromium-browser', 'google-chrome', 'chrome'):
        if p := shutil.which(n): return p
    sys.exit('docs-check: no Chromium found; on Debian: apt-get update && apt-get install -y chromium')

class CDP:
    def __init__(self, exe, size=(1280, 900)):
        self.tmp = tempfile.mkdtemp(prefix='docs-check-')
        r_cmd, w_cmd = os.pipe(); r_out, w_out = os.pipe()
        args = [exe, '--headless=new', '--remote-debugging-pipe', f'--user-data-dir={self.tmp}', '--no-first-run',
                '--no-default-browser-check', '--disable-gpu', '--disable-extensions', '--disable-background-networking',
                '--disable-component-update', '--disable-sync', '--metrics-recording-only', '--mute-audio',
                '--allow-file-access-from-files', f'--window-size={size[0]},{size[1]}', '--hide-scrollbars']
        if os.geteuid() == 0: args.append('--no-sandbox')
        args.append('about:blank')
        def child():
            os.dup2(r_cmd, 3); os.dup2(w_out, 4)
        self.proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=child, stdout=subprocess.DEVNULL,
                                     stderr=open(Path(self.tmp)/'chromium.log', 'w'))
        os.close(r_cmd); os.close(w_out)
        self.w, self.r, self.buf, self.id, self.events = os.fdopen(w_cmd, 'wb'), os.fdopen(r_out, 'rb'), b'', 0, []
        self.session = None

    def _read(self, timeout):
        import select
        while b'\0' not in self.buf:
            rl, _, _ = select.select([self.r], [], [], timeout)
            if not rl: raise TimeoutError('no answer from Chromium')
            chunk = os.read(self.r.fileno(), 1 << 20)
            if not chunk: raise RuntimeError('Chromium closed the pipe: ' + (Path(self.tmp)/'chromium.log').read_text()[-2000:])
            self.buf += chunk
        msg, self.buf = self.buf.split(b'\0', 1)
        return json.loads(msg)

    def send(self, method, timeout=60, session=True, **params):
        self.id += 1
        m = dict(id=self.id, method=method, params=params)
        if session and self.session: m['sessionId'] = self.session
        self.w.write(json.dumps(m).encode() + b'\0'); self.w.flush()
        end = time.time() + timeout
        while True:
            msg = self._read(max(0.1, end - time.time()))
            if msg.get('id') == self.id:
                if 'error' in msg: raise RuntimeError(f'{method}: {msg["error"]}')
                return msg.get('result', {})
            self.events.append(msg)

    def wait_event(self, name, timeout=60):
        end = time.time() + timeout
        for i, e in enumerate(self.events):
            if e.get('method') == name: return self.events.pop(i)
        while time.time() < end:
            msg = self._read(max(0.1, end - time.time()))
            if msg.get('method') == name: return msg
            self.events.append(msg)
        raise TimeoutError(name)

    def eval(self, expr, timeout=60):
        r = self.send('Runtime.evaluate', timeout=timeout, expression=expr, awaitPromise=True, returnByValue=True)
        if 'exceptionDetails' in r: raise RuntimeError(f'evaluate: {r["exceptionDetails"]}')
        return r['result'].get('value')

    def close(self):
        try: self.send('Browser.close', session=False, timeout=5)
        except Exception: pass
        try: self.proc.wait(10)
        except Exception: self.proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

_PAGE_JS = r"""
(async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  let mj = 'none';
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; mj = MathJax.version; }
  const math = Array.from(document.querySelectorAll('span.math, div.math'));
  return {
    title: document.title,
    h1: (document.querySelector('h1') || {}).textContent || '',
    images: imgs.map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth})),
    math: math.length,
    typeset: math.filter(e => e.querySelector('mjx-container')).length,
    merrors: document.querySelectorAll('mjx-merror').length,
    mathjax: mj,
    sidebar: Array.from(document.querySelectorAll('.sidebar-tree .caption-text')).map(e => e.textContent),
    sidebar_links: document.querySelectorAll('.sidebar-tree a.reference').length,
    tables: document.querySelectorAll('article table').length,
    code: document.querySelectorAll('article div.highlight').length,
    height: document.documentElement.scrollHeight,
  };
})()
"""

def browser_checks(pages, out:Path):
    cdp = CDP(find_chromium())
    res = {}
    try:
        t = cdp.send('Target.createTarget', session=False, url='about:blank')
        cdp.session = cdp.send('Target.attachToTarget', session=False, targetId=t['targetId'], flatten=True)['sessionId']
        for m in ('Page.enable', 'Runtime.enable', 'Network.enable', 'Log.enable'): cdp.send(m)
        for name in pages:
            f = SITE/f'{name}.html'
            r = res[name] = dict(errors=[], requests_off_file=[], failed_loads=[])
            if not f.exists(): r['errors'].append(f'{f} does not exist'); continue
            cdp.events.clear()
            cdp.send('Page.navigate', url=f.resolve().as_uri())
            cdp.wait_event('Page.loadEventFired', timeout=60)
            info = cdp.eval(_PAGE_JS, timeout=90)
            time.sleep(0.5)
            cdp.send('Runtime.evaluate', expression='1')   # collect the events that came meanwhile
            for e in cdp.events:
                m, p = e.get('method'), e.get('params', {})
                if m == 'Runtime.consoleAPICalled' and p.get('type') in ('error', 'assert'):
                    r['errors'].append('console: ' + ' '.join(str(a.get('value', a.get('description', ''))) for a in p.get('args', [])))
                elif m == 'Runtime.exceptionThrown':
                    d = p.get('exceptionDetails', {})
                    r['errors'].append('exception: ' + str(d.get('exception', {}).get('description', d.get('text'))))
                elif m == 'Log.entryAdded' and p.get('entry', {}).get('level') == 'error':
                    r['errors'].append('log: ' + p['entry'].get('text', '') + ' ' + p['entry'].get('url', ''))
                elif m == 'Network.requestWillBeSent':
                    u = p.get('request', {}).get('url', '')
                    if not u.startswith(('file:', 'data:', 'blob:', 'about:')): r['requests_off_file'].append(u)
                elif m == 'Network.loadingFailed':
                    r['failed_loads'].append(p.get('errorText', '') + ' ' + str(p.get('requestId')))
            r.update(info)
            cdp.send('Emulation.setDeviceMetricsOverride', width=1280, height=min(max(900, info['height']), 2400),
                     deviceScaleFactor=1, mobile=False)
            shot = cdp.send('Page.captureScreenshot', format='png', timeout=60)
            cdp.send('Emulation.clearDeviceMetricsOverride')
            (out/f'{name}.png').write_bytes(base64.b64decode(shot['data']))
            r['screenshot'] = str((out/f'{name}.png').relative_to(ROOT))
    finally:
        cdp.close()
    return res

# ---------------------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--pages', nargs='*', default=DEFAULT_PAGES, help='page names (without .html) to open in Chromium')
    ap.add_argument('--no-netns', action='store_true', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not (SITE/'index.html').exists(): sys.exit('docs-check: no _docs/index.html; run `make docs` first')

    # the network off: run again in a network namespace of our own (root, util-linux unshare), loopback only
    if (not a.no_netns and not os.environ.get('DOCS_CHECK_NETNS') and shutil.which('unshare')
            and subprocess.run(['unshare', '--net', '--', 'true'], capture_output=True).returncode == 0):
        env = dict(os.environ, DOCS_CHECK_NETNS='1')
        sys.exit(subprocess.run(['unshare', '--net', '--', sys.executable, __file__, *sys.argv[1:]], env=env).returncode)
    netns = bool(os.environ.get('DOCS_CHECK_NETNS'))

    CHECK.mkdir(parents=True, exist_ok=True)
    for p in CHECK.glob('*.png'): p.unlink()
    t0 = time.time()
    pages, broken, network = static_checks(SITE)
    nlinks = sum(len(parse(p).links) for p in pages)
    caps = parse(SITE/'index.html').captions
    want = sidebar_parts()
    side_ok = [c for c in caps if c in want] == want
    browser = browser_checks(a.pages, CHECK)

    fails = []
    if broken: fails.append(f'{len(broken)} broken internal links')
    if network: fails.append(f'{len(network)} resources from the network')
    if not side_ok: fails.append(f'sidebar parts {caps} are not those of nbs/sidebar.yml {want}')
    for n, r in browser.items():
        bad_imgs = [i['src'] for i in r.get('images', []) if not i['ok']]
        if r['errors']: fails.append(f'{n}: {len(r["errors"])} console errors')
        if r['requests_off_file']: fails.append(f'{n}: requests off file://: {r["requests_off_file"][:3]}')
        if r['failed_loads']: fails.append(f'{n}: failed loads {r["failed_loads"][:3]}')
        if bad_imgs: fails.append(f'{n}: images not loaded {bad_imgs[:3]}')
        if r.get('typeset', 0) != r.get('math', 0) or r.get('merrors'): fails.append(f'{n}: math typeset {r.get("typeset")}/{r.get("math")}, {r.get("merrors")} MathJax errors')
        if not r.get('h1'): fails.append(f'{n}: no title')
    report = dict(ok=not fails, failures=fails, network_namespace=netns, pages=len(pages), links_checked=nlinks,
                  broken_links=broken[:50], network_resources=network[:50], sidebar=caps, browser=browser,
                  seconds=round(time.time()-t0, 1))
    (CHECK/'report.json').write_text(json.dumps(report, indent=1))
    print(f'docs-check: {len(pages)} pages, {nlinks} links and resources read: {len(broken)} broken, '
          f'{len(network)} from the network; sidebar parts in order: {side_ok}; '
          f'network {"off (own network namespace)" if netns else "on (requests off file:// recorded)"}')
    for n, r in browser.items():
        imgs = r.get('images', [])
        print(f'  {n}.html: "{r.get("h1", "").strip()[:50]}" {sum(i["ok"] for i in imgs)}/{len(imgs)} images, '
              f'math {r.get("typeset")}/{r.get("math")} typeset (MathJax {r.get("mathjax")}), {r.get("tables")} tables, '
              f'{len(r["errors"])} console errors, {len(r["requests_off_file"])} requests off file:// -> {r.get("screenshot")}')
    for l in broken[:20] + network[:20]: print('   ', l)
    for e in [e for r in browser.values() for e in r['errors']][:20]: print('   ', e)
    if fails:
        print('docs-check FAILED: ' + '; '.join(fails)); sys.exit(1)
    print(f'docs-check passed ({report["seconds"]} s); report in {(CHECK/"report.json").relative_to(ROOT)}')

if __name__ == '__main__': main()
