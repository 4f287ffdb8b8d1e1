#!/usr/bin/env python3
"""Reference fixtures from ml-jku's hopfield-layers (hflayers) for test/layers/hflayersReference.test.ts.

For each configuration of the trio (Hopfield, HopfieldPooling, HopfieldLayer) this builds the
hflayers module, gives every parameter seeded values (not hflayers' N(0, 0.02^2) start, which
makes every association almost uniform and so a weak test), rounds weights and inputs to
float32, runs hflayers in float64 and writes one small JSON file under test/fixtures/hflayers/:
the uhop constructor options, the inputs and masks, the weights under uhop's names and in
uhop's layout (kernels [in, out], the transpose of torch's Linear weight), and hflayers'
output and association matrix.

Not run by npm test. Regenerate (see test/fixtures/hflayers/README.md):

    apt-get install -y python3-torch   # Debian's PyTorch 1.13
    # hflayers' package directory (hflayers/__init__.py, activation.py, functional.py) from
    # github.com/ml-jku/hopfield-layers at the commit named in the README, e.g. under .scratch/:
    PYTHONPATH=.scratch /usr/bin/python3 tools/hflayers-fixtures.py

Left out on purpose (known differences, where uhop is right and hflayers is not):
- per-head scaling (a tensor of one beta per head): hflayers multiplies q by
  scaling.repeat(q.shape[2] // H), which interleaves the heads' betas across the features of
  every head instead of giving head h its own beta;
- concat_bias_pattern: hflayers only appends bias_k/bias_v when key_as_static and
  value_as_static are None, which they never are (they are bools), so the option does nothing;
- update_steps_max=None (iterate to convergence): uhop rejects it (needs a bound).
Stopping by eps: hflayers stops a head when the largest change of its association over the
whole batch is <= eps, uhop stops each query row on its own. The eps configurations below
therefore iterate to convergence (the generator checks that more steps change nothing), where
both rules give the same fixed point.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch

import hflayers
from hflayers import Hopfield, HopfieldLayer, HopfieldPooling

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'hflayers')
torch.set_default_dtype(torch.float64)


def f32(t):
    """float64 tensor holding float32-representable values."""
    return torch.as_tensor(t, dtype=torch.float32).to(torch.float64)


def enc_exact(t):
    """Shortest decimal strings that give back the same float32 (inputs and weights)."""
    a = np.asarray(t.detach().to(torch.float32).numpy(), dtype=np.float32)
    return {'shape': list(a.shape), 'data': [float(np.format_float_positional(x, unique=True)) for x in a.reshape(-1)]}


def enc_ref(t):
    """Reference outputs: float64, 8 significant digits (far below the test's 1e-5)."""
    a = t.detach().numpy().astype(np.float64).reshape(-1)
    return {'shape': list(t.shape), 'data': [float('%.8g' % x) for x in a]}


def seeded_params(module, seed):
    """Seeded values for every parameter: kernels ~ N(0, 1/fan_in), biases and norm shifts
    ~ N(0, 0.1^2), norm gains 1 + N(0, 0.1^2), pooling/lookup patterns ~ N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            n = torch.randn(p.shape, generator=g, dtype=torch.float64)
            if name.endswith('norm_stored_pattern.weight') or name.endswith('norm_state_pattern.weight') or \
                    name.endswith('norm_pattern_projection.weight') or name.endswith('p_norm_weight'):
                v = 1 + 0.1 * n
            elif p.dim() == 1:
                v = 0.1 * n
            elif name.endswith(('pooling_weights', 'lookup_weights', 'target_weights')):
                v = n
            else:
                v = n / math.sqrt(p.shape[-1])
            p.copy_(f32(v))


def uhop_weights(model):
    """hflayers parameters under uhop's weight names, kernels as [in, out]."""
    hop = model if isinstance(model, Hopfield) else model.hopfield
    core = hop.association_core
    out = {}
    for prefix, norm in (('stored_norm', hop.norm_stored_pattern), ('state_norm', hop.norm_state_pattern),
                         ('projection_norm', hop.norm_pattern_projection)):
        if norm is not None and norm.elementwise_affine:
            out[prefix + '_gamma'] = norm.weight
            out[prefix + '_beta'] = norm.bias
    hd = core.virtual_hopfield_dim
    if core.in_proj_weight is not None:
        w = core.in_proj_weight
        wq, wk, wv = w[:hd], w[hd:2 * hd], w[2 * hd:]
    else:
        wq, wk, wv = core.q_proj_weight, core.k_proj_weight, core.v_proj_weight
    b = core.in_proj_bias
    for name, w, sl in (('query', wq, slice(0, hd)), ('key', wk, slice(hd, 2 * hd)), ('value', wv, slice(2 * hd, None))):
        out[name + '_kernel'] = w.t()
        if b is not None:
            out[name + '_bias'] = b[sl]
    if core.p_norm_weight is not None:
        out['hopfield_norm_gamma'] = core.p_norm_weight
        out['hopfield_norm_beta'] = core.p_norm_bias
    assert core.bias_k is None and core.bias_v is None, 'concat_bias_pattern is left out (see the module doc)'
    if core.out_proj is not None:
        out['output_kernel'] = core.out_proj.weight.t()
        if core.out_proj.bias is not None:
            out['output_bias'] = core.out_proj.bias
    for name in ('pooling_weights', 'lookup_weights', 'target_weights'):
        p = getattr(model, name, None)
        if p is not None:
            out[name] = p
    return {k: enc_exact(v) for k, v in out.items()}


def torch_masks(masks, H):
    """uhop's masks (1 = real / allowed) in hflayers' form (True = ignored / blocked, or additive)."""
    kw = {}
    if 'padding' in masks:
        kw['stored_pattern_padding_mask'] = masks['padding'] == 0
    if 'association' in masks:
        a = masks['association']
        if a.dim() == 3:  # [B, L, S] -> [B * H, L, S], batch-major as hflayers' bmm
            a = a.repeat_interleave(H, dim=0)
        elif a.dim() == 4:  # per head [B, H, L, S]
            a = a.reshape(-1, *a.shape[2:])
        if masks.get('additive'):
            kw['association_mask'] = torch.where(a != 0, torch.zeros(()), torch.full((), float('-inf')))
        else:
            kw['association_mask'] = a == 0
    return kw


def randn(g, *shape):
    return f32(torch.randn(shape, generator=g, dtype=torch.float64))


def mask01(g, shape, keep=0.6):
    """A 0/1 mask with at least one 1 in every row (a query always has a memory)."""
    m = (torch.rand(shape, generator=g) < keep).to(torch.float64)
    m[..., 0] = 1
    return m


def run(name, layer, uhop_args, hf_args, inputs, masks=None, seed=1, check_converged=False):
    masks = masks or {}
    cls = {'Hopfield': Hopfield, 'HopfieldPooling': HopfieldPooling, 'HopfieldLayer': HopfieldLayer}[layer]
    torch.manual_seed(seed)
    model = cls(**hf_args).to(torch.float64)
    seeded_params(model, seed)
    model.eval()
    H = hf_args.get('num_heads', 1)
    tm = torch_masks(masks, H)
    x = inputs[0] if len(inputs) == 1 else tuple(inputs)
    with torch.no_grad():
        out = model(x, **tm)
        assoc = model.get_association_matrix(x, **tm)
        assert torch.isfinite(out).all() and torch.isfinite(assoc).all(), name
        if check_converged:
            # The fixed point: more steps and a far smaller eps must change nothing that the
            # test could see, so that the two stopping rules cannot disagree on the result.
            more = dict(hf_args, update_steps_max=hf_args['update_steps_max'] * 4, update_steps_eps=1e-12)
            twin = cls(**more).to(torch.float64)
            twin.load_state_dict(model.state_dict())
            twin.eval()
            drift = (twin(x, **tm) - out).abs().max().item()
            assert drift < 1e-6, f'{name}: not converged (drift {drift})'
    fixture = {
        'name': name,
        'layer': layer,
        'args': uhop_args,
        'hflayersArgs': hf_args,
        'inputs': [enc_exact(t) for t in inputs],
        'weights': uhop_weights(model),
        'output': enc_ref(out),
        'association': enc_ref(assoc),
    }
    if 'padding' in masks:
        fixture['storedPatternPaddingMask'] = enc_exact(masks['padding'])
    if 'association' in masks:
        fixture['associationMask'] = enc_exact(masks['association'])
        fixture['associationMaskForm'] = 'additive' if masks.get('additive') else 'allowed'
    path = os.path.join(OUT, name + '.json')
    with open(path, 'w') as fh:
        json.dump(fixture, fh, separators=(',', ':'))
        fh.write('\n')
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith('.json'):
            os.remove(os.path.join(OUT, f))
    g = torch.Generator().manual_seed(12)
    B, S, L, F = 2, 5, 3, 8
    paths = []
    add = paths.append

    # Hopfield, self-association: stored = state = projection = x.
    x = randn(g, B, S, F)
    add(run('hopfield-self-default', 'Hopfield', {}, dict(input_size=F), [x], seed=1))
    add(run('hopfield-self-heads2-scaling', 'Hopfield', {'numHeads': 2, 'scaling': 0.7},
            dict(input_size=F, num_heads=2, scaling=0.7), [x], seed=2))
    add(run('hopfield-self-no-norm-no-bias', 'Hopfield',
            {'numHeads': 2, 'normalizeStoredPattern': False, 'normalizeStatePattern': False,
             'normalizePatternProjection': False, 'useBias': False},
            dict(input_size=F, num_heads=2, normalize_stored_pattern=False, normalize_stored_pattern_affine=False,
                 normalize_state_pattern=False, normalize_state_pattern_affine=False,
                 normalize_pattern_projection=False, normalize_pattern_projection_affine=False, input_bias=False),
            [x], seed=3))
    add(run('hopfield-self-norm-not-affine', 'Hopfield',
            {'normalizeStoredPatternAffine': False, 'normalizeStatePatternAffine': False,
             'normalizePatternProjectionAffine': False},
            dict(input_size=F, normalize_stored_pattern_affine=False, normalize_state_pattern_affine=False,
                 normalize_pattern_projection_affine=False), [x], seed=4))
    add(run('hopfield-self-steps3', 'Hopfield', {'numHeads': 2, 'updateStepsMax': 3, 'updateStepsEps': 1e-12},
            dict(input_size=F, num_heads=2, update_steps_max=3, update_steps_eps=1e-12), [x], seed=5))
    add(run('hopfield-self-steps-eps-converged', 'Hopfield', {'numHeads': 2, 'scaling': 0.3, 'updateStepsMax': 40, 'updateStepsEps': 1e-7},
            dict(input_size=F, num_heads=2, scaling=0.3, update_steps_max=40, update_steps_eps=1e-7), [x], seed=6,
            check_converged=True))
    add(run('hopfield-self-hopfield-space-norm', 'Hopfield',
            {'numHeads': 2, 'hiddenSize': 3, 'normalizeHopfieldSpace': True, 'normalizeHopfieldSpaceAffine': True,
             'updateStepsMax': 2, 'updateStepsEps': 1e-12},
            dict(input_size=F, num_heads=2, hidden_size=3, normalize_hopfield_space=True,
                 normalize_hopfield_space_affine=True, update_steps_max=2, update_steps_eps=1e-12), [x], seed=7))
    add(run('hopfield-self-zero-association', 'Hopfield', {'numHeads': 2, 'addZeroAssociation': True},
            dict(input_size=F, num_heads=2, add_zero_association=True), [x], seed=8))
    add(run('hopfield-self-no-out-projection', 'Hopfield', {'numHeads': 2, 'patternSize': 3, 'disableOutProjection': True},
            dict(input_size=F, num_heads=2, pattern_size=3, disable_out_projection=True), [x], seed=9))
    add(run('hopfield-self-padding', 'Hopfield', {'numHeads': 2},
            dict(input_size=F, num_heads=2), [x], {'padding': torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.float64)},
            seed=10))

    # Hopfield, cross-association: [stored, state, projection] of different widths.
    Fs, Ft, Fp = 6, 8, 5
    stored, state, proj = randn(g, B, S, Fs), randn(g, B, L, Ft), randn(g, B, S, Fp)
    cross = dict(input_size=Ft, stored_pattern_size=Fs, pattern_projection_size=Fp)
    add(run('hopfield-cross-sizes', 'Hopfield', {'numHeads': 2, 'hiddenSize': 3, 'patternSize': 4, 'outputSize': 7},
            dict(cross, num_heads=2, hidden_size=3, pattern_size=4, output_size=7), [stored, state, proj], seed=11))
    add(run('hopfield-cross-steps2-mask2d', 'Hopfield', {'numHeads': 2, 'updateStepsMax': 2, 'updateStepsEps': 1e-12},
            dict(cross, num_heads=2, update_steps_max=2, update_steps_eps=1e-12), [stored, state, proj],
            {'association': mask01(g, (L, S))}, seed=12))
    add(run('hopfield-cross-mask3d-padding', 'Hopfield', {'numHeads': 2, 'scaling': 0.9},
            dict(cross, num_heads=2, scaling=0.9), [stored, state, proj],
            {'association': mask01(g, (B, L, S)), 'padding': torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=torch.float64)},
            seed=13))
    add(run('hopfield-cross-mask-per-head', 'Hopfield', {'numHeads': 2},
            dict(cross, num_heads=2), [stored, state, proj], {'association': mask01(g, (B, 2, L, S))}, seed=14))
    add(run('hopfield-cross-mask-additive', 'Hopfield', {'numHeads': 2, 'maskType': 'additive'},
            dict(cross, num_heads=2), [stored, state, proj], {'association': mask01(g, (L, S)), 'additive': True}, seed=15))

    # HopfieldPooling: learned state patterns pool the set.
    add(run('pooling-default', 'HopfieldPooling', {}, dict(input_size=F), [x], seed=21))
    add(run('pooling-heads2-quantity3-steps2-padding', 'HopfieldPooling',
            {'numHeads': 2, 'quantity': 3, 'updateStepsMax': 2, 'updateStepsEps': 1e-12},
            dict(input_size=F, num_heads=2, quantity=3, update_steps_max=2, update_steps_eps=1e-12), [x],
            {'padding': torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float64)}, seed=22))
    add(run('pooling-stored-projection', 'HopfieldPooling',
            {'numHeads': 2, 'hiddenSize': 3, 'patternSize': 2, 'outputSize': 4, 'quantity': 2, 'scaling': 1.3},
            dict(input_size=Fs, stored_pattern_size=Fs, pattern_projection_size=Fp, num_heads=2, hidden_size=3,
                 pattern_size=2, output_size=4, quantity=2, scaling=1.3), [stored, proj], seed=23))
    add(run('pooling-zero-association-converged', 'HopfieldPooling',
            {'numHeads': 2, 'quantity': 2, 'scaling': 0.3, 'addZeroAssociation': True, 'updateStepsMax': 40, 'updateStepsEps': 1e-7},
            dict(input_size=F, num_heads=2, quantity=2, scaling=0.3, add_zero_association=True, update_steps_max=40,
                 update_steps_eps=1e-7), [x], seed=24, check_converged=True))

    # HopfieldLayer: the input queries learned stored patterns (a lookup table).
    q = randn(g, B, L, F)
    add(run('layer-default', 'HopfieldLayer', {'quantity': 6}, dict(input_size=F, quantity=6), [q], seed=31))
    add(run('layer-separated-heads2-steps1', 'HopfieldLayer',
            {'numHeads': 2, 'quantity': 6, 'lookupWeightsAsSeparated': True, 'updateStepsMax': 1, 'updateStepsEps': 1e-12},
            dict(input_size=F, num_heads=2, quantity=6, lookup_weights_as_separated=True, update_steps_max=1,
                 update_steps_eps=1e-12), [q], seed=32))
    add(run('layer-mask-no-bias', 'HopfieldLayer', {'numHeads': 2, 'quantity': 6, 'useBias': False, 'hiddenSize': 3},
            dict(input_size=F, num_heads=2, quantity=6, input_bias=False, hidden_size=3), [q],
            {'association': mask01(g, (B, L, 6))}, seed=33))

    total = sum(os.path.getsize(p) for p in paths)
    print(f'{len(paths)} fixtures, {total} bytes, in {os.path.relpath(OUT)}')
    print(f'torch {torch.__version__}, hflayers from {os.path.dirname(hflayers.__file__)}')


if __name__ == '__main__':
    sys.exit(main())
