"Shared paths and helpers of the test suite."
import json, os
from pathlib import Path
import pytest, yaml

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')

def load_yaml(name): return yaml.safe_load((REPO/name).read_text())
def notebook_code(path): return [''.join(c['source']) for c in json.loads(Path(path).read_text())['cells'] if c['cell_type'] == 'code']

@pytest.fixture(scope='session')
def data_dir():
    d = REPO/'data'
    if not (d/'bsds500').is_dir(): pytest.fail(f'{d} is missing: run `dvc pull data.dvc` first (see README.md)')
    return d
