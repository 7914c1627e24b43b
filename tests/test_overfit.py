"""Each model, trained with the package's own loop, overfits one real manipulated image of data/samples: a check
that losses, gradients, the frozen autoencoder and the sampler are wired right end to end (F1 > 0.9)."""
import numpy as np
import pytest
import torch
from diffiml.baseline import Baseline
from diffiml.data import pair_folder
from diffiml.augment import IMLDataset
from diffiml.metrics import pixel_f1
from diffiml.model import DiffIML
from diffiml.sampler import Sampler
from diffiml.train import fit
from diffiml.vae import LightVAE, to_signed, vae_loss

@pytest.fixture(scope='module')
def sample(data_dir):
    ds = IMLDataset(pair_folder(data_dir/'samples/casia1')[:1], size=64)
    return ds, [ds[0]] * 8            # one image, repeated to fill a batch

@pytest.fixture(scope='module')
def vae(sample):
    torch.manual_seed(0)
    v = LightVAE(block_out_channels=(16, 32, 64))
    fit(v, sample[1], lambda m, b: vae_loss(m, torch.cat([b['mask'], b['edge']])), steps=150, batch_size=8, lr=3e-3,
        weight_decay=0)
    return v.eval()

def f1(prob, ds):
    v = pixel_f1(prob[0, 0].numpy() > 0.5, ds.masks[0]); print(f"F1 = {v:.3f}"); return v

def test_autoencoder_reconstructs_a_real_mask(vae, sample):
    ds = sample[0]
    with torch.no_grad(): rec = torch.sigmoid(vae(to_signed(ds[0]['mask'][None])))
    assert f1(rec, ds) > 0.9

def test_baseline_overfits_one_image(sample):
    torch.manual_seed(0)
    model = Baseline('mit-tiny', neck_channels=32)
    fit(model, sample[1], lambda m, b: m.loss(b), steps=250, batch_size=8, lr=2e-3, weight_decay=0)
    assert f1(model.predict(sample[0][0]['image'][None])['prob'], sample[0]) > 0.9

def test_diffiml_overfits_one_image(vae, sample):
    torch.manual_seed(0)
    model = DiffIML.build(vae, backbone='mit-tiny', neck_channels=32, unet_channels=(32,), layers_per_block=1,
                          norm_num_groups=8, sample_size=8)
    fit(model, sample[1], lambda m, b: m.loss(b), steps=300, batch_size=8, lr=2e-3, weight_decay=0)
    out = model.predict(sample[0][0]['image'][None], Sampler(steps=8, ensemble=2, tta=False))
    assert f1(out['prob'], sample[0]) > 0.9
