"""DVC's run cache restores a stage whose values went back to ones it has run with before (a profile switched back, a
reverted experiment), instead of running it again: every stage output is cached (`artifacts/`), and only the
`report` stage writes git-tracked files. Shown on the real `prepare_data` stage at smoke size in a scratch repository,
for a hand edit reverted and for `dvc exp run -S` (which rewrites params.yaml as YAML 1.2) run back at the committed
value."""
import os, re, shutil, subprocess, sys
from pathlib import Path
from conftest import REPO, load_yaml
from diffiml.config import read_params, set_profile

def test_run_cache_restores_a_stage_whose_params_went_back(tmp_path, data_dir):
    env = dict(os.environ, DVC_NO_ANALYTICS='1', PATH=f'{Path(sys.executable).parent}:{os.environ["PATH"]}')
    run = lambda *a: subprocess.run(a, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    for f in ('dvc.yaml', 'params.yaml', 'data.dvc'):
        shutil.copy(REPO/f, tmp_path/f)
    stage = load_yaml('dvc.yaml')['stages']['prepare_data']
    for d in stage['deps']:
        if d.startswith(('nbs/', 'diffiml/')):
            (tmp_path/d).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO/d, tmp_path/d)
    (tmp_path/'local').mkdir()
    (tmp_path/'local/README.md').write_text('paths of your datasets\n')
    shutil.copytree(data_dir/'bsds500', tmp_path/'data/bsds500', copy_function=os.link)   # hard links: no copy
    set_profile(tmp_path/'params.yaml', 'smoke')
    for a in (('git', 'init', '-q'), ('dvc', 'init', '-q')):
        assert run(*a).returncode == 0
    params = tmp_path/'params.yaml'
    def repro(*cmd):
        r = run(*(cmd or ('dvc', 'repro')), 'prepare_data')
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        return r.stdout
    def train_json():
        return (tmp_path/'artifacts/prepare_data/train.json').read_bytes()
    assert "Running stage 'prepare_data'" in repro()
    first = train_json()
    original = params.read_text()
    params.write_text(re.sub(r'(prepare_data:.*\n(?:  .*\n)*?    smoke: \{n_train:) 20', r'\1 8', original, count=1))
    assert params.read_text() != original
    assert "Running stage 'prepare_data'" in repro()                  # a new value: the stage runs
    assert train_json() != first
    params.write_text(original)                                       # back to the value it ran with first
    out = repro()
    assert "Stage 'prepare_data' is cached - skipping run, checking out outputs" in out, out
    assert "Running stage 'prepare_data'" not in out
    assert train_json() == first                                      # its outputs, restored from the cache
    # an experiment, then a run at the committed value: DVC's YAML 1.2 rewrite must mean the same to the stage
    for a in (('git', 'add', '-A'), ('git', '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'smoke')):
        assert run(*a).returncode == 0
    committed = read_params(params)
    assert "Running stage 'prepare_data'" in repro('dvc', 'exp', 'run', '-S', 'prepare_data.seed=7')
    assert read_params(params) == {**committed, 'prepare_data': {**committed['prepare_data'], 'seed': 7}}
    assert train_json() != first
    out = repro('dvc', 'exp', 'run', '-S', f'prepare_data.seed={committed["prepare_data"]["seed"]}')
    assert "Stage 'prepare_data' is cached - skipping run, checking out outputs" in out, out
    assert read_params(params) == committed
    assert train_json() == first
