"""The paper protocols on stand-in datasets built from data/ (`diffiml standins`): every missing dataset named at
`prepare_data` before any training, per-source balanced training sets, and the paper-style table of `evaluate`, all
through the real stage notebooks on the smoke profile, as `dvc repro` runs them with `protocol: cat`."""
import json
import papermill as pm
import pytest
import yaml
from conftest import load_yaml, run_stage, smoke_params
from diffiml.cli import main
from diffiml.protocol import BalancedSources, protocol_spec, train_dataset

@pytest.fixture(scope='module')
def root(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp('protocol')
    (root/'data').symlink_to(data_dir)
    smoke_params(root/'params.yaml')
    assert main(['standins', '--out', str(root/'standins'), '--paths', str(root/'local/datasets.yaml'),
                 '--data', str(data_dir), '--params', str(root/'params.yaml'), '--images', '6', '--size', '64']) == 0
    return root

def test_params_define_the_papers_protocols():
    p = load_yaml('params.yaml')
    assert p['protocol'] == 'synthetic'
    mvss, cat = protocol_spec(p, 'mvss'), protocol_spec(p, 'cat')
    assert mvss['train'] == ['casia2'] and mvss['test'] == ['casia1', 'columbia', 'coverage', 'nist16', 'imd2020']
    assert cat['train'] == ['casia2', 'fantastic_reality', 'imd2020', 'tampcoco', 'compraise']
    assert cat['per_source'] == 1800
    assert cat['test'] == ['casia1', 'columbia', 'coverage', 'nist16']
    assert cat['generative'] == ['cocoglide', 'autosplice']

def test_standins_refuse_to_replace_a_paths_file(root, capsys):
    before = (root/'local/datasets.yaml').read_text()
    assert main(['standins', '--out', str(root/'other'), '--paths', str(root/'local/datasets.yaml'),
                 '--params', str(root/'params.yaml')]) == 2
    assert 'exists' in capsys.readouterr().err and (root/'local/datasets.yaml').read_text() == before

def test_missing_datasets_are_all_named_before_training(root, tmp_path):
    paths = yaml.safe_load((root/'local/datasets.yaml').read_text())
    del paths['tampcoco'], paths['columbia']; paths['compraise'] = str(tmp_path/'nowhere.json')
    bad = root/'local/broken.yaml'; bad.write_text(yaml.safe_dump(paths))
    with pytest.raises(pm.PapermillExecutionError) as e:
        run_stage(root, 'prepare_data', protocol='cat', paths_file='local/broken.yaml')
    msg = str(e.value)
    assert "protocol 'cat' cannot start: 3 of its datasets" in msg
    assert 'tampcoco: no entry' in msg and 'columbia: no entry' in msg
    assert 'nowhere.json' in msg and not (root/'artifacts/prepare_data/protocol.json').exists()

def test_protocol_cat_runs_through_the_pipeline(root):
    # the protocol's wiring, not learning: the models train 10 steps (the smoke profile's are 50)
    for s, changes in (('prepare_data', dict(protocol='cat')), ('train_vae', dict(steps=10)),
                       ('train_diffiml', dict(steps=10)), ('train_baseline', dict(steps=10)), ('evaluate', {})):
        run_stage(root, s, **changes)
    rec = json.loads((root/'artifacts/prepare_data/protocol.json').read_text())
    spec = protocol_spec(load_yaml('params.yaml'), 'cat')
    assert rec['protocol'] == 'cat' and list(rec['train']) == spec['train']
    assert rec['train']['casia2']['n'] >= 1 and rec['skipped'] == []
    ds = train_dataset(root/'artifacts/prepare_data', dict(size=64), seed=0)
    assert isinstance(ds, BalancedSources) and len(ds) == 5 * 1800          # 1,800 per source, whatever its size
    res = json.loads((root/'artifacts/reports/evaluate/metrics.json').read_text())
    assert set(res['DiffIML']) == {'casia1', 'columbia', 'coverage', 'nist16', 'cocoglide', 'autosplice'}
    assert res['settings']['protocol'] == 'cat'
    head = (root/'artifacts/reports/evaluate/results.md').read_text().splitlines()[2]
    cols = [c.strip() for c in head.strip('|').split('|')]
    assert cols == ['pixel F1', 'casia1', 'columbia', 'coverage', 'nist16', 'average', 'cocoglide', 'autosplice']
    assert res['All-manipulated']['nist16']['pixel_f1'] > 0   # NIST16's inverted masks read the right way round
