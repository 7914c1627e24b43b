"""The profiles of params.yaml: default, smoke and paper; each section holds the default values and, under its
`profiles` key, only what another profile changes; `diffiml profile NAME` switches by editing the one `profile:` line,
reversibly; the smoke profile is the stage notebooks' own debug configuration."""
import shutil, subprocess, sys
from pathlib import Path
import pytest, yaml
from conftest import REPO, load_yaml, stage_parameters
from test_pipeline_config import parameters_cell
from diffiml.config import STAGES, read_params, section

PARAMS = load_yaml('params.yaml')

def test_three_profiles_hold_only_what_differs():
    assert list(PARAMS['profiles']) == ['default', 'smoke', 'paper']
    for s in (*STAGES, 'resolution'):
        for name, changes in (PARAMS[s].get('profiles') or {}).items():
            assert name in ('smoke', 'paper'), f'{s}.profiles.{name}'
            for k, v in changes.items():
                assert PARAMS[s][k] != v, f'{s}.profiles.{name}.{k} repeats the default value {v!r}'

def test_active_profile_is_default():
    "`dvc repro` on a fresh clone runs the default profile."
    assert PARAMS['profile'] == 'default'

def test_paper_profile_has_the_paper_settings():
    p = read_params(REPO/'params.yaml')
    assert section(p, 'resolution', 'paper') == dict(section(p, 'resolution'), mode='resize', size=512)
    for s in ('train_diffiml', 'train_baseline'):
        assert section(p, s, 'paper')['backbone'] == 'mit-b3' and section(p, s, 'paper')['lr'] == 1e-4
    assert section(p, 'train_diffiml', 'paper')['batch_size'] == 16

@pytest.mark.parametrize('stage', STAGES)
def test_smoke_profile_is_the_notebooks_debug_configuration(stage):
    "Running a stage notebook by hand (its defaults) and `dvc repro` on the smoke profile run the same thing."
    nb = parameters_cell(REPO/'nbs'/'pipeline'/f'{stage}.ipynb'); nb.pop('root')
    assert nb == stage_parameters(stage, 'smoke')

def test_switch_command_round_trip(tmp_path):
    f = tmp_path/'params.yaml'; shutil.copy(REPO/'params.yaml', f)
    exe = Path(sys.executable).parent/'diffiml'
    for name in ('paper', 'default'):   # (each call is a fresh process that imports the package)
        r = subprocess.run([exe, 'profile', name, '--params', f], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert yaml.safe_load(f.read_text())['profile'] == name
    assert f.read_text() == (REPO/'params.yaml').read_text()          # back to default: byte for byte
    r = subprocess.run([exe, 'profile', 'tiny', '--params', f], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown profile 'tiny'" in r.stderr and 'Traceback' not in r.stderr
    assert f.read_text() == (REPO/'params.yaml').read_text()          # a refused switch changes nothing
