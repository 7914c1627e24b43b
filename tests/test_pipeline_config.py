"""The DVC pipeline's wiring: one name per stage (notebook, params section, output folders), one command per stage
(`diffiml stage NAME`, no values on command lines), the params DVC watches are exactly the keys a stage's settings
come from, and each stage depends on exactly the diffiml modules its notebook (and the runner) import."""
import ast, json, os, re, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import REPO, load_yaml, notebook_code
from diffiml.config import STAGES, PUBLISHER, read_params, stage_settings, dvc_params, set_profile

DVC = load_yaml('dvc.yaml')
P = read_params(REPO/'params.yaml')

def parameters_cell(nb):
    cells = [c for c in json.loads(Path(nb).read_text())['cells'] if 'parameters' in c['metadata'].get('tags', [])]
    assert len(cells) == 1, f'{nb}: needs exactly one cell tagged "parameters" (papermill), found {len(cells)}'
    tree = ast.parse(''.join(cells[0]['source']))
    return {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}

def test_one_command_per_stage_and_no_values_on_command_lines():
    assert list(DVC['stages']) == list(STAGES)
    for s in STAGES:
        assert (REPO/'nbs'/'pipeline'/f'{s}.ipynb').is_file(), s
        assert s in P, f'params.yaml has no section {s}'
        assert DVC['stages'][s]['cmd'] == f'diffiml stage {s}'
    assert ' -p ' not in (REPO/'dvc.yaml').read_text()

@pytest.mark.parametrize('stage', STAGES)
def test_dvc_watches_exactly_the_keys_of_the_stage_settings(stage):
    assert DVC['stages'][stage]['params'] == dvc_params(P, stage)

@pytest.mark.parametrize('stage', STAGES)
def test_every_setting_reaches_the_notebook(stage):
    "The notebook's parameters cell names exactly the stage's settings (papermill would silently keep a default)."
    nb = parameters_cell(REPO/'nbs'/'pipeline'/f'{stage}.ipynb')
    assert nb.pop('root') == '../..'
    for profile in P['profiles']:
        assert set(nb) == set(stage_settings(P, stage, profile)), profile

def test_flags_are_numbers_not_booleans():
    "0/1 flags stay numbers in every profile (a YAML `true` reads back as a different type in papermill's code)."
    for profile in P['profiles']:
        for s in STAGES:
            for k, v in stage_settings(P, s, profile).items():
                assert not isinstance(v, bool), f'params.yaml {s}.{k} ({profile}): use 0/1, not {v}'

def diffiml_imports(code):
    return set(re.findall(r'(?:from|import) diffiml\.(\w+)', code))

def module_imports(src, inside_functions: bool = False):
    "diffiml modules a module imports when it is loaded (top level), or anywhere in it too with `inside_functions`."
    tree = ast.parse(src)
    nodes = ast.walk(tree) if inside_functions else tree.body
    return {n.module.split('.')[-1] for n in nodes if isinstance(n, ast.ImportFrom) and n.module
            and (n.level == 1 or n.module.startswith('diffiml.'))}

def module_closure(mods):
    "`mods` and every diffiml module they import at load time, directly or not."
    seen, todo = set(), list(mods)
    while todo:
        m = todo.pop()
        if m in seen: continue
        seen.add(m)
        todo += module_imports((REPO/'diffiml'/f'{m}.py').read_text())
    return seen

@pytest.mark.parametrize('stage', STAGES)
def test_deps_list_the_modules_the_stage_really_uses(stage):
    "The notebook's imports and the runner's (`diffiml.config`, whose `build_model` imports the models when called)."
    code = '\n'.join(notebook_code(REPO/'nbs'/'pipeline'/f'{stage}.ipynb'))
    runner = module_imports((REPO/'diffiml'/'config.py').read_text(), inside_functions=True) | {'config'}
    used = module_closure(diffiml_imports(code) | runner)
    deps = DVC['stages'][stage]['deps']
    listed = {Path(d).stem for d in deps if d.startswith('diffiml/')}
    assert listed == used, f'{stage}: deps list {sorted(listed)}, the notebook uses {sorted(used)}'
    assert f'nbs/pipeline/{stage}.ipynb' in deps

def test_no_import_cycle():
    graph = {p.stem: module_imports(p.read_text()) for p in (REPO/'diffiml').glob('*.py') if not p.stem.startswith('_')}
    def visit(m, path):
        assert m not in path, f'import cycle: {" -> ".join(path + [m])}'
        for n in graph.get(m, ()): visit(n, path + [m])
    for m in graph: visit(m, [])

def test_outputs_are_cached_and_published_by_report():
    "Every stage but `report` has only cached outputs (so DVC's run cache can restore it); `report` publishes them."
    for s, st in DVC['stages'].items():
        outs = [o if isinstance(o, str) else next(iter(o)) for k in ('outs', 'metrics', 'plots') for o in st.get(k, [])]
        if s == PUBLISHER:
            assert all(o.startswith('reports/') for o in outs)
            assert all(next(iter(o.values()))['cache'] is False for k in ('outs', 'metrics', 'plots') for o in st[k])
        else:
            assert set(outs) <= {f'artifacts/{s}', f'artifacts/reports/{s}'} and f'artifacts/reports/{s}' in outs, s
            assert all(isinstance(o, str) for o in st['outs']), f'{s}: no cache: false outputs'
            assert f'artifacts/reports/{s}' in DVC['stages'][PUBLISHER]['deps']

@pytest.fixture
def dvc_repo(tmp_path):
    "A locked scratch git + DVC repository: the pipeline's dvc.yaml and params.yaml, placeholder inputs and outputs."
    env = dict(os.environ, DVC_NO_ANALYTICS='1', PATH=f'{Path(sys.executable).parent}:' + os.environ['PATH'])
    run = lambda *a: subprocess.run(a, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    for f in ('dvc.yaml', 'params.yaml'): shutil.copy(REPO/f, tmp_path/f)
    for st in DVC['stages'].values():
        for d in st['deps']:
            p = tmp_path/d
            if p.suffix: p.parent.mkdir(parents=True, exist_ok=True); p.write_text(d)
            else: p.mkdir(parents=True, exist_ok=True); (p/'x').write_text(d)
        for k in ('outs', 'metrics', 'plots'):
            for o in st.get(k, []):
                p = tmp_path/(o if isinstance(o, str) else next(iter(o)))
                if p.suffix: p.parent.mkdir(parents=True, exist_ok=True); p.write_text('out')
                else: p.mkdir(parents=True, exist_ok=True); (p/'x').write_text('out')
    for a in (('git', 'init', '-q'), ('dvc', 'init', '-q'), ('dvc', 'commit', '-f', '-q')):
        r = run(*a); assert r.returncode == 0, r.stderr
    return tmp_path, run

def changed_stages(run):
    "Stages `dvc status` lists as changed."
    r = run('dvc', 'status', '--json')
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout))

def test_dvc_reruns_exactly_the_stages_a_value_reaches(dvc_repo):
    "One value edited in one place: DVC flags exactly the stages whose settings it is part of (and their dependents)."
    root, run = dvc_repo
    assert changed_stages(run) == set()
    f = root/'params.yaml'
    f.write_text(re.sub(r'^(train_diffiml:\n(?:  .*\n)*?  steps:) \d+', r'\1 77', f.read_text(), count=1, flags=re.M))
    assert read_params(f)['train_diffiml']['steps'] == 77
    # ablations trains its variants with these settings; efficiency builds the paper profile's models from them
    assert changed_stages(run) == {'train_diffiml', 'ablations', 'efficiency'}

def test_profile_switch_is_one_edit_that_dvc_sees(dvc_repo):
    root, run = dvc_repo
    before = (root/'params.yaml').read_text()
    set_profile(root/'params.yaml', 'smoke')
    diff = [l for l in (root/'params.yaml').read_text().splitlines() if l not in before.splitlines()]
    assert len(diff) == 1 and diff[0].startswith('profile: smoke')
    differ = {s for s in STAGES if stage_settings(P, s, 'smoke') != stage_settings(P, s, 'default')}
    assert changed_stages(run) == differ
    set_profile(root/'params.yaml', 'default')
    assert (root/'params.yaml').read_text() == before and changed_stages(run) == set()

def test_a_path_with_spaces_and_quotes_reaches_the_notebook_intact(tmp_path):
    "No value goes through a shell: a params.yaml path with a space and quotes arrives in the notebook as written."
    from papermill.translators import PythonTranslator
    from diffiml.config import load_yaml as read_yaml
    odd = "my datasets/it's a \"list\" ; rm -rf x.yaml"
    quoted = odd.replace("'", "''")   # YAML single quotes: a quote is doubled
    text = (REPO/'params.yaml').read_text().replace('paths_file: local/datasets.yaml', f"paths_file: '{quoted}'")
    (tmp_path/'params.yaml').write_text(text)
    s = stage_settings(read_params(tmp_path/'params.yaml'), 'prepare_data')
    assert s['paths_file'] == odd and read_yaml(text)['prepare_data']['paths_file'] == odd
    cell = PythonTranslator.codify(dict(paths_file=s['paths_file']))
    scope = {}
    exec(cell, scope)
    assert scope['paths_file'] == odd
