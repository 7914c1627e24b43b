"""The data readers on the real benchmark samples in data/samples (each quirk of data/README.md) and on crafted bad
inputs, and the synthetic sets' split discipline."""
import json, tracemalloc
import numpy as np
import pytest
from PIL import Image
from diffiml.data import DataError, Pair, image_size, load_image, load_mask, pair_folder, read_pairs, write_pairs
from diffiml.synthesis import bsds_items, write_synthetic
from diffiml.augment import IMLDataset

SETS = ['casia1', 'casia2', 'columbia', 'imd2020', 'misc', 'nist16']

@pytest.mark.parametrize('name', SETS)
def test_every_real_sample_pairs_and_loads(data_dir, name):
    pairs = pair_folder(data_dir/'samples'/name)
    ds = IMLDataset(pairs, size=64, invert_masks=name == 'nist16')
    assert len(ds) == len(pairs) == len(list((data_dir/'samples'/name/'Tp').iterdir()))
    for m in ds.masks:
        assert 0.005 < m.mean() < 0.5, f'{name}: manipulated fraction {m.mean():.3f}: polarity or threshold wrong?'
    for p in pairs: assert load_mask(p.mask, invert=name == 'nist16').shape == image_size(p.image)

def test_nist16_polarity_is_explicit(data_dir):
    "NIST16 marks manipulated pixels black: read as-is, most of the image would count as manipulated."
    p = pair_folder(data_dir/'samples/nist16')[0]
    assert load_mask(p.mask).mean() > 0.9 and load_mask(p.mask, invert=True).mean() < 0.1

def test_jpeg_masks_with_grey_levels_are_binarized_at_127(data_dir):
    jpeg_masks = [q for q in pair_folder(data_dir/'samples/misc') if q.mask.suffix == '.jpg']
    for p in pair_folder(data_dir/'samples/columbia') + jpeg_masks:
        grey = np.asarray(Image.open(p.mask).convert('L'))
        assert len(np.unique(grey)) > 2
        np.testing.assert_array_equal(load_mask(p.mask), grey > 127)

def test_large_probe_decodes_within_bounded_memory(data_dir):
    "The 4000x3000 NIST16 probe: a full decode holds 36 MB; the dataset's reduced JPEG decode stays far below."
    p = data_dir/'samples/nist16/Tp/NC2016_0016.jpg'
    tracemalloc.start()
    img = load_image(p, max_side=128)
    peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    assert img.shape == (375, 500, 3) and peak < 8e6, (img.shape, peak)

def test_json_pairs_with_negatives_and_relative_paths(data_dir, tmp_path):
    real = pair_folder(data_dir/'samples/casia1')
    js = tmp_path/'sub'/'set.json'; js.parent.mkdir()
    js.write_text(json.dumps([[str(real[0].image), str(real[0].mask)], [str(real[1].image), 'Negative']]))
    ds = IMLDataset(read_pairs(js), size=32)
    assert ds.masks[0].any() and not ds.masks[1].any()
    assert read_pairs(write_pairs([Pair(tmp_path/'a.png')], tmp_path/'rel.json')) == [Pair(tmp_path/'a.png')]

@pytest.mark.parametrize('content,problem', [('{"images": []}', 'expected a non-empty JSON list'),
                                             ('[]', 'expected a non-empty JSON list'),
                                             ('[["a.png", 3]]', 'item 0'), ('not json', 'not valid JSON')])
def test_bad_json_names_the_file_and_problem(tmp_path, content, problem):
    (tmp_path/'bad.json').write_text(content)
    with pytest.raises(DataError, match=problem) as e: read_pairs(tmp_path/'bad.json')
    assert 'bad.json' in str(e.value)

def test_bad_files_in_a_folder_are_reported_or_skipped(data_dir, tmp_path):
    (tmp_path/'Tp').mkdir(); (tmp_path/'Gt').mkdir()
    good = pair_folder(data_dir/'samples/casia1')[0]
    (tmp_path/'Tp'/'good.jpg').write_bytes(good.image.read_bytes())
    (tmp_path/'Gt'/'good_gt.png').write_bytes(good.mask.read_bytes())
    (tmp_path/'Tp'/'text.png').write_text('hello'); (tmp_path/'Gt'/'text.png').write_bytes(good.mask.read_bytes())
    b = good.image.read_bytes()
    (tmp_path/'Tp'/'cut.jpg').write_bytes(b[:len(b) // 3])
    (tmp_path/'Gt'/'cut_mask.png').write_bytes(good.mask.read_bytes())
    with pytest.raises(DataError, match=r'cut.jpg: .*[Tt]runcated'): IMLDataset(pair_folder(tmp_path), size=32)
    ds = IMLDataset(pair_folder(tmp_path), size=32, on_error='skip')
    assert len(ds) == 1 and sorted(p.split('/')[-1] for p, _ in ds.skipped) == ['cut.jpg', 'text.png']

def test_synthetic_splits_share_no_photograph(data_dir):
    stems = {s: {p.stem for p, _ in bsds_items(data_dir/'bsds500', s)} for s in ('train', 'val', 'test')}
    assert [len(v) for v in stems.values()] == [200, 100, 200]
    assert not (stems['train'] & stems['val'] or stems['train'] & stems['test'] or stems['val'] & stems['test'])

def test_synthetic_sets_are_deterministic(data_dir, tmp_path):
    items = bsds_items(data_dir/'bsds500', 'val')[:12]
    a, ca = write_synthetic(items, tmp_path/'a', 8, seed=5, name='val', size=48)
    b, cb = write_synthetic(items, tmp_path/'b', 8, seed=5, name='val', size=48)
    assert ca == cb
    for pa, pb in zip(read_pairs(a), read_pairs(b)):
        assert np.array_equal(load_image(pa.image), load_image(pb.image))
        assert (pa.mask is None) == (pb.mask is None)
        assert pa.mask is None or np.array_equal(load_mask(pa.mask), load_mask(pb.mask))
