__version__ = "0.1.0"

_LAZY = {'DiffIML': 'model', 'Sampler': 'sampler', 'Baseline': 'baseline', 'load_model': 'inference'}

def __getattr__(name):
    "`from diffiml import DiffIML` (and Sampler, Baseline, load_model) without importing torch for lighter commands."
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f'.{_LAZY[name]}', __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
