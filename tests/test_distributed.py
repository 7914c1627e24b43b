"""Two CPU processes with DDP: the same `fit` trains, and gradients are synchronized (both processes end with identical
weights, which unsynchronized replicas would not). accelerate's `--cpu` flag starts several CPU processes only through
MPI (`mpirun`); without MPI, `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2` starts them with
torchrun and the gloo backend."""
import json, os, subprocess, sys, textwrap
from pathlib import Path

SCRIPT = textwrap.dedent('''
    import json, sys, torch
    from accelerate import PartialState
    from diffiml.train import fit
    class Toy(torch.nn.Module):
        def __init__(self): super().__init__(); self.w = torch.nn.Linear(2, 1)
        def loss(self, b): return ((self.w(b['x']) - b['y']) ** 2).mean()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 2, generator=g); ds = [dict(x=x, y=x.sum(0, keepdim=True) * 2) for x in X]
    torch.manual_seed(0)
    m = Toy()
    losses = fit(m, ds, lambda m, b: m.loss(b), steps=150, batch_size=8, lr=0.05, weight_decay=0, seed=1)
    rank = PartialState().process_index
    json.dump(dict(world=PartialState().num_processes, w=m.w.weight.tolist(), b=m.w.bias.tolist(), first=losses[0], last=losses[-1]), open(f'{sys.argv[1]}/rank{rank}.json', 'w'))
''')

def test_two_process_ddp_on_cpu(tmp_path):
    (tmp_path/'train.py').write_text(SCRIPT)
    exe = Path(sys.executable).parent/'accelerate'
    env = dict(os.environ, OMP_NUM_THREADS='1', ACCELERATE_USE_CPU='1')
    r = subprocess.run([exe, 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no',
                        '--dynamo_backend', 'no', str(tmp_path/'train.py'), str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path/f'rank{i}.json').read_text()) for i in (0, 1))
    assert r0['w'] == r1['w'] and r0['b'] == r1['b']          # DDP averaged the gradients of both replicas
    assert r0['last'] < 0.05 * r0['first']
    assert r0['world'] == r1['world'] == 2
