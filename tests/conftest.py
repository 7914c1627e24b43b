"Shared paths and helpers of the test suite."
import json, os, re
from pathlib import Path
import pytest, yaml

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')

def load_yaml(name): return yaml.safe_load((REPO/name).read_text())
def notebook_code(path): return [''.join(c['source']) for c in json.loads(Path(path).read_text())['cells'] if c['cell_type'] == 'code']

def stage_parameters(stage: str, profile: str) -> dict:
    "The notebook parameters DVC passes to `stage` (its `-p name ${section.key}` values) when `profile` is active."
    params = load_yaml('params.yaml')
    for sec, kv in params['profiles'][profile].items(): params[sec] = {**params[sec], **kv}
    params['profile'] = profile
    cmd = load_yaml('dvc.yaml')['stages'][stage]['cmd']
    return {name: params[sec][key] if key else params[sec] for name, sec, key in re.findall(r'-p (\w+) \$\{(\w+)(?:\.(\w+))?\}', cmd)}

@pytest.fixture(scope='session')
def data_dir():
    d = REPO/'data'
    if not (d/'bsds500').is_dir(): pytest.fail(f'{d} is missing: run `dvc pull data.dvc` first (see README.md)')
    return d

def smoke_params(path):
    "Write the repository's params.yaml to `path` switched to the smoke profile (what `diffiml profile smoke` leaves)."
    from diffiml.cli import set_profile
    path.write_text((REPO/'params.yaml').read_text()); set_profile(path, 'smoke')
    return path

def run_stage(root, stage: str, **changes):
    "Run pipeline stage `stage`'s notebook in scratch root `root` as `dvc repro` would on the smoke profile (with `changes` to its parameters)."
    import papermill as pm
    (root/'reports'/stage).mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(REPO/'nbs'/'pipeline'/f'{stage}.ipynb', root/'reports'/stage/f'{stage}.ipynb', kernel_name='python3',
                        parameters=dict(stage_parameters(stage, 'smoke'), root=str(root), **changes), cwd=root, progress_bar=False)
