"""The DVC pipeline's wiring: one name per stage (notebook, params section, output folders), every parameter really
reaches its notebook, and each stage depends on exactly the diffiml modules its notebook imports."""
import ast, json, re
from pathlib import Path
import pytest
from conftest import REPO, load_yaml, notebook_code

DVC, PARAMS = load_yaml('dvc.yaml'), load_yaml('params.yaml')
STAGES = list(DVC['stages'])

def parameters_cell(nb):
    cells = [c for c in json.loads(Path(nb).read_text())['cells'] if 'parameters' in c['metadata'].get('tags', [])]
    assert len(cells) == 1, f'{nb}: needs exactly one cell tagged "parameters" (papermill), found {len(cells)}'
    tree = ast.parse(''.join(cells[0]['source']))
    return {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}

def test_every_stage_has_its_notebook_and_params_section():
    assert STAGES == ['prepare_data', 'train_vae', 'train_diffiml', 'train_baseline', 'evaluate', 'robustness', 'sampler', 'ablations', 'error_accumulation', 'efficiency', 'report']
    for s in STAGES:
        assert (REPO/'nbs'/'pipeline'/f'{s}.ipynb').is_file(), s
        assert s in PARAMS, f'params.yaml has no section {s}'
        assert f'reports/{s}/{s}.ipynb' in DVC['stages'][s]['cmd'], f'{s}: executed notebook must go to reports/{s}/'

@pytest.mark.parametrize('stage', STAGES)
def test_every_param_reaches_the_notebook(stage):
    cmd = DVC['stages'][stage]['cmd']
    passed = dict(re.findall(r'-p (\w+) (\S+)', cmd))
    nb_params = parameters_cell(REPO/'nbs'/'pipeline'/f'{stage}.ipynb')
    assert passed.pop('root') == '.'
    # every key of the stage's own section is passed under its own name...
    for k in PARAMS[stage]: assert passed.get(k) == f'${{{stage}.{k}}}', f'{stage}: params.yaml key {k} is not passed as -p {k}'
    # ...every passed value names an existing params.yaml key listed in the stage's params...
    listed = DVC['stages'][stage]['params']
    for k, v in passed.items():
        sec, key = re.fullmatch(r'\$\{(\w+)(?:\.(\w+))?\}', v).groups()
        if key is None:      # a top-level value (the active profile's name)
            assert sec in PARAMS and sec in listed, f'{stage}: {v} is used but not listed under params'; continue
        assert key in PARAMS[sec], f'{stage}: {v} is not in params.yaml'
        assert sec == stage or f'{sec}.{key}' in listed, f'{stage}: {v} is used but not listed under params'
    # ...and the notebook's parameters cell names exactly what is passed (else papermill silently keeps a default)
    assert set(nb_params) == set(passed) | {'root'}, f'{stage}: notebook parameters {sorted(nb_params)} vs passed {sorted(passed)}'

def test_flags_are_numbers_not_booleans():
    "papermill receives DVC's `true` as the string 'true' (truthy even when false): flags must be 0/1."
    for sec in STAGES:
        for k, v in PARAMS[sec].items(): assert not isinstance(v, bool), f'params.yaml {sec}.{k}: use 0/1, not {v}'
    for name, prof in PARAMS['profiles'].items():
        for sec, kv in prof.items():
            for k, v in kv.items(): assert not isinstance(v, bool), f'params.yaml profiles.{name}.{sec}.{k}: use 0/1, not {v}'

def diffiml_imports(code):
    return set(re.findall(r'(?:from|import) diffiml\.(\w+)', code))

def module_imports(src):
    """diffiml modules a module imports when it is loaded (top level: `from .vae import`, `from diffiml.data import`). An import
    inside a function (DiffIML.predict's hand-off of file paths to diffiml.predict) runs only when called; no stage calls it."""
    tree = ast.parse(src)
    return {n.module.split('.')[-1] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module
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
    used = module_closure(diffiml_imports('\n'.join(notebook_code(REPO/'nbs'/'pipeline'/f'{stage}.ipynb'))))
    deps = DVC['stages'][stage]['deps']
    listed = {Path(d).stem for d in deps if d.startswith('diffiml/')}
    assert listed == used, f'{stage}: deps list {sorted(listed)}, the notebook uses {sorted(used)}'
    assert f'nbs/pipeline/{stage}.ipynb' in deps

def test_outputs_stay_out_of_nbs():
    for s, st in DVC['stages'].items():
        for o in st.get('outs', []) + st.get('metrics', []) + st.get('plots', []):
            path = o if isinstance(o, str) else next(iter(o))
            assert path.startswith((f'artifacts/{s}', f'reports/{s}', 'reports/README.md')), f'{s}: output {path} is outside its folders'
