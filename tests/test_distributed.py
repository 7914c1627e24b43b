"""Two CPU processes with DDP: the same `fit` trains, and gradients are synchronized (both processes end with identical
weights, which unsynchronized replicas would not). Both ways of starting them are covered:
`accelerate launch --cpu --num_processes 2 --mpirun_hostfile F` (accelerate starts several CPU processes only through
MPI's `mpirun`; `.ci/setup` installs Debian's openmpi-bin when it is missing), and, without MPI,
`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2` (torchrun and the gloo backend)."""
import json, os, shutil, subprocess, sys, textwrap
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
    record = dict(world=PartialState().num_processes, w=m.w.weight.tolist(), b=m.w.bias.tolist(), first=losses[0],
                  last=losses[-1])
    json.dump(record, open(f'{sys.argv[1]}/rank{rank}.json', 'w'))
''')

LAUNCH = [Path(sys.executable).parent/'accelerate', 'launch', '--num_processes', '2', '--num_machines', '1',
          '--mixed_precision', 'no', '--dynamo_backend', 'no']

def check_two_ranks(tmp_path):
    r0, r1 = (json.loads((tmp_path/f'rank{i}.json').read_text()) for i in (0, 1))
    assert r0['w'] == r1['w'] and r0['b'] == r1['b']          # DDP averaged the gradients of both replicas
    assert r0['last'] < 0.05 * r0['first']
    assert r0['world'] == r1['world'] == 2

def test_accelerate_launch_cpu_two_processes(tmp_path):
    "`accelerate launch --cpu --num_processes 2` (through mpirun, as accelerate does for several CPU processes)."
    assert shutil.which('mpirun'), \
        'mpirun is missing: `bash .ci/setup` installs openmpi-bin (apt-get), or install any MPI'
    (tmp_path/'train.py').write_text(SCRIPT); (tmp_path/'hosts').write_text('localhost slots=2\n')
    # Open MPI refuses to run as root unless told; CI containers run as root
    env = dict(os.environ, OMP_NUM_THREADS='1', OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1')
    args = ['--cpu', '--mpirun_hostfile', str(tmp_path/'hosts'), str(tmp_path/'train.py'), str(tmp_path)]
    r = subprocess.run(LAUNCH + args, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    check_two_ranks(tmp_path)

def test_two_process_ddp_on_cpu_without_mpi(tmp_path):
    (tmp_path/'train.py').write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS='1', ACCELERATE_USE_CPU='1')
    args = ['--multi_gpu', str(tmp_path/'train.py'), str(tmp_path)]
    r = subprocess.run(LAUNCH + args, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    check_two_ranks(tmp_path)
