"""`diffiml predict` as a new user runs it: the three maps per image for the real samples, and a folder of bad and
awkward inputs (corrupt JPEG, text file named .png, 16-bit TIFF, 4000x3000 JPEG) handled without a crash."""
import io, json, shutil, subprocess
from pathlib import Path
import numpy as np
import pytest, torch
from PIL import Image
from conftest import REPO

@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    "A small untrained DiffIML checkpoint (64 px): what matters here is the handling of files, not the maps."
    from diffiml.vae import LightVAE
    from diffiml.model import DiffIML
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp('ckpt')/'diffiml'
    DiffIML.build(LightVAE(block_out_channels=(8, 8, 8)), backbone='resnet-tiny', neck_channels=16, unet_channels=(16,),
                  layers_per_block=1, norm_num_groups=8, sample_size=8).save_pretrained(d)
    return d

def predict(*args):
    cmd = ['diffiml', 'predict', *map(str, args), '--steps', '2', '--ensemble', '2']
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)

def test_real_samples_get_three_maps_each(ckpt, tmp_path, data_dir):
    folders = sorted((data_dir/'samples').glob('*/Tp'))
    r = predict('--checkpoint', ckpt, '--out', tmp_path, *folders)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path/'predictions.json').read_text())
    suffixes = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp')
    images = [p for f in folders for p in f.iterdir() if p.suffix.lower() in suffixes]
    assert len(res['predictions']) == len(images) and not res['failed']
    for p in res['predictions']:
        h, w = p['size']
        for k in ('mask', 'prob', 'uncertainty'):
            a = np.asarray(Image.open(tmp_path/f"{p['outputs']}_{k}.png"))
            assert a.shape == (h, w) and a.dtype == np.uint8, (p['file'], k)
        assert 0 <= p['score'] <= 1 and p['seconds'] > 0
    assert set(np.unique(np.asarray(Image.open(tmp_path/f"{res['predictions'][0]['outputs']}_mask.png")))) <= {0, 255}

def test_bad_and_awkward_inputs(ckpt, tmp_path, data_dir):
    src = tmp_path/'in'; src.mkdir()
    good = next((data_dir/'samples'/'casia1'/'Tp').glob('*.jpg')).read_bytes()
    (src/'corrupt.jpg').write_bytes(good[:len(good) // 2] + b'\x00' * 64)     # truncated JPEG
    (src/'notes.png').write_text('this is text, not a PNG')
    (src/'empty.png').write_bytes(b'')
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(png, format='PNG')
    (src/'cut.png').write_bytes(png.getvalue()[:len(png.getvalue()) // 2])    # truncated PNG: header fine, data cut
    Image.fromarray(np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)).save(src/'deep.tif')
    assert Image.open(src/'deep.tif').mode.startswith('I;16')
    yy, xx = np.mgrid[0:3000, 0:4000]
    rgb = np.stack([(xx * 255 // 4000), (yy * 255 // 3000), np.full_like(xx, 128)], -1).astype(np.uint8)
    Image.fromarray(rgb).save(src/'huge.jpg', quality=85)
    out = tmp_path/'out'
    r = predict('--checkpoint', ckpt, '--out', out, src)
    assert r.returncode == 1, r.stderr[-2000:]                  # some inputs failed: non-zero, after doing the rest
    assert 'Traceback' not in r.stderr
    for name in ('corrupt.jpg', 'notes.png', 'empty.png', 'cut.png'): assert name in r.stderr, name
    res = json.loads((out/'predictions.json').read_text())
    assert sorted(Path(p['file']).name for p in res['predictions']) == ['deep.tif', 'huge.jpg']
    huge = next(p for p in res['predictions'] if p['file'].endswith('huge.jpg'))
    assert huge['size'] == [3000, 4000] and np.asarray(Image.open(out/'huge_prob.png')).shape == (3000, 4000)
    assert np.asarray(Image.open(out/'deep_uncertainty.png')).shape == (48, 64)
    # a second run must not replace what the first wrote
    before = (out/'huge_prob.png').read_bytes()
    r = predict('--checkpoint', ckpt, '--out', out, src)
    assert r.returncode == 2 and 'exists' in r.stderr and (out/'huge_prob.png').read_bytes() == before
    r = predict('--checkpoint', ckpt, '--out', out, src, '--overwrite', '--max-output-pixels', 1_000_000)
    assert r.returncode == 1
    assert np.asarray(Image.open(out/'huge_prob.png')).shape == (866, 1154)   # bounded maps, aspect kept

def test_native_checkpoint_predicts_a_large_image_in_tiles(tmp_path):
    "A checkpoint trained at native resolution predicts a 4000x3000 JPEG at its own size, through tiles."
    from diffiml.baseline import Baseline
    torch.manual_seed(0)
    ck = tmp_path/'native'
    b = Baseline('resnet-tiny', 16, image_size=64, noise_stem='srm')
    b.trained_with = dict(resolution=dict(mode='native', size=64))
    b.save_pretrained(ck)
    yy, xx = np.mgrid[0:3000, 0:4000]
    rgb = np.stack([(xx * 255 // 4000), (yy * 255 // 3000), np.full_like(xx, 128)], -1).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path/'huge.jpg', quality=85)
    r = predict('--checkpoint', ck, '--out', tmp_path/'out', tmp_path/'huge.jpg')
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path/'out'/'predictions.json').read_text())
    assert res['resolution'] == dict(mode='native', size=64)
    assert np.asarray(Image.open(tmp_path/'out'/'huge_prob.png')).shape == (3000, 4000)
    r = predict('--checkpoint', ck, '--out', tmp_path/'out2', tmp_path/'huge.jpg', '--mode', 'resize')
    assert r.returncode == 0
    assert json.loads((tmp_path/'out2'/'predictions.json').read_text())['resolution']['mode'] == 'resize'

def test_checkpoint_errors_are_clear(ckpt, tmp_path, data_dir):
    img = next((data_dir/'samples'/'casia1'/'Tp').glob('*.jpg'))
    r = predict('--checkpoint', tmp_path/'missing', '--out', tmp_path/'o', img)
    assert r.returncode == 2 and 'missing' in r.stderr and 'Traceback' not in r.stderr
    import shutil
    broken = tmp_path/'broken'; shutil.copytree(ckpt, broken)
    (broken/'score'/'diffusion_pytorch_model.safetensors').unlink()     # weights gone: never a silently random model
    r = predict('--checkpoint', broken, '--out', tmp_path/'o', img)
    assert r.returncode == 2 and 'score' in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path/'o').exists()

def test_interrupted_run_exits_130_and_resumes(ckpt, tmp_path):
    "Ctrl-C: exit status 130, no traceback, no maps beside a stale predictions.json; --resume finishes the rest."
    import signal, time
    src = tmp_path/'in'
    src.mkdir()
    n = 6
    for k in range(n):
        rgb = np.random.default_rng(k).integers(0, 255, (256, 320, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(src/f'im{k:02d}.png')
    out = tmp_path/'out'
    # the paper's sampler (8 steps x 5 + flip TTA) on each image whole at its own size (not the checkpoint's 64 px):
    # slow enough per image that the run is still going when interrupted, on an idle machine too
    cmd = ['diffiml', 'predict', '--checkpoint', str(ckpt), '--out', str(out), '--sampler', 'paper', '--mode', 'native',
           str(src)]
    # a shell runs background jobs with SIGINT ignored, and Python then never raises KeyboardInterrupt: give the run
    # the default disposition, as a terminal's Ctrl-C finds it
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log, t0 = out/'.diffiml-partial'/'done.jsonl', time.time()
    while not (log.exists() and log.read_text().count('\n') >= 1) and p.poll() is None and time.time() - t0 < 300:
        time.sleep(0.05)
    assert p.poll() is None, 'the run ended before it could be interrupted'
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and 'Traceback' not in err and 'interrupted' in err, err[-2000:]
    assert sorted(f.name for f in out.iterdir()) == ['.diffiml-partial']       # nothing half-published
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and '--resume' in r.stderr
    r = subprocess.run(cmd + ['--resume'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((out/'predictions.json').read_text())
    assert [Path(x['file']).name for x in res['predictions']] == [f'im{k:02d}.png' for k in range(n)]
    assert len(list(out.glob('*_prob.png'))) == n and not (out/'.diffiml-partial').exists()

def test_counts_must_be_positive(ckpt, tmp_path):
    for opt in ('--ensemble', '--steps'):
        r = subprocess.run(['diffiml', 'predict', '--checkpoint', str(ckpt), '--out', str(tmp_path/'o'), str(tmp_path),
                            opt, '0'], capture_output=True, text=True, timeout=600)
        assert r.returncode == 2 and f'argument {opt}' in r.stderr and 'Traceback' not in r.stderr
        assert not (tmp_path/'o').exists()

def test_evaluate_takes_the_field_quirks_and_names_what_it_skips(ckpt, tmp_path, data_dir):
    "A mask of another size (--mask-mismatch resize), an image with no mask and a truncated one: scored, or named."
    src = tmp_path/'set'
    shutil.copytree(data_dir/'samples'/'casia1', src)
    tp, gt = sorted((src/'Tp').iterdir()), sorted((src/'Gt').iterdir())
    m = Image.open(gt[0])
    m.resize((m.width // 2, m.height // 2)).save(gt[0])                        # half the size of its image
    gt[1].unlink()                                                              # an image with no mask
    tp[2].write_bytes(tp[2].read_bytes()[:-4000])                               # header intact, the end cut
    out = tmp_path/'m.json'
    run = lambda *a: subprocess.run(['diffiml', 'evaluate', '--checkpoint', str(ckpt), '--data', str(src), '--out',
                                     str(out), '--steps', '1', *a], capture_output=True, text=True, timeout=600)
    r = run('--skip-unpaired')
    assert r.returncode == 2 and gt[0].name in r.stderr and '--mask-mismatch' in r.stderr and not out.exists()
    r = run('--skip-unpaired', '--mask-mismatch', 'resize', '--skip-unreadable')
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr[-2000:]   # done, but not every image scored
    res = json.loads(out.read_text())                                           # standard JSON: no NaN
    assert sorted(Path(s['path']).name for s in res['skipped']) == sorted([tp[1].name, tp[2].name])
    assert res['n_manipulated'] == 2 and [Path(x['image']).name for x in res['per_image']] == [tp[0].name, tp[3].name]
    assert tp[1].name in r.stderr and tp[2].name in r.stderr and 'corrupt or truncated' in r.stderr

def test_sigkill_then_resume_equals_an_uninterrupted_run_and_overwrite_never_mixes(ckpt, tmp_path):
    "SIGKILL mid-run: --resume ends with the same files as a run never cut; a killed --overwrite rerun leaves the old."
    import signal, time
    src = tmp_path/'in'
    src.mkdir()
    for k in range(4):
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (256, 320, 3), dtype=np.uint8)).save(src/f'im{k}.png')
    cmd = lambda out, *a: ['diffiml', 'predict', '--checkpoint', str(ckpt), '--out', str(out), '--sampler', 'paper',
                           '--mode', 'native', str(src), *a]
    files = lambda d: {f.name: f.read_bytes() for f in sorted(d.iterdir()) if f.suffix == '.png'}
    records = lambda d: [{k: v for k, v in x.items() if k != 'seconds'}
                         for x in json.loads((d/'predictions.json').read_text())['predictions']]

    def killed(c):   # run `c` until it has finished one image, then SIGKILL it
        p, t0 = subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), time.time()
        log = Path(c[c.index('--out') + 1])/'.diffiml-partial'/'done.jsonl'
        while not (log.exists() and log.read_text().count('\n') >= 1) and p.poll() is None and time.time() - t0 < 300:
            time.sleep(0.05)
        assert p.poll() is None, 'the run ended before it could be killed'
        p.send_signal(signal.SIGKILL)
        p.wait()

    ref, out = tmp_path/'ref', tmp_path/'out'
    assert subprocess.run(cmd(ref), capture_output=True, timeout=600).returncode == 0
    killed(cmd(out))
    assert sorted(f.name for f in out.iterdir()) == ['.diffiml-partial']        # nothing published by the cut run
    r = subprocess.run(cmd(out, '--resume'), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert files(out) == files(ref) and records(out) == records(ref)            # byte for byte, record for record
    killed(cmd(out, '--overwrite', '--threshold', '0.2'))
    assert files(out) == files(ref) and records(out) == records(ref)            # the old run, whole: no mix
    r = subprocess.run(cmd(out, '--overwrite', '--threshold', '0.2'), capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and '--resume' in r.stderr                         # the cut rerun is named, not lost
    r = subprocess.run(cmd(out, '--overwrite', '--threshold', '0.2', '--resume'), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and json.loads((out/'predictions.json').read_text())['threshold'] == 0.2, r.stderr[-2000:]
    assert not (out/'.diffiml-partial').exists()
