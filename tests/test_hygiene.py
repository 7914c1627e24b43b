"""Repository hygiene that CI enforces: diffiml/ is exactly what the notebooks export, notebooks are committed clean
(with papermill's `parameters` tags kept), and CI runs the README's test command."""
import shutil, subprocess, sys
from pathlib import Path
from conftest import REPO

BIN = Path(sys.executable).parent

def _copy_project(dst):
    for name in ('settings.ini', 'nbs', 'diffiml'):
        src = REPO/name
        if src.is_dir():
            shutil.copytree(src, dst/name, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
        else:
            shutil.copy(src, dst/name)

def _changed(a, b, pattern):
    fa = {p.relative_to(a) for p in a.rglob(pattern)}; fb = {p.relative_to(b) for p in b.rglob(pattern)}
    return sorted(str(f) for f in fa ^ fb) + sorted(str(f) for f in fa & fb if (a/f).read_bytes() != (b/f).read_bytes())

def test_diffiml_is_exported_from_the_notebooks(tmp_path):
    _copy_project(tmp_path)
    subprocess.run([BIN/'nbdev_export'], cwd=tmp_path, check=True)
    changed = _changed(REPO/'diffiml', tmp_path/'diffiml', '*.py')
    assert not changed, f'nbdev_export changes {changed}: edit the notebooks, run nbdev_export, commit both'

def test_notebooks_are_committed_clean(tmp_path):
    _copy_project(tmp_path)
    subprocess.run([BIN/'nbdev_clean'], cwd=tmp_path, check=True)
    changed = _changed(REPO/'nbs', tmp_path/'nbs', '*.ipynb')
    assert not changed, f'nbdev_clean changes {changed}: run nbdev_clean and commit'

def test_clean_keeps_papermill_parameters_tags(tmp_path):
    _copy_project(tmp_path)
    subprocess.run([BIN/'nbdev_clean'], cwd=tmp_path, check=True)
    for nb in (tmp_path/'nbs'/'pipeline').glob('*.ipynb'): assert '"parameters"' in nb.read_text(), nb.name

def test_ci_runs_the_readme_test_command():
    ci = [l.strip() for l in (REPO/'.ci'/'run').read_text().splitlines()]
    cmd = next(l for l in ci if 'pytest' in l and not l.startswith('#'))
    assert f'\n{cmd}\n' in (REPO/'README.md').read_text(), f'README.md does not give the command CI runs: {cmd}'

def test_package_imports_from_outside_the_repo(tmp_path):
    "The editable install works (tests run from the repo root would hide a broken one)."
    code = 'import diffiml, diffiml.model, diffiml.baseline; print(diffiml.__file__)'
    out = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert Path(out.strip()).parent == REPO/'diffiml'
