"""The profiles of params.yaml: `diffiml profile NAME` switches the stage sections between default, smoke and paper,
reversibly; the file says which one is active and holds its values; the smoke profile is the stage notebooks' own
debug configuration."""
import re, shutil, subprocess, sys
from pathlib import Path
import pytest, yaml
from conftest import REPO, load_yaml, stage_parameters
from test_pipeline_config import parameters_cell, STAGES

PARAMS = load_yaml('params.yaml')

def test_three_profiles_set_the_same_existing_keys():
    profs = PARAMS['profiles']
    assert list(profs) == ['default', 'smoke', 'paper']
    keys = {n: {(s, k) for s, kv in p.items() for k in kv} for n, p in profs.items()}
    assert keys['default'] == keys['smoke'] == keys['paper']
    for s, k in keys['default']: assert k in PARAMS[s], f'profiles set {s}.{k}, which the {s} section lacks'

def test_active_profile_is_default_and_unedited():
    "`dvc repro` on a fresh clone runs the default profile, with exactly its values."
    assert PARAMS['profile'] == 'default'
    for s, kv in PARAMS['profiles']['default'].items():
        for k, v in kv.items(): assert PARAMS[s][k] == v, f'{s}.{k} = {PARAMS[s][k]!r}, profile default says {v!r}'

def test_paper_profile_has_the_paper_settings():
    p = PARAMS['profiles']['paper']
    assert p['prepare_data']['size'] == 512 and p['train_diffiml']['backbone'] == p['train_baseline']['backbone'] == 'mit-b3'
    assert p['train_diffiml']['batch_size'] == 16 and p['train_diffiml']['lr'] == p['train_baseline']['lr'] == 1e-4

@pytest.mark.parametrize('stage', STAGES)
def test_smoke_profile_is_the_notebooks_debug_configuration(stage):
    "Running a stage notebook by hand (its defaults) and `dvc repro` on the smoke profile run the same thing."
    nb = parameters_cell(REPO/'nbs'/'pipeline'/f'{stage}.ipynb'); nb.pop('root')
    assert nb == stage_parameters(stage, 'smoke')

def test_switch_command_round_trip(tmp_path):
    f = tmp_path/'params.yaml'; shutil.copy(REPO/'params.yaml', f)
    exe = Path(sys.executable).parent/'diffiml'
    for name in ('paper', 'smoke', 'default'):
        r = subprocess.run([exe, 'profile', name, '--params', f], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        p = yaml.safe_load(f.read_text()); assert p['profile'] == name
        for s, kv in p['profiles'][name].items():
            for k, v in kv.items(): assert p[s][k] == v
    assert f.read_text() == (REPO/'params.yaml').read_text()          # back to default: byte for byte
    f.write_text(re.sub(r'^  n_train: \d+', '  n_train: 999', f.read_text(), count=1, flags=re.M))
    r = subprocess.run([exe, 'profile', 'smoke', '--params', f], capture_output=True, text=True)
    assert r.returncode == 2 and 'prepare_data.n_train = 999' in r.stderr and '--force' in r.stderr
    assert '  n_train: 999' in f.read_text()                              # a hand edit is never overwritten silently
