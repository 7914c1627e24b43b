"""The real stage notebooks, run end to end with papermill at their tiny debug defaults (the nanoGPT-style debug
configuration) in a scratch root: data -> mask autoencoder -> DiffIML, baseline -> evaluation -> report."""
import json
import papermill as pm
import pytest
from conftest import REPO, load_yaml

STAGES = list(load_yaml('dvc.yaml')['stages'])

@pytest.fixture(scope='module')
def run(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp('root')
    (root/'data').symlink_to(data_dir)
    overrides = dict(prepare_data=dict(n_train=20, n_val=6, n_test=6), evaluate=dict(real_sets='casia1,nist16'))
    for s in STAGES:
        (root/'reports'/s).mkdir(parents=True, exist_ok=True)
        pm.execute_notebook(REPO/'nbs'/'pipeline'/f'{s}.ipynb', root/'reports'/s/f'{s}.ipynb', kernel_name='python3',
                            parameters=dict(root=str(root), **overrides.get(s, {})), cwd=root, progress_bar=False)
    return root

def test_parameters_are_injected(run):
    counts = json.loads((run/'reports/prepare_data/metrics.json').read_text())
    assert {k: sum(v.values()) for k, v in counts.items()} == dict(train=20, val=6, test=6)
    assert len(json.loads((run/'artifacts/prepare_data/train.json').read_text())) == 20

def test_checkpoints_are_written(run):
    for s in ('train_vae', 'train_diffiml', 'train_baseline'):
        assert (run/'artifacts'/s/'diffiml.json').is_file() or (run/'artifacts'/s/'config.json').is_file(), s
    assert (run/'artifacts/train_diffiml/score/diffusion_pytorch_model.safetensors').is_file()

def test_evaluation_table_and_figures(run):
    res = json.loads((run/'reports/evaluate/metrics.json').read_text())
    assert set(res) == {'DiffIML', 'Baseline', 'All-manipulated', 'settings'}
    for m in ('DiffIML', 'Baseline', 'All-manipulated'):
        assert set(res[m]) == {'synthetic', 'casia1', 'nist16'}
        for r in res[m].values(): assert r['n_manipulated'] > 0 and 0 <= r['pixel_f1'] <= 1
    assert res['All-manipulated']['casia1']['pixel_f1'] > 0      # trivial predictor: F1 = 2p/(1+p) > 0
    table = (run/'reports/evaluate/results.md').read_text()
    assert all(name in table for name in ('DiffIML', 'Baseline', 'All-manipulated', 'synthetic', 'nist16'))
    for f in ('prepare_data/gallery.png', 'train_vae/reconstructions.png', 'evaluate/qualitative.png', 'report/loss_curves.png'):
        assert (run/'reports'/f).read_bytes()[:4] == b'\x89PNG', f

def test_report_index(run):
    text = (run/'reports/README.md').read_text()
    assert 'do not edit by hand' in text and (run/'reports/evaluate/results.md').read_text().strip() in text
    for s in ('train_vae', 'train_diffiml', 'train_baseline'):
        assert (run/'reports'/s/'live'/'plots'/'metrics'/'loss.tsv').is_file()
