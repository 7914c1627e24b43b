"Shared paths and helpers of the test suite."
import json, os, re
from pathlib import Path
import pytest, yaml

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')

# pytest-xdist runs the tests in several workers (pyproject.toml). Each gets its share of the cores, and so do the
# kernels and subprocesses it starts: torch's OpenMP threads spin while they wait, so two processes that each use every
# core slow each other several-fold on a small machine.
_workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
if _workers > 1:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    os.environ.setdefault('OMP_NUM_THREADS', str(max(1, _cores // _workers)))

def load_yaml(name): return yaml.safe_load((REPO/name).read_text())
def notebook_code(path):
    return [''.join(c['source']) for c in json.loads(Path(path).read_text())['cells'] if c['cell_type'] == 'code']

def stage_parameters(stage: str, profile: str) -> dict:
    "The notebook parameters `diffiml stage` passes to `stage` when `profile` is active."
    from diffiml.config import read_params, stage_settings
    return stage_settings(read_params(REPO/'params.yaml'), stage, profile)

@pytest.fixture(scope='session')
def data_dir():
    d = REPO/'data'
    if not (d/'bsds500').is_dir(): pytest.fail(f'{d} is missing: run `dvc pull data.dvc` first (see README.md)')
    return d

def smoke_params(path):
    "Write the repository's params.yaml to `path` switched to the smoke profile (what `diffiml profile smoke` leaves)."
    from diffiml.config import set_profile
    path.write_text((REPO/'params.yaml').read_text())
    set_profile(path, 'smoke')
    return path

def run_stage(root, stage: str, **changes):
    "Run pipeline stage `stage` in scratch root `root` as `diffiml stage` does (with `changes` to its parameters)."
    from diffiml.config import run_stage as run
    if not (root/'nbs').exists():
        (root/'nbs').symlink_to(REPO/'nbs')
    return run(stage, root, **changes)
