"""A training process killed with SIGKILL mid-run resumes from its last checkpoint, finishes, and ends exactly where an
uninterrupted run ends."""
import json, signal, subprocess, sys, textwrap, time
from pathlib import Path

SCRIPT = textwrap.dedent('''
    import json, sys, time, torch
    from diffiml.train import fit
    class Toy(torch.nn.Module):
        def __init__(self): super().__init__(); self.w = torch.nn.Linear(2, 1)
        def loss(self, b): time.sleep(float(sys.argv[3])); return ((self.w(b['x']) - b['y']) ** 2).mean()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 2, generator=g); ds = [dict(x=x, y=x.sum(0, keepdim=True) * 2) for x in X]
    torch.manual_seed(0)
    m = Toy()
    losses = fit(m, ds, lambda m, b: m.loss(b), steps=120, batch_size=16, lr=0.05, weight_decay=0, warmup_steps=10,
                 checkpoint_dir=sys.argv[1], checkpoint_every=20)
    json.dump(dict(losses=losses, w=m.w.weight.tolist()), open(sys.argv[2], 'w'))
''')

def run(tmp, ckpt, out, delay='0', **kw):
    cmd = [sys.executable, str(tmp/'train.py'), str(ckpt), str(out), delay]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)

def test_sigkill_then_resume(tmp_path):
    (tmp_path/'train.py').write_text(SCRIPT)
    ref = run(tmp_path, tmp_path/'ref_ckpt', tmp_path/'ref.json'); assert ref.wait(300) == 0, ref.stderr.read()
    p = run(tmp_path, tmp_path/'ckpt', tmp_path/'out.json', delay='0.05')
    latest, t0 = tmp_path/'ckpt'/'latest.json', time.time()
    while not (latest.is_file() and json.loads(latest.read_text())['step'] >= 40):
        assert p.poll() is None and time.time() - t0 < 300, 'the run ended or stalled before its second checkpoint'
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert not (tmp_path/'out.json').exists()
    killed_at = json.loads(latest.read_text())['step']
    r = run(tmp_path, tmp_path/'ckpt', tmp_path/'out.json'); assert r.wait(300) == 0, r.stderr.read()
    out, want = json.loads((tmp_path/'out.json').read_text()), json.loads((tmp_path/'ref.json').read_text())
    assert len(out['losses']) == 120 - killed_at
    assert out['losses'] == want['losses'][killed_at:] and out['w'] == want['w']
