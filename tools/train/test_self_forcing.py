"""Self-checks of tools/train/self_forcing.py (CPU, seconds): python3 tools/train/test_self_forcing.py

1. the one-pass score of a whole rollout (teacher_forced_flow with rollout_mask) == the runtime's
   block-by-block computation with a KV cache under the sink / window policy (evict), for several
   windows and sinks; and the check can fail: the full-cache mask gives other flows once frames
   leave the window; after each block, the cache holds exactly the sink frames and the newest
   window - sink - block frames.
2. classifier-free guidance: distill_opening.sample_block with guidance 1 is the unguided sampler
   (one forward a step), guidance g combines the prompt's and the empty prompt's flow of the same
   model, input and cache; self_forcing.real_flow likewise; the empty prompt is lengths 0. Guidance in an interval of
   noise levels: all levels inside is full guidance, none is the unguided sampler (one forward a step), some neither;
   real_flow guides exactly the frames whose level lies inside.
3. train_teacher's prompt dropping: p = 0 draws no random numbers, p = 1 empties every prompt.
4. train_teacher's context recycling: share 0 changes nothing and draws no random numbers; share 1 replaces every
   clip's context by the model's own one-step x0 of it (flow prediction: x_s - s v; sample: the head's output), the
   targets untouched.
5. train_teacher's context erasing: share 0 changes nothing and draws no random numbers; share 1 takes one prompted
   object out of every clip's context over a run of whole blocks (those frames equal a render without it, the rest
   and the targets untouched).
6. distill_opening.recovery: scene_without leaves exactly one object out of the render, and the measure gives the
   four shares in [0, 1] for a small model; a model that ignores its context cannot tell the two contexts apart; with
   faded contexts it reports them and every context's extra copies, and how often a copy sits beside the object where it
   is; components counts 4-connected regions of 12 px, and finds their centroids. A copied context (scene_copy) draws
   the object again with its colour, shape, size and speed elsewhere, from a given context block on, and is reported
   with its copies.
7. the evaluation's centroid speed: rendered training clips move at the speed their scenes were drawn with,
   a still clip at 0, a clip whose object is absent gives NaN.
8. the detector's shape measure: rendered scenes' objects match their own shape best (accuracy 1 on clips whose objects
   do not overlap), the same layout drawn with the other shapes scores 0; a ragged outline scores a lower IoU;
   eval_shapes' split by object count tells a shape drawn on the wrong object from a shape the prompt does not name,
   and its extra copies are 0 on rendered scenes and one a frame for an object drawn a second time apart.
9. train_teacher's outline weighting: off adds no weights and draws nothing more; on, the weight is 1 + W exactly on
   the latent entries of pixels within the band of an outline (unpacked back to pixels), and an error on those
   entries costs more than the same error elsewhere.
10. train_teacher's shape swap: off draws nothing; on, the opening inputs show the same scenes with shapes drawn again
   (the same noise; each input is one of the renders with other shapes) while the targets still lead to the true frames.
11. eval_shapes' word following: the changed prompt differs from the prompt in exactly the one word; an estimate that
   is each prompt's truth follows both words with 1, one that ignores the prompt with 0; words given the same table
   row come out of the text projection parallel (cosine 1).
12. train_teacher --train-only text: the text path is exactly the word table, the text projection and every block's
   cross-attention with its norm.
13. train_teacher's shape swap of the teacher-forcing clips: off draws nothing; on, the context, the noise levels and
   the targets are the unswapped run's (the targets lead to the true frames), and the noisy blocks of each changed clip
   show one render of that clip with other shapes.
14. train_teacher --shape-swap-min-s: the same random draws as the swaps at every level; in both streams a frame whose
   noise level is below the level shows the truth (the unswapped run's input) and one at or above it the swapped input.
15. the word encoder's neighbour tables: added at zero to a model (load_weights' missing_ok) they change no context
   row; trained, row i is word[t_i] + previous[t_(i-1)] + next[t_(i+1)] + PE(i) within the prompt and zero past it,
   the batch and the one-prompt encoders agree, and the same words in another order give other rows; --init of a
   checkpoint without them is refused unless they are allowed missing, common.load_model builds them exactly when the
   file has them, and they train at their own learning rate.
16. the latent layout with the first frames negated (model.json firstFramesNegated): a video's first N latent frames
   are its frames negated, the rest as before; decoding inverts it, also for a slice that starts later in the video
   (first_frame); common.load_dims sets the layout from model.json and writes it back through Dims.to_dict.
17. rollouts with the runtime's generation.blockStart previous-frame (sig_rest): the first block is the pure-noise
   rollout's, every later block's first input is exactly (1 - s0) x the previous block's last frame + s0 x the noise
   drawn for it, and it is denoised over sig_rest.
18. rollout ODE distillation: the ODE grid holds the student's levels at every `substeps`-th point and ends at 0; Euler
   over a straight-line flow to known samples ends exactly at them with every state on the line; the student is asked
   at one of its own levels per video and block, from the ODE's state there, and the loss is 0 for a student whose x0
   is the ODE's end and the squared offset for one that misses it by a constant; from_block 1 leaves the opening block out;
   min_level K asks it only from its K-th level on; target weights scale each video's block's error.
19. train_teacher's context fading: share 0 changes nothing and draws no random numbers; share 1 with a kept share k
   makes every changed frame the blend k x the frame + (1 - k) x its render without one object (over one run of whole
   blocks, the rest untouched); excluded clips are not changed.
20. train_teacher's --context-erase-from B: every erased run starts at block B or later (and some at B); B = 0 is the
   plain erasure, draw for draw.
21. the rewarded distillation's block reward: rendered clips with every object in view score 1 a block, a second
   square of an object's colour lowers its block by 1/n of n objects, a block without objects scores 0; the weights
   have mean 1 for each block index and order as the rewards, beta 0 gives all 1.
22. the critic's warm-up: two training steps (the bundled model as teacher and start, CPU) with --critic-warmup 2 save
   the start weights unchanged, with --critic-warmup 1 a changed student (its one update from the second step on).
23. train_teacher's context copies: share 0 changes nothing and draws no random numbers; share 1 draws, in every clip,
   one prompted object a second time over one run of whole blocks from --context-copy-from on (the frames outside the
   run untouched, the changed frames one more component of a prompted colour than the render they were made from
   where the copy stands apart), excluded clips unchanged; the copy's pixel mask covers every pixel it changed, and none
   of an excluded clip.
24. train_teacher --copy-weight: it draws no random numbers and changes no input; the weight is 1 in every frame up to
   the end of the copied run's first block, 1 + W where the copy is shown in a later frame, 1 or 1 + W elsewhere; no
   copy, no weight; a weight without --context-copy, or below 0, and a share of copies above 1 are refused (exit 2).
25. the motion terms (test_block_motion): rendered clips read, inside each block, the speed they were drawn with (hard
   and soft centroids), still clips 0; a colour drawn twice does not count, and its block takes its index's mean
   reward; gradient steps along the speed term make a slow clip faster, along the smoothness term bring a clip stepping
   back and forth into line; a negative or NaN weight, and --motion-reward without --reward-beta, are refused (exit 2).
26. the copy term (test_copy_loss): a rendered clip scores 0, a second copy as large as the object about 1 (its
   colour's largest component is the object, whatever the order of labels), an absent colour is not counted, nor a
   frame left out of frames_kept (training keeps the blocks at their late exits, --copy-exits late); gradient steps
   along the term pull the copy's pixels off the colour and leave the object's; with hold (--copy-hold) an object
   faded towards the background scores its shortfall (times the weight) and gradient steps bring it back; a training
   run with --copy-from 2 logs the term from its third step on and records the options (--copy-hold alone is 1); a
   negative or NaN --copy-penalty, an unknown --copy-exits and a negative --copy-from or --copy-hold are refused (exit
   2); component_labels gives each 4-connected component one label, and the labels a training step computes once
   (prompted_labels) give drawn_once, copy_loss and block_rewards what each computes alone.
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'reference'))
import distill_opening as do  # noqa: E402
import self_forcing as sf  # noqa: E402
import train_teacher as tt  # noqa: E402
from model import Dims, KVCache, WanModel, block_causal_mask  # noqa: E402
from safetensors_io import read_header  # noqa: E402

B, BLOCKS, F = 2, 6, 3


def make_model() -> WanModel:
    torch.manual_seed(0)
    dims = Dims(dim=48, layers=2, heads=2, ffn_dim=96, latent_channels=12, text_dim=16, text_len=6,
                latent_height=8, latent_width=8, vocab_size=10)
    m = WanModel(dims)
    torch.nn.init.normal_(m.head.head.weight, std=0.1)  # the zero head would make every check pass
    return m.eval()


def sequential_flows(m: WanModel, clean, noisy, s, xkv, window: int, sink: int) -> torch.Tensor:
    cache = KVCache.empty(m.dims, B)
    out = []
    for b in range(BLOCKS):
        fp = torch.arange(b * F, (b + 1) * F)
        sl = slice(b * F, (b + 1) * F)
        out.append(m(noisy[:, :, sl], s[:, sl] * 1000, fp, cross_kv=xkv, cache=cache).flow)
        o = m(clean[:, :, sl], torch.zeros(B, F), fp, cross_kv=xkv, cache=cache, return_kv=True)
        cache = sf.evict(cache.append(o.block_k, o.block_v, o.block_positions), (b + 1) * F, window, sink, F)
        frames = sorted(set(int(v) for v in cache.positions[:, 0].tolist()))
        newest = list(range(max(0, (b + 1) * F - (window - sink - F)), (b + 1) * F))
        assert frames == sorted(set([f for f in range(sink) if f < (b + 1) * F] + newest)), frames
    return torch.cat(out, dim=2)


def test_one_pass_equals_runtime_cache() -> None:
    m = make_model()
    d = m.dims
    torch.manual_seed(1)
    for window, sink in ((12, 3), (12, 0), (9, 3), (15, 6)):
        clean = torch.randn(B, d.latent_channels, BLOCKS * F, d.latent_height, d.latent_width)
        noisy = torch.randn_like(clean)
        s = torch.rand(B, BLOCKS).repeat_interleave(F, 1)
        xkv = m.cross_kv(torch.randn(B, d.text_len, d.text_dim))
        with torch.no_grad():
            one = sf.teacher_forced_flow(m, clean, noisy, s, xkv, sf.rollout_mask(BLOCKS, F, d.tokens_per_frame, window, sink, 'cpu'))
            seq = sequential_flows(m, clean, noisy, s, xkv, window, sink)
            full = sf.teacher_forced_flow(m, clean, noisy, s, xkv, block_causal_mask(BLOCKS * F, d.tokens_per_frame, F))
        err = float((one - seq).abs().max() / seq.abs().max())
        assert err < 1e-5, (window, sink, err)
        # the last block has lost frames from its cache: the full-cache mask must differ there
        last = slice((BLOCKS - 1) * F, BLOCKS * F)
        gap = float((full[:, :, last] - seq[:, :, last]).abs().max() / seq.abs().max())
        assert gap > 1e-3, (window, sink, gap)


class CountingForward:
    """Counts a model's forward calls (to check that guidance 1 costs no extra pass)."""

    def __init__(self, m: WanModel):
        self.m, self.calls, self.orig = m, 0, m.forward

        def fwd(*a, **k):
            self.calls += 1
            return self.orig(*a, **k)
        m.forward = fwd


def prompt_kv(m: WanModel):
    d = m.dims
    ids = torch.randint(1, d.vocab_size, (B, d.text_len))
    return m.cross_kv(m.encode_text_batch(ids, torch.full((B,), d.text_len)))


def test_empty_prompt_is_zero_context() -> None:
    m = make_model()
    d = m.dims
    ref = m.cross_kv(torch.zeros(B, d.text_len, d.text_dim))
    for (k, v), (k0, v0) in zip(do.empty_prompt_kv(m, B, 'cpu'), ref):
        assert torch.equal(k, k0) and torch.equal(v, v0)


def test_guided_block_sampler() -> None:
    m = make_model()
    d = m.dims
    torch.manual_seed(2)
    with torch.no_grad():
        xkv, null = prompt_kv(m), do.empty_prompt_kv(m, B, 'cpu')
        # a cache holding one clean block, so the check covers "same cache" too
        fp0 = torch.arange(F)
        clean = torch.randn(B, d.latent_channels, F, d.latent_height, d.latent_width)
        o = m(clean, torch.zeros(B, F), fp0, cross_kv=xkv, cache=KVCache.empty(d, B), return_kv=True)
        cache = KVCache.empty(d, B).append(o.block_k, o.block_v, o.block_positions)
        fp = torch.arange(F, 2 * F)
        noise = torch.randn_like(clean)
        gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
        count = CountingForward(m)
        plain = do.sample_block(m, xkv, noise, fp, cache, gen(), 'ode', 4)
        assert count.calls == 4, count.calls
        one = do.sample_block(m, xkv, noise, fp, cache, gen(), 'ode', 4, guidance=1.0, xkv_null=null)
        assert count.calls == 8 and torch.equal(one, plain), count.calls
        zero = do.sample_block(m, xkv, noise, fp, cache, gen(), 'ode', 4, guidance=0.0, xkv_null=null)
        uncond = do.sample_block(m, null, noise, fp, cache, gen(), 'ode', 4)
        assert torch.allclose(zero, uncond, atol=1e-6)
        count.calls = 0
        g3 = do.sample_block(m, xkv, noise, fp, cache, gen(), 'ode', 4, guidance=3.0, xkv_null=null)
        assert count.calls == 8, count.calls
        # one step from s = 1: x0 = noise - v_guided, by hand
        t1 = torch.full((B, F), 1000.0)
        vc = m(noise, t1, fp, cross_kv=xkv, cache=cache).flow
        vn = m(noise, t1, fp, cross_kv=null, cache=cache).flow
        step1 = do.sample_block(m, xkv, noise, fp, cache, gen(), 'ode', 1, guidance=3.0, xkv_null=null)
        assert torch.allclose(step1, noise - (vn + 3.0 * (vc - vn)), atol=1e-5)
        assert float((g3 - plain).abs().max()) > 1e-3  # guidance changes the sample
        # guidance in a limited interval of noise levels: all of them, none of them, and the first step only
        count.calls = 0
        whole = do.sample_block(m, xkv, noise, fp, cache, gen(), 'ode', 4, guidance=3.0, xkv_null=null,
                                guidance_interval=(0.0, 1.0))
        assert count.calls == 8 and torch.equal(whole, g3), count.calls
        count.calls = 0
        outside = do.sample_block(m, xkv, noise, fp, cache, gen(), 'ode', 4, guidance=3.0, xkv_null=null,
                                  guidance_interval=(0.0, 0.1))
        assert count.calls == 4 and torch.equal(outside, plain), count.calls
        count.calls = 0
        high = do.sample_block(m, xkv, noise, fp, cache, gen(), 'ode', 4, guidance=3.0, xkv_null=null,
                               guidance_interval=(0.99, 1.0))
        assert count.calls == 5, count.calls
        assert float((high - plain).abs().max()) > 1e-3 and float((high - g3).abs().max()) > 1e-3
        try:
            do.sample_block(m, xkv, noise, fp, cache, gen(), 'ode', 4, guidance=3.0)
            raise AssertionError('guidance without the empty prompt must fail')
        except ValueError:
            pass


def test_guided_real_flow() -> None:
    m = make_model()
    d = m.dims
    torch.manual_seed(3)
    with torch.no_grad():
        clean = torch.randn(B, d.latent_channels, BLOCKS * F, d.latent_height, d.latent_width)
        noisy = torch.randn_like(clean)
        s = torch.rand(B, BLOCKS).repeat_interleave(F, 1)
        xkv, null = prompt_kv(m), do.empty_prompt_kv(m, B, 'cpu')
        mask = sf.rollout_mask(BLOCKS, F, d.tokens_per_frame, 12, 3, 'cpu')
        vc = sf.teacher_forced_flow(m, clean, noisy, s, xkv, mask)
        vn = sf.teacher_forced_flow(m, clean, noisy, s, null, mask)
        assert float((vc - vn).abs().max()) > 1e-3  # the prompt matters, or the checks below prove nothing
        assert torch.equal(sf.real_flow(m, clean, noisy, s, xkv, None, mask, 1.0), vc)
        assert torch.allclose(sf.real_flow(m, clean, noisy, s, xkv, null, mask, 0.0), vn, atol=1e-6)
        assert torch.allclose(sf.real_flow(m, clean, noisy, s, xkv, null, mask, 3.0), vn + 3 * (vc - vn), atol=1e-5)
        # the opening block's own scale: block 0 guided at 4, the rest at 1.5 (and unguided rest: 1)
        both = sf.real_flow(m, clean, noisy, s, xkv, null, mask, 1.5, 4.0, F)
        assert torch.allclose(both[:, :, :F], vn[:, :, :F] + 4 * (vc - vn)[:, :, :F], atol=1e-5)
        assert torch.allclose(both[:, :, F:], vn[:, :, F:] + 1.5 * (vc - vn)[:, :, F:], atol=1e-5)
        only = sf.real_flow(m, clean, noisy, s, xkv, null, mask, 1.0, 2.0, F)
        assert torch.allclose(only[:, :, F:], vc[:, :, F:], atol=1e-5)
        assert torch.allclose(only[:, :, :F], vn[:, :, :F] + 2 * (vc - vn)[:, :, :F], atol=1e-5)
        # guided only where a frame's noise level lies in the interval: the prompt's flow alone elsewhere
        inside = ((s >= 0.5) & (s <= 1.0))[:, None, :, None, None]
        assert bool(inside.any()) and not bool(inside.all())  # both kinds of frames, or the check proves nothing
        part = sf.real_flow(m, clean, noisy, s, xkv, null, mask, 1.5, 4.0, F, (0.5, 1.0))
        assert torch.allclose(part, torch.where(inside, both, vc), atol=1e-5)


def test_prompt_dropping() -> None:
    src = tt.DeviceScenes(tt.scenes.vocabulary(), 16, 'cpu', seed=4)
    lens = torch.full((2000,), 9)
    before = src.gen.get_state()
    assert torch.equal(tt.drop_prompts(src, lens, 0.0), lens)
    assert torch.equal(src.gen.get_state(), before)  # no random numbers drawn: old seeded runs reproduce
    assert int(tt.drop_prompts(src, lens, 1.0).count_nonzero()) == 0
    kept = tt.drop_prompts(src, lens, 0.25)
    assert set(kept.tolist()) == {0, 9}
    assert 0.2 < float((kept == 0).float().mean()) < 0.3
    assert tt.ode_run_name(16, 1.0) == 'ode16' and tt.ode_run_name(16, 3.0) == 'ode16, guidance 3'


def test_context_recycling() -> None:
    m = make_model()
    d = m.dims
    src = tt.DeviceScenes(tt.scenes.vocabulary(), d.text_len, 'cpu', seed=5)
    n, frames = 3, 2 * F
    g = torch.Generator().manual_seed(1)
    clean = torch.randn(n, d.latent_channels, frames, d.latent_height, d.latent_width, generator=g)
    x = {'t_clean': clean.clone(), 't_target': torch.randn(clean.shape, generator=g),
         't_ids': torch.randint(1, 10, (n, d.text_len), generator=g), 't_lens': torch.full((n,), d.text_len)}
    before = src.gen.get_state()
    assert tt.recycle_context(m, x, src, 0.0, (0.2, 0.6), 'flow') == 0
    assert torch.equal(x['t_clean'], clean) and torch.equal(src.gen.get_state(), before)
    for prediction in ('flow', 'sample'):
        x['t_clean'] = clean.clone()
        target = x['t_target'].clone()
        state = src.gen.get_state()
        assert tt.recycle_context(m, x, src, 1.0, (0.5, 0.5), prediction) == n
        assert torch.equal(x['t_target'], target)
        # the same draws again by hand: s = 0.5 everywhere, the noise after the share's uniforms
        src.gen.set_state(state)
        src._rand(n)
        src._rand(n, frames // F)
        noise = torch.randn(clean.shape, generator=src.gen, device='cpu')
        noisy = 0.5 * clean + 0.5 * noise
        with torch.no_grad():
            xkv = m.cross_kv(m.encode_text_batch(x['t_ids'], x['t_lens']))
            out = m.forward_teacher_forcing(clean, noisy, torch.full((n, frames), 500.0), xkv, F).float()
        want = out if prediction == 'sample' else noisy - 0.5 * out
        assert torch.allclose(x['t_clean'], want, atol=1e-5), (prediction, float((x['t_clean'] - want).abs().max()))
        assert float((x['t_clean'] - clean).abs().max()) > 1e-2  # replaced, not kept


def erasure_clips(seed: int, n: int, frames: int):
    """n training clips of `frames` frames (the scene source, its batch, their latents) and a lightly noised context."""
    src = tt.DeviceScenes(tt.scenes.vocabulary(), 16, 'cpu', seed=seed)
    b = src.sample(n)
    lat = tt.scenes.space_to_depth(src.render(b, frames))
    clean = lat + 0.01 * torch.randn(lat.shape, generator=torch.Generator().manual_seed(seed))
    return src, b, lat, clean


def renders_without(src, b, frames: int):
    """Per object slot j, every clip rendered without its object j."""
    return [tt.scenes.space_to_depth(src.render(dict(b, valid=b['valid'] & (torch.arange(3) != j)), frames))
            for j in range(3)]


def assert_share_zero_is_off(change, seed: int, n: int, frames: int) -> None:
    """A context change with share 0 returns the context as it is, changes no frame and draws no random numbers."""
    src, b, lat, clean = erasure_clips(seed, n, frames)
    before = src.gen.get_state()
    same, changed, *masks = change(src, b, lat, clean, 0.0)
    assert torch.equal(same, clean) and not bool(changed.any()) and torch.equal(src.gen.get_state(), before)
    assert not any(bool(m.any()) for m in masks)


def assert_one_run_of_blocks(changed: torch.Tensor) -> None:
    """changed [n, frames] (a context change's mask): every clip changed over exactly one run of whole blocks."""
    per_clip = changed.view(changed.shape[0], -1, F)
    assert bool(changed.any(dim=1).all())  # every clip changed somewhere
    assert bool((per_clip == per_clip[..., :1]).all())  # whole blocks
    runs = (changed[:, 1:] != changed[:, :-1]).sum(dim=1) + changed[:, 0].long() + changed[:, -1].long()
    assert bool((runs == 2).all())  # one run of blocks a clip


def test_context_erasing() -> None:
    n, frames = 8, 6 * F
    assert_share_zero_is_off(tt.erase_context_objects, 6, n, frames)
    src, b, lat, clean = erasure_clips(6, n, frames)
    erased, changed = tt.erase_context_objects(src, b, lat, clean, 1.0)
    assert_one_run_of_blocks(changed)
    delta = (erased - clean).abs().amax(dim=(1, 3, 4))  # [n, frames]
    assert float(delta[~changed].max()) == 0.0  # frames outside the run untouched
    without = renders_without(src, b, frames)
    for i in range(n):
        for f in torch.nonzero(changed[i]).flatten().tolist():
            # the erased frame is a render of the scene with one object fewer, plus the same light noise
            want = [without[j][i, :, f] for j in range(int(b['count'][i]))]
            got = erased[i, :, f] - (clean[i, :, f] - lat[i, :, f])
            assert any(torch.allclose(got, w, atol=1e-5) for w in want), (i, f)
            assert float((got - lat[i, :, f]).abs().max()) > 0.1  # an object really went (objects are >= 5 px)


def test_context_erasing_from_a_block() -> None:
    """--context-erase-from B: every run starts at block B or later; 0 is the plain erasure, draw for draw."""
    n, frames = 48, 6 * F
    src, b, lat, clean = erasure_clips(6, n, frames)
    plain = tt.erase_context_objects(src, b, lat, clean, 1.0)
    src, b, lat, clean = erasure_clips(6, n, frames)
    assert all(torch.equal(x, y) for x, y in zip(tt.erase_context_objects(src, b, lat, clean, 1.0, first_block=0), plain))
    assert bool(plain[1][:, :F].any()), 'the check can fail: plain runs start at the first block'
    for first in (1, 5):
        src, b, lat, clean = erasure_clips(6, n, frames)
        _, changed = tt.erase_context_objects(src, b, lat, clean, 1.0, first_block=first)
        assert bool(changed.any(dim=1).all())  # every clip still loses an object
        assert not bool(changed[:, :first * F].any()), first  # never before block `first`
        assert bool(changed[:, first * F].any()), first  # runs do start at block `first`


def input_args(**sizes):
    """train_teacher.make_inputs' arguments with every option off (the clip sizes given), for the checks to turn on."""
    import argparse
    return argparse.Namespace(cond_drop=0.0, context_erase=0.0, context_fade=0.0, context_copy=0.0, context_copy_from=1, copy_weight=0.0, open_shift_share=0.7, outline_weight=0.0,
                              outline_band=1.5, shape_swap=0.0, shape_swap_tf=0.0, shape_swap_min_s=0.0, **sizes)


def test_recovery() -> None:
    sc = do.scenes.sample_scenes(11, 6)
    for s in sc:
        for j in range(len(s.colours)):
            fewer = do.scene_without(s, j)
            assert fewer.colours == [c for k, c in enumerate(s.colours) if k != j] and fewer.background == s.background
            px = do.scenes.render([fewer], 6)['pixels'][0]
            full = do.scenes.render([s], 6)['pixels'][0]
            gone = (do.classify(full) == list(do.scenes.OBJECT_COLOURS).index(s.colours[j])).sum()
            left = (do.classify(px) == list(do.scenes.OBJECT_COLOURS).index(s.colours[j])).sum()
            assert int(left) == 0 and int(gone) > 0, (s.caption(), j)
    vocab = do.scenes.vocabulary()
    torch.manual_seed(0)
    dims = Dims(dim=48, layers=1, heads=2, ffn_dim=96, latent_channels=48, text_dim=16, text_len=16,
                latent_height=16, latent_width=16, vocab_size=len(vocab))
    m = WanModel(dims).eval()
    torch.nn.init.normal_(m.head.head.weight, std=0.1)
    res = do.recovery(m, sc, vocab, seed=1, sampler='renoise', steps=2, context_blocks=2, generated_blocks=2)
    assert len(res) == 4 and all(0.0 <= v <= 1.0 for v in res.values()), res
    # the generated blocks follow the context: they differ between the two contexts, unless the cache keeps nothing
    # (window = one block: a block sees only itself), where the same noise gives the same blocks
    seen: dict = {}
    do.recovery(m, sc, vocab, seed=1, sampler='renoise', steps=2, context_blocks=2, generated_blocks=1, blocks_out=seen)
    assert float((seen['erased'] - seen['nothing erased']).abs().max()) > 1e-3
    blind: dict = {}
    do.recovery(m, sc, vocab, seed=1, sampler='renoise', steps=2, window=3, context_blocks=2, generated_blocks=1, blocks_out=blind)
    assert torch.equal(blind['erased'], blind['nothing erased'])
    # a faded context is the blend of the two, and every context reports its extra copies
    res = do.recovery(m, sc, vocab, seed=1, sampler='renoise', steps=2, context_blocks=2, generated_blocks=1, faded=[0.5])
    assert len(res) == 12 and 'faded to 0.5: that object drawn twice, extra copies a frame' in res, sorted(res)
    assert all(0.0 <= v <= 1.0 for k, v in res.items() if 'where it is' in k), res
    # a copied context: the object alone, again, with its colour, shape, size and speed, elsewhere; the context shows
    # one more component of its colour where the copy stands apart
    rng = np.random.default_rng(0)
    apart = 0
    for s in sc:
        for j in range(len(s.colours)):
            c = do.scene_copy(s, j, rng)
            assert (c.colours, c.shapes, c.radii) == ([s.colours[j]], [s.shapes[j]], [s.radii[j]]), c
            assert abs(float(np.hypot(*c.velocity[0])) - float(np.hypot(*s.velocity[j]))) < 1e-9
            apart += int(np.hypot(c.start[0][0] - s.start[j][0], c.start[0][1] - s.start[j][1]) > 2 * s.radii[j])
    assert apart >= 10, apart
    seen = {}
    res = do.recovery(m, sc, vocab, seed=1, sampler='renoise', steps=2, context_blocks=2, generated_blocks=1,
                      copied=0, blocks_out=seen)
    assert 'copied: that object drawn twice, extra copies a frame' in res and len(res) == 12, sorted(res)
    assert float((seen['copied'] - seen['nothing erased']).abs().max()) > 1e-3
    # from the second block on: another context than the copy in every frame, and still not the whole scene
    later = {}
    do.recovery(m, sc, vocab, seed=1, sampler='renoise', steps=2, context_blocks=2, generated_blocks=1, copied=1,
                blocks_out=later)
    assert float((later['copied'] - later['nothing erased']).abs().max()) > 1e-3
    assert float((later['copied'] - seen['copied']).abs().max()) > 1e-3
    # components: two squares apart are two; an L touching only through an edge is one; 4 px is too small
    mask = torch.zeros(2, 10, 10, dtype=torch.bool)
    mask[0, 1:5, 1:5] = True
    mask[0, 6:10, 6:10] = True
    mask[1, 0:4, 0:4] = True
    mask[1, 4:7, 3:4] = True
    mask[1, 8:10, 8:10] = True
    assert do.components(mask).tolist() == [2, 1]
    mask[0, 5, 5] = True  # one pixel touching both squares only diagonally joins neither (4-connected)
    assert do.components(mask).tolist() == [2, 1]
    # copy_beside_truth: two squares with the truth on one is the object kept and drawn again; with the truth between
    # them (two new ones apart from it), or one square alone, it is not
    two = torch.zeros(3, 32, 32, dtype=torch.bool)
    two[:, 2:8, 2:8] = True
    two[:, 20:26, 20:26] = True
    two[2, 20:26, 20:26] = False
    truth = torch.zeros(3, 32, 32, dtype=torch.bool)
    truth[0, 3:9, 2:8] = True  # centred 1 px from the first square's centre
    truth[1, 11:17, 11:17] = True
    truth[2, 3:9, 2:8] = True
    assert do.copy_beside_truth(*do.component_centroids(two), truth).tolist() == [True, False, False]
    centroids, kept = do.component_centroids(two[0])
    assert sorted(centroids[kept].tolist()) == [[4.5, 4.5], [22.5, 22.5]]


def test_centroid_speed() -> None:
    import math
    clips = sf.scenes.sample_scenes(3, 8)
    data = sf.scenes.render(clips, 24)
    p = {'colour': data['colour'], 'valid': data['valid']}
    speed = sf.centroid_speed(data['pixels'], p)
    for i, s in enumerate(clips):
        drawn = sum(math.hypot(vx, vy) for vx, vy in s.velocity) / len(s.velocity)
        # a bounce inside the stride shortens the chord; objects that overlap hide pixels: loose bounds
        assert 0.6 * drawn <= float(speed[i]) <= 1.1 * drawn + 0.05, (i, float(speed[i]), drawn)
    still = data['pixels'][:, :1].expand(-1, 24, -1, -1, -1)
    assert float(sf.centroid_speed(still, p).abs().max()) < 1e-4
    gone = {'colour': torch.full_like(data['colour'], 99), 'valid': data['valid']}
    assert bool(torch.isnan(sf.centroid_speed(data['pixels'], gone)).all())


def test_block_rewards() -> None:
    clips = sf.scenes.sample_scenes(4, 16)
    data = sf.scenes.render(clips, 6)
    p = {'colour': data['colour'], 'valid': data['valid']}
    r = sf.block_rewards(data['pixels'], p, 3)  # two blocks of 3 frames
    assert r.shape == (16, 2) and float(r.max()) <= 1 and float(r.min()) >= 0, r
    # the ground truth draws no object twice; where objects overlap one may hide: clips with every object in view
    whole = [i for i in range(16) if bool((r[i] == 1).all())]
    assert len(whole) >= 2, r
    keep = torch.tensor(whole[:2])
    px = data['pixels'][keep].clone()
    p = {k: v[keep] for k, v in p.items()}
    # clip 0, second block: its first object drawn again, a 10x10 square of its colour in a background-only corner
    corner = next((y, x) for y, x in ((0, 0), (0, 54), (54, 0), (54, 54))
                  if bool((px[0, 3:, y:y + 10, x:x + 10] == px[0, 3:, y:y + 1, x:x + 1]).all()))
    y, x = corner
    px[0, 3:, y:y + 10, x:x + 10] = torch.tensor(list(sf.scenes.OBJECT_COLOURS.values())[int(p['colour'][0, 0])],
                                                 dtype=px.dtype)
    n0 = int(p['valid'][0].sum())
    # clip 1: every object gone from its first block (painted with the background)
    px[1, :3] = px[1, :3, :1, :1].clone().expand(-1, 64, 64, -1)
    r = sf.block_rewards(px, p, 3)
    assert abs(float(r[0, 0]) - 1) < 1e-6 and abs(float(r[0, 1]) - (1 - 1 / n0)) < 1e-6, (r[0], n0)
    assert abs(float(r[1, 0])) < 1e-6 and abs(float(r[1, 1]) - 1) < 1e-6, r[1]
    w = sf.reward_weights(r, 3.0)
    assert torch.allclose(w.mean(dim=0), torch.ones(2)), w  # mean 1 for each block index
    assert float(w[1, 0]) < float(w[0, 0]) and float(w[0, 1]) < float(w[1, 1]), w  # lower reward, lower weight
    assert torch.allclose(sf.reward_weights(r, 0.0), torch.ones_like(r))
    assert abs(sf.effective_share(torch.ones(4, 3)) - 1) < 1e-6
    assert abs(sf.effective_share(torch.tensor([[4.0], [0.0], [0.0], [0.0]])) - 0.25) < 1e-6


def test_shape_measure() -> None:
    p = do.random_prompts(5, 64, do.scenes.vocabulary(), 16, 'cpu').take(torch.arange(64))
    one = {k: v.clone() for k, v in p.items()}
    one['valid'] = torch.zeros_like(p['valid'])
    one['valid'][:, 0] = True  # one object a clip: nothing overlaps
    one['count'] = torch.ones_like(p['count'])
    pos = torch.tensor([[20.0, 24.0], [44.0, 40.0], [30.0, 46.0]])[None].expand(64, -1, -1)
    ref = do.reference_areas(one)
    right = do.detect(do.render_openings(pos, one), one, ref)
    assert right['objects_present'] == 1.0 and right['shape_accuracy_present'] == 1.0, right
    assert right['shape_iou_median_present'] > 0.85, right
    wrong = dict(one, shape=(one['shape'] + 1) % 3)  # drawn as another shape than the prompt's
    got = do.detect(do.render_openings(pos, wrong), one, ref)
    assert got['shape_accuracy_present'] == 0.0 and got['shape_iou_median_present'] < right['shape_iou_median_present'] - 0.05, got
    # a ragged disc (its radius bent with the angle) against the clean one
    c = torch.arange(64, dtype=torch.float32) + 0.5
    dx, dy = c[None, :] - 32, c[:, None] - 32
    clean = ((dx * dx + dy * dy).sqrt() <= 7).float()
    ragged = ((dx * dx + dy * dy).sqrt() <= 7 * (1 + 0.35 * torch.sin(5 * torch.atan2(dy, dx)))).float()
    ious = do.shape_ious(torch.stack([clean, ragged]))
    assert int(ious[0].argmax()) == 0 and float(ious[0, 0]) > 0.9 and float(ious[1, 0]) < float(ious[0, 0]) - 0.1, ious
    # eval_shapes' split by object count: two objects of different shapes drawn with each other's shape count as
    # "another object's shape", a shape neither object has as "neither"
    import eval_shapes as es
    two = {k: v.clone() for k, v in p.items()}
    two['count'] = torch.full_like(p['count'], 2)
    two['valid'] = (torch.arange(3)[None, :] < 2).expand(64, -1).clone()
    two['colour'][:, 0], two['colour'][:, 1] = 1, 3  # two colours, whatever the drawn prompt's count
    two['shape'][:, 0], two['shape'][:, 1] = 0, 1  # circle, square
    pos2 = torch.tensor([[16.0, 16.0], [46.0, 46.0], [0.0, 0.0]])[None].expand(64, -1, -1)
    ref2 = do.reference_areas(two)
    key = "by object count: present, and of the frames right / another object's shape / neither"
    assert es.measure(do.render_openings(pos2, two), two, ref2)[key] == {'2': '1.000 1.000 0.000 0.000'}
    crossed = dict(two, shape=two['shape'][:, [1, 0, 2]])
    assert es.measure(do.render_openings(pos2, crossed), two, ref2)[key] == {'2': '1.000 0.000 1.000 0.000'}
    triangles = dict(two, shape=torch.full_like(two['shape'], 2))
    assert es.measure(do.render_openings(pos2, triangles), two, ref2)[key] == {'2': '1.000 0.000 0.000 1.000'}
    # extra copies: none in the two-object frames; the first object drawn a second time apart, one a frame
    px2 = do.render_openings(pos2, two)
    assert es.measure(px2, two, ref2)['extra copies a frame'] == 0.0
    # a third object in slot 0's colour, apart from both
    again = dict(two, colour=two['colour'][:, [0, 1, 0]], valid=torch.ones_like(two['valid']))
    twice = do.render_openings(torch.tensor([[16.0, 16.0], [46.0, 46.0], [16.0, 46.0]])[None].expand(64, -1, -1), again)
    assert es.measure(twice, two, ref2)['extra copies a frame'] == 0.5  # one extra of two prompted objects


def test_outline_weighting() -> None:
    import argparse
    m = make_model()
    src = tt.DeviceScenes(tt.scenes.vocabulary(), m.dims.text_len, 'cpu', seed=9)
    args = input_args(batch_open=4, batch_tf=2, window=2 * F)
    dims = tt.Dims(dim=48, layers=1, heads=2, ffn_dim=96, latent_channels=48, text_dim=16, text_len=16,
                   latent_height=16, latent_width=16, vocab_size=len(tt.scenes.vocabulary()), prediction='sample')
    infer_s = torch.tensor([1.0, 0.9, 0.7, 0.4])
    plain = tt.make_inputs(src, args, dims, infer_s)
    assert 'o_weight' not in plain and 't_weight' not in plain
    after_plain = src.gen.get_state()
    src = tt.DeviceScenes(tt.scenes.vocabulary(), m.dims.text_len, 'cpu', seed=9)
    weighted = tt.make_inputs(src, argparse.Namespace(**{**vars(args), 'outline_weight': 4.0}), dims, infer_s)
    assert torch.equal(src.gen.get_state(), after_plain)  # the same draws: the weights cost no random numbers
    for k in plain:
        assert torch.equal(plain[k], weighted[k]), k
    # the weights unpacked to pixels are 5 exactly within 1.5 px of an outline of the same scenes
    src = tt.DeviceScenes(tt.scenes.vocabulary(), m.dims.text_len, 'cpu', seed=9)
    b = src.sample(4)
    dist = src.draw(b, F)['outline_distance']
    w_px = tt.scenes.depth_to_space(weighted['o_weight'] / 127.5 - 1)  # depth_to_space maps v -> (v + 1) 127.5
    want = torch.where(dist <= 1.5, 5.0, 1.0)[..., None].expand(*dist.shape, 3)
    assert torch.allclose(w_px, want, atol=1e-4) and 0 < float((want == 5).float().mean()) < 0.2
    # weighted_mse: uniform weights = the plain mean; an error on outline entries costs more than elsewhere
    pred, target, w = torch.zeros(weighted['o_weight'].shape), torch.zeros(weighted['o_weight'].shape), weighted['o_weight']
    assert torch.allclose(tt.weighted_mse(pred + 1, target, torch.ones_like(w)), tt.weighted_mse(pred + 1, target, None))
    on, off = w > 1, w == 1
    assert float(tt.weighted_mse(pred + on.float(), target, w)) > 2 * float(tt.weighted_mse(pred + on.float(), target, None))
    assert float(tt.weighted_mse(pred + off.float(), target, w)) < float(tt.weighted_mse(pred + off.float(), target, None))


def test_shape_swap() -> None:
    import argparse
    vocab = tt.scenes.vocabulary()
    dims = tt.Dims(dim=48, layers=1, heads=2, ffn_dim=96, latent_channels=48, text_dim=16, text_len=16,
                   latent_height=16, latent_width=16, vocab_size=len(vocab), prediction='sample')
    args = input_args(batch_open=16, batch_tf=0, window=2 * F)
    infer_s = torch.tensor([1.0, 0.9, 0.7, 0.4])
    src = tt.DeviceScenes(vocab, 16, 'cpu', seed=12)
    plain = tt.make_inputs(src, args, dims, infer_s)
    after_plain = src.gen.get_state()
    src = tt.DeviceScenes(vocab, 16, 'cpu', seed=12)
    b = src.sample(16)
    lat = tt.scenes.space_to_depth(src.render(b, F))
    src = tt.DeviceScenes(vocab, 16, 'cpu', seed=12)
    swapped = tt.make_inputs(src, argparse.Namespace(**{**vars(args), 'shape_swap': 1.0}), dims, infer_s)
    assert not torch.equal(src.gen.get_state(), after_plain)  # the swap draws come after every draw of the plain run
    s_clip = plain['o_t'][:, 0] / 1000
    sv = s_clip[:, None, None, None, None]
    floor = sv.clamp_min(0.05)
    for x in (plain, swapped):  # both targets lead to the true frames: x0 = noisy - max(s, floor) * target
        assert torch.allclose(x['o_noisy'] - floor * x['o_target'], lat, atol=1e-4)
    seen = (swapped['o_noisy'] - plain['o_noisy']) / (1 - sv).clamp_min(1e-3) + lat  # the same noise: only the input image differs
    usable = s_clip < 0.99  # (1 - s) is the factor the input image is recovered with
    changed = ((seen - lat).abs() > 1e-3) & usable[:, None, None, None, None]
    assert bool(changed.any())
    # each changed clip shows the same scene with other shapes: its input is one of the renders with shapes drawn again
    for i in torch.nonzero(usable).flatten().tolist():
        k = int(b['count'][i])
        options = [torch.tensor(c) for c in __import__('itertools').product(range(3), repeat=k)]
        renders = [tt.scenes.space_to_depth(src.render({key: v[i:i + 1] for key, v in dict(b, shape=torch.cat([o, b['shape'][i, k:]])[None].expand(16, -1)).items()}, F))
                   for o in options]
        assert any(torch.allclose(seen[i:i + 1], r, atol=2e-3) for r in renders), i


def test_word_following() -> None:
    import eval_shapes as es
    vocab = do.scenes.vocabulary()
    p = tt.held_out_prompts(0, 12, vocab, 16, 'cpu').take(torch.arange(12))
    for word in ('shape', 'colour'):
        q = es.with_word_changed(p, word, vocab, 16)
        assert torch.equal(q['lens'], p['lens'])
        diff = (q['ids'] != p['ids']).sum(dim=1)
        assert bool((diff == 1).all()), (word, diff)
        changed = q[word] != p[word]
        assert bool(changed[:, 0].all()) and not bool(changed[:, 1:].any())
    # the measure itself: an oracle that draws each prompt's truth follows both words fully (1), a model that ignores
    # the prompt not at all (0)
    truth = lambda model, prompts, lat, s, g, gen: do.scenes.space_to_depth(do.render_openings(es.canonical_positions(prompts), prompts))  # noqa: E731
    ignore = lambda model, prompts, lat, s, g, gen: lat  # noqa: E731
    real = es.x0_estimates
    try:
        for fake, want in ((truth, 1.0), (ignore, 0.0)):
            es.x0_estimates = fake
            got = [es.word_following(None, p, w, 0.9, vocab, 3) for w in ('shape', 'colour')]
            assert all(abs(v - want) < 1e-6 for v in got), (want, got)
    finally:
        es.x0_estimates = real
    # the word vectors: shape words given one row come out parallel, distinct rows do not
    torch.manual_seed(0)
    dims = Dims(dim=48, layers=1, heads=2, ffn_dim=96, latent_channels=48, text_dim=16, text_len=16,
                latent_height=16, latent_width=16, vocab_size=len(vocab))
    m = WanModel(dims)
    for q in m.text_embedding.parameters():
        torch.nn.init.normal_(q, std=0.3)
    before = es.word_vectors(m, vocab)
    assert before['shape words']['mean pairwise cosine'] < 0.9, before
    with torch.no_grad():
        table = m.text_encoder.embedding.weight
        for w in do.scenes.SHAPES:
            table[vocab.index(w)] = table[vocab.index('circle')]
    after = es.word_vectors(m, vocab)
    assert abs(after['shape words']['mean pairwise cosine'] - 1) < 1e-3 and after['colour words'] == before['colour words'], after

def test_text_path() -> None:
    m = WanModel(Dims(layers=2, vocab_size=19))
    chosen = {n for n, _ in m.named_parameters() if tt.text_path(n)}
    assert 'text_encoder.embedding.weight' in chosen
    for n, _ in m.named_parameters():
        on_path = n.startswith(('text_encoder.', 'text_embedding.')) or '.cross_attn.' in n or '.norm3.' in n
        assert (n in chosen) == on_path, n
    assert not any(n.startswith(('head.', 'patch_embedding.', 'time_')) or '.self_attn.' in n or '.ffn.' in n for n in chosen)


def test_shape_swap_tf() -> None:
    import argparse
    import itertools
    vocab = tt.scenes.vocabulary()
    dims = tt.Dims(dim=48, layers=1, heads=2, ffn_dim=96, latent_channels=48, text_dim=16, text_len=16,
                   latent_height=16, latent_width=16, vocab_size=len(vocab), prediction='sample')
    n, frames = 8, 2 * F
    args = input_args(batch_open=0, batch_tf=n, window=frames)
    infer_s = torch.tensor([1.0, 0.9, 0.7, 0.4])
    src = tt.DeviceScenes(vocab, 16, 'cpu', seed=13)
    plain = tt.make_inputs(src, args, dims, infer_s)
    after_plain = src.gen.get_state()
    src = tt.DeviceScenes(vocab, 16, 'cpu', seed=13)
    b = src.sample(n)
    lat = tt.scenes.space_to_depth(src.render(b, frames))
    src = tt.DeviceScenes(vocab, 16, 'cpu', seed=13)
    swapped = tt.make_inputs(src, argparse.Namespace(**{**vars(args), 'shape_swap_tf': 1.0}), dims, infer_s)
    assert not torch.equal(src.gen.get_state(), after_plain)
    for k in ('t_clean', 't_t', 't_ids', 't_lens'):
        assert torch.equal(plain[k], swapped[k]), k
    s = plain['t_t'] / 1000  # [n, frames]
    sv = s[:, None, :, None, None]
    floor = sv.clamp_min(0.05)
    for x in (plain, swapped):
        assert torch.allclose(x['t_noisy'] - floor * x['t_target'], lat, atol=1e-4)
    seen = (swapped['t_noisy'] - plain['t_noisy']) / (1 - sv).clamp_min(1e-3) + lat
    usable = (s < 0.99).all(dim=1)
    assert bool(((seen - lat).abs() > 1e-3).any(dim=(1, 2, 3, 4))[usable].any())
    for i in torch.nonzero(usable).flatten().tolist():
        k = int(b['count'][i])
        renders = []
        for o in itertools.product(range(3), repeat=k):
            shape = torch.cat([torch.tensor(o), b['shape'][i, k:]])[None]
            one = {key: v[i:i + 1] for key, v in b.items()}
            renders.append(tt.scenes.space_to_depth(src.render(dict(one, shape=shape), frames)))
        assert any(torch.allclose(seen[i:i + 1], r, atol=2e-3) for r in renders), i


def test_shape_swap_min_s() -> None:
    """--shape-swap-min-s: the same draws as the swaps at every level; a frame below the level shows the truth."""
    import argparse
    vocab = tt.scenes.vocabulary()
    dims = tt.Dims(dim=48, layers=1, heads=2, ffn_dim=96, latent_channels=48, text_dim=16, text_len=16,
                   latent_height=16, latent_width=16, vocab_size=len(vocab), prediction='sample')
    args = input_args(batch_open=16, batch_tf=8, window=2 * F)
    infer_s = torch.tensor([1.0, 0.9, 0.7, 0.4])
    for stream in ('o', 't'):  # one stream at a time: the opening's swap draws come before the other stream's draws
        only = {'batch_tf': 0} if stream == 'o' else {'batch_open': 0}

        def inputs(**change):
            src = tt.DeviceScenes(vocab, 16, 'cpu', seed=14)
            return tt.make_inputs(src, argparse.Namespace(**{**vars(args), **only, **change}), dims, infer_s)
        plain, every = inputs(), inputs(shape_swap=1.0, shape_swap_tf=1.0)
        s = plain[f'{stream}_t'] / 1000  # [n, frames]
        level = float(s.flatten().sort().values[s.numel() // 2])  # a level some frames have exactly
        high = (s >= level)[:, None, :, None, None]
        want = torch.where(high, every[f'{stream}_noisy'], plain[f'{stream}_noisy'])
        got = inputs(shape_swap=1.0, shape_swap_tf=1.0, shape_swap_min_s=level)[f'{stream}_noisy']
        assert torch.equal(got, want), stream
        # both kinds of frames occur, and the swap changed some of the high ones
        assert bool(high.any()) and bool((~high).any()), stream
        assert not torch.equal(want, plain[f'{stream}_noisy']), stream


def test_text_neighbours() -> None:
    import dataclasses
    import tempfile
    from model import TEXT_NEIGHBOUR_KEYS, load_weights, save_weights, text_positional_encoding
    from common import set_lr
    plain = make_model()
    ids = torch.tensor([[3, 7, 2, 9, 0, 0], [5, 1, 1, 4, 8, 6]])
    lens = torch.tensor([4, 6])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'plain.safetensors')
        save_weights(plain, path)
        m = WanModel(dataclasses.replace(plain.dims, text_neighbours=True))
        try:
            load_weights(m, path)
            raise AssertionError('a checkpoint without the neighbour tables must be refused by default')
        except KeyError:
            pass
        assert load_weights(m, path, missing_ok=TEXT_NEIGHBOUR_KEYS) == list(TEXT_NEIGHBOUR_KEYS)
    assert torch.equal(m.encode_text_batch(ids, lens), plain.encode_text_batch(ids, lens))
    torch.manual_seed(3)
    t = m.text_encoder
    with torch.no_grad():
        t.previous.weight.normal_()
        t.next.weight.normal_()
    got = m.encode_text_batch(ids, lens)
    pe = text_positional_encoding(6, 16)
    for b in range(2):
        n = int(lens[b])
        for i in range(6):
            want = torch.zeros(16)
            if i < n:
                want = t.embedding.weight[ids[b, i]] + pe[i]
                if i > 0:
                    want = want + t.previous.weight[ids[b, i - 1]]
                if i + 1 < n:
                    want = want + t.next.weight[ids[b, i + 1]]
            assert torch.allclose(got[b, i], want, atol=1e-6), (b, i)
        assert torch.allclose(m.encode_text(ids[b, :n].tolist())[None], got[b:b + 1], atol=1e-6), b
    swapped = ids.clone()
    swapped[0, [1, 2]] = ids[0, [2, 1]]
    assert not torch.allclose(m.encode_text_batch(swapped, lens)[0, 0], got[0, 0])
    assert torch.allclose(plain.encode_text_batch(swapped, lens)[0, 0], plain.encode_text_batch(ids, lens)[0, 0])
    from common import load_model
    with tempfile.TemporaryDirectory() as d:  # the tools build the tables when the file has them, as the runtime does
        path = os.path.join(d, 'neighbours.safetensors')
        save_weights(m, path)
        back = load_model(plain.dims, path, 'cpu')
        assert torch.equal(back.encode_text_batch(ids, lens), got)
        save_weights(plain, path)
        assert not hasattr(load_model(m.dims, path, 'cpu').text_encoder, 'next')
        save_weights(m, path)
        try:  # a file's tables are never dropped silently: a model built without them refuses it
            load_weights(make_model(), path)
            raise AssertionError('a checkpoint with keys the model lacks must be refused')
        except KeyError as e:
            assert 'text_encoder.next.weight' in str(e), e
    opt = torch.optim.AdamW([{'params': [t.embedding.weight]}, {'params': [t.previous.weight], 'lr_scale': 30.0}], lr=1.0)
    set_lr(opt, 2e-4)
    assert [g['lr'] for g in opt.param_groups] == [2e-4, 2e-4 * 30.0]
    # --neighbour-tables previous: a step moves the previous table only; the next one stays as it started
    fresh = WanModel(dataclasses.replace(plain.dims, text_neighbours=True))
    tt.train_neighbour_tables(fresh, 'previous')
    trained = [q for q in fresh.parameters() if q.requires_grad]
    assert any(q is fresh.text_encoder.previous.weight for q in trained)
    assert not any(q is fresh.text_encoder.next.weight for q in trained)
    opt = torch.optim.AdamW(trained, lr=1e-2)
    fresh.encode_text_batch(ids, lens).square().sum().backward()
    opt.step()
    assert fresh.text_encoder.previous.weight.abs().sum() > 0
    assert fresh.text_encoder.next.weight.abs().sum() == 0


def test_first_frames_negated() -> None:
    import json
    import tempfile

    import common
    import scenes

    px = scenes.render(scenes.sample_scenes(4, 2), 9)['pixels']
    try:
        plain = scenes.space_to_depth(px)
        scenes.set_first_frames_negated(3)
        lat = scenes.space_to_depth(px)
        assert torch.equal(lat[:, :, :3], -plain[:, :, :3]) and torch.equal(lat[:, :, 3:], plain[:, :, 3:])
        assert torch.allclose(scenes.depth_to_space(lat), px, atol=1e-3)
        # a slice from frame 2 on: its frame 0 is the video's frame 2, the last negated one
        assert torch.allclose(scenes.depth_to_space(lat[:, :, 2:], first_frame=2), px[:, 2:], atol=1e-3)
        assert torch.equal(scenes.space_to_depth(px[:, 2:], first_frame=2), lat[:, :, 2:])
        # decoding as if the slice began the video gets its first frame wrong: the check can fail
        assert not torch.allclose(scenes.depth_to_space(lat[:, :, 2:]), px[:, 2:], atol=1e-3)
        with tempfile.TemporaryDirectory() as d:
            spec = dict(json.load(open(common.DEFAULT_MODEL_JSON)), firstFramesNegated=3)
            path = os.path.join(d, 'model.json')
            json.dump(spec, open(path, 'w'))
            scenes.set_first_frames_negated(0)
            dims = common.load_dims(path, scenes.vocabulary())
            assert dims.first_frames_negated == 3 and scenes.FIRST_FRAMES_NEGATED == 3
            assert dims.to_dict()['firstFramesNegated'] == 3
            assert 'firstFramesNegated' not in common.load_dims(common.DEFAULT_MODEL_JSON, scenes.vocabulary()).to_dict()
            assert scenes.FIRST_FRAMES_NEGATED == 0
    finally:
        scenes.set_first_frames_negated(0)


def test_rollout_from_previous_frame() -> None:
    m = make_model()
    seen = []
    forward = m.forward

    def recording(x, t, fpos, **kw):
        seen.append((int(fpos[0]), float(t[0, 0]), x.detach().clone()))
        return forward(x, t, fpos, **kw)

    m.forward = recording  # type: ignore[method-assign]
    d = m.dims
    xkv = m.cross_kv(torch.randn(B, d.text_len, d.text_dim))
    sig = [1.0, 0.9375, 0.8333, 0.625]
    rest = [0.92, 0.85, 0.73, 0.5]
    with torch.no_grad():
        plain = sf.rollout(m, xkv, B, 3, sig, torch.Generator().manual_seed(4), 12, 3, F)
        seen.clear()
        warm = sf.rollout(m, xkv, B, 3, sig, torch.Generator().manual_seed(4), 12, 3, F, sig_rest=rest)
    assert torch.allclose(warm[:, :, :F], plain[:, :, :F]), 'the first block starts from pure noise either way'
    denoising = [(f, t, x) for f, t, x in seen if t > 0]
    for b in (1, 2):
        steps = [(t, x) for f, t, x in denoising if f == b * F]
        assert [round(t / 1000, 4) for t, _ in steps] == [round(v, 4) for v in rest], steps
        # the noise the block drew first: the generator replayed past the earlier blocks' draws (one a step)
        gen = torch.Generator().manual_seed(4)
        shape = (B, d.latent_channels, F, d.latent_height, d.latent_width)
        for _ in range(len(sig) + (b - 1) * len(rest)):
            torch.randn(shape, generator=gen)
        noise = torch.randn(shape, generator=gen)
        prev = warm[:, :, b * F - 1:b * F]
        assert torch.allclose(steps[0][1], (1 - rest[0]) * prev + rest[0] * noise, atol=1e-6), f'block {b}'
    assert not torch.allclose(warm[:, :, F:], plain[:, :, F:]), 'the check can fail: later blocks differ'


def test_ode_regression() -> None:
    steps = [700.0, 525.0, 350.0, 175.0]
    grid = sf.ode_grid(steps, 3)
    assert len(grid) == 13 and grid[-1] == 0.0, grid
    assert [round(v, 6) for v in grid[::3][:4]] == [round(v, 6) for v in do.sigmas_of(steps)], grid
    assert all(a > b for a, b in zip(grid, grid[1:])), 'decreasing'
    torch.manual_seed(3)
    nb = 3
    shape = (B, 4, nb * F, 5, 5)
    x0, noise = torch.randn(shape), torch.randn(shape)
    g = torch.tensor([sf.ode_grid([1000.0, 750.0, 500.0, 250.0], 3)] + [grid] * (nb - 1))
    s0 = g[:, 0].repeat_interleave(F)[None, None, :, None, None]
    start = (1 - s0) * x0 + s0 * noise
    real_flow, teacher_forced_flow = sf.real_flow, sf.teacher_forced_flow
    try:
        sf.real_flow = lambda teacher, clean, x, s_frame, *a: (x - x0) / s_frame[:, None, :, None, None]
        states = sf.teacher_ode(None, x0, start, g, None, None, None, 1.0, None, F)
        assert torch.allclose(states[-1], x0, atol=1e-5), 'Euler on a straight line ends at its sample'
        for j in range(g.shape[1]):
            sj = g[:, j].repeat_interleave(F)[None, None, :, None, None]
            assert torch.allclose(states[j], (1 - sj) * x0 + sj * noise, atol=1e-5), j
        asked = []

        def student(offset):
            def flow(model, clean, x, s_frame, xkv, mask):
                asked.append((x.clone(), s_frame.clone()))
                return (x - x0 - offset) / s_frame[:, None, :, None, None]
            return flow

        sf.teacher_forced_flow = student(0.0)
        exact = sf.ode_regression(None, None, x0, start, g, 3, None, None, None, None, 1.0, None, F,
                                  gen=torch.Generator().manual_seed(1))
        assert float(exact) < 1e-9, float(exact)
        x, s_frame = asked[-1]
        for b in range(nb):
            levels = {round(float(v), 5) for v in g[b, ::3][:4]}
            for i in range(B):
                s = s_frame[i, b * F:(b + 1) * F]
                assert len(set(s.tolist())) == 1 and round(float(s[0]), 5) in levels, (b, s)
        sv = s_frame[:, None, :, None, None]
        assert torch.allclose(x, (1 - sv) * x0 + sv * noise, atol=1e-5), 'the ODE state at the level asked'
        for level in (0, 2):
            sf.ode_regression(None, None, x0, start, g, 3, None, None, None, None, 1.0, None, F,
                              gen=torch.Generator().manual_seed(1), min_level=level)
            _, s_frame = asked[-1]
            starts = {round(float(v), 5) for v in g[:, 0]}  # each block's first level
            firsts = {round(float(v), 5) for v in s_frame.flatten()} & starts
            if level == 0:
                assert firsts, 'some video starts from its block\'s first level (the check can fail)'
            else:
                lowest = {round(float(v), 5) for b in range(nb) for v in g[b, ::3][level:4]}
                assert not firsts and {round(float(v), 5) for v in s_frame.flatten()} <= lowest, s_frame
        sf.teacher_forced_flow = student(0.1)
        off = sf.ode_regression(None, None, x0, start, g, 3, None, None, None, None, 1.0, None, F,
                                gen=torch.Generator().manual_seed(1))
        assert abs(float(off) - 0.01) < 1e-6, float(off)

        def misses_opening(model, clean, x, s_frame, xkv, mask):
            offset = torch.zeros_like(x)
            offset[:, :, :F] = 0.1
            return (x - x0 - offset) / s_frame[:, None, :, None, None]

        sf.teacher_forced_flow = misses_opening
        args = (None, None, x0, start, g, 3, None, None, None, None, 1.0, None, F)
        assert float(sf.ode_regression(*args, gen=torch.Generator().manual_seed(1), first_block=1)) < 1e-9
        assert float(sf.ode_regression(*args, gen=torch.Generator().manual_seed(1))) > 1e-3, 'the check can fail'
        # target weights: a weight per video and block of the teacher's samples; the opening's error (0.01 a value)
        # counts by its block's weight, the others' (0) not at all
        seen = []

        def weights(target):
            seen.append(target.shape)
            w = torch.ones(B, target.shape[2] // F)
            w[:, 0] = 3.0
            return w

        weighted = sf.ode_regression(*args, gen=torch.Generator().manual_seed(1), target_weights=weights)
        assert abs(float(weighted) - 3.0 * 0.01 / nb) < 1e-6, float(weighted)
        assert seen[-1] == x0.shape
        later = sf.ode_regression(*args, gen=torch.Generator().manual_seed(1), first_block=1, target_weights=weights)
        assert float(later) < 1e-9 and seen[-1] == x0[:, :, F:].shape
    finally:
        sf.real_flow, sf.teacher_forced_flow = real_flow, teacher_forced_flow


def test_context_fading() -> None:
    n, frames = 8, 6 * F
    assert_share_zero_is_off(lambda *a: tt.erase_context_objects(*a, (0.5, 0.5)), 7, n, frames)
    src, b, lat, clean = erasure_clips(7, n, frames)
    faded, changed = tt.erase_context_objects(src, b, lat, clean, 1.0, (0.5, 0.5))
    assert_one_run_of_blocks(changed)
    delta = (faded - clean).abs().amax(dim=(1, 3, 4))
    assert float(delta[~changed].max()) == 0.0
    without = renders_without(src, b, frames)
    for i in range(n):
        for f in torch.nonzero(changed[i]).flatten().tolist():
            got = faded[i, :, f] - (clean[i, :, f] - lat[i, :, f])
            want = [0.5 * lat[i, :, f] + 0.5 * without[j][i, :, f] for j in range(int(b['count'][i]))]
            assert any(torch.allclose(got, w, atol=1e-5) for w in want), (i, f)
            assert float((got - lat[i, :, f]).abs().max()) > 0.05  # the object really faded
    kept, changed = tt.erase_context_objects(src, b, lat, clean, 1.0, (0.5, 0.5), torch.ones(n, dtype=torch.bool))
    assert torch.equal(kept, clean) and not bool(changed.any()), 'excluded clips are not changed'


def test_context_copies() -> None:
    n, frames = 24, 6 * F
    assert_share_zero_is_off(tt.copy_context_objects, 7, n, frames)
    src, b, lat, clean = erasure_clips(7, n, frames)
    copied, changed, copy_drawn = tt.copy_context_objects(src, b, lat, clean, 1.0, first_block=2)
    assert_one_run_of_blocks(changed)
    # the copy's pixels: where the changed frames differ from the render, and drawn in every frame of the clip
    shown = (tt.scenes.depth_to_space(copied - (clean - lat)) != tt.scenes.depth_to_space(lat)).any(dim=-1)
    assert bool((shown <= copy_drawn).all()) and bool(copy_drawn.any(dim=(2, 3)).float().mean() > 0.9)
    assert float((shown[changed].sum() / copy_drawn[changed].sum())) > 0.7  # mostly painted over the render
    assert not bool(changed[:, :2 * F].any())  # from block 2
    delta = (copied - clean).abs().amax(dim=(1, 3, 4))
    assert float(delta[~changed].max()) == 0.0
    p = {'colour': b['colour'], 'valid': b['valid']}
    got = do.prompted_components(tt.scenes.depth_to_space(copied - (clean - lat)), p)
    truth = do.prompted_components(tt.scenes.depth_to_space(lat), p)
    extra = ((got - truth) * b['valid'][:, None, :]).sum(dim=2)  # [n, frames]
    assert bool((extra[~changed] == 0).all())
    assert float((extra[changed] == 1).float().mean()) > 0.7, extra[changed]  # a copy apart (it may overlap)
    assert bool((extra[changed] >= 0).all())
    src, b, lat, clean = erasure_clips(7, n, frames)
    keep = torch.arange(n) % 2 == 0
    _, changed, copy_drawn = tt.copy_context_objects(src, b, lat, clean, 1.0, exclude=keep)
    assert not bool(changed[keep].any()) and bool(changed[~keep].any(dim=1).all())
    assert not bool(copy_drawn[keep].any())


def test_copy_weighting() -> None:
    import argparse
    vocab = tt.scenes.vocabulary()
    dims = tt.Dims(dim=48, layers=1, heads=2, ffn_dim=96, latent_channels=48, text_dim=16, text_len=16,
                   latent_height=16, latent_width=16, vocab_size=len(vocab), prediction='sample')
    infer_s = torch.tensor([1.0, 0.9, 0.7, 0.4])
    args = argparse.Namespace(**{**vars(input_args(batch_open=0, batch_tf=8, window=6 * F)), 'context_copy': 1.0})
    src = tt.DeviceScenes(vocab, 16, 'cpu', seed=12)
    plain = tt.make_inputs(src, args, dims, infer_s)
    after_plain = src.gen.get_state()
    assert 't_weight' not in plain
    src = tt.DeviceScenes(vocab, 16, 'cpu', seed=12)
    weighted = tt.make_inputs(src, argparse.Namespace(**{**vars(args), 'copy_weight': 3.0}), dims, infer_s)
    assert torch.equal(src.gen.get_state(), after_plain)  # the weights cost no random numbers
    for k in plain:
        assert torch.equal(plain[k], weighted[k]), k
    # the weight is 1 up to the end of the copied run's first block, then 1 or 4 (4 where the copy stands)
    w_px = tt.scenes.depth_to_space(weighted['t_weight'] / 127.5 - 1)[..., 0]  # [n, frames, H, W]
    bare = tt.make_inputs(tt.DeviceScenes(vocab, 16, 'cpu', seed=12), input_args(batch_open=0, batch_tf=8, window=6 * F),
                          dims, infer_s)['t_clean']  # the same clips without the copy
    changed = (plain['t_clean'] != bare).any(dim=(1, 3, 4))  # the frames the copy changed
    first = changed.float().argmax(dim=1)
    frame = torch.arange(6 * F)[None]
    assert torch.allclose(w_px[frame.expand(8, -1) < (first[:, None] + F)], torch.tensor(1.0), atol=1e-4)
    later = w_px[(frame >= first[:, None] + F) & changed.any(dim=1, keepdim=True)]
    assert bool((((later - 1).abs() < 1e-4) | ((later - 4).abs() < 1e-4)).all()) and float((later > 2).float().mean()) > 0.005
    # where the copy is shown in a frame whose context already showed it, the weight is 4
    shown = (tt.scenes.depth_to_space(plain['t_clean']) != tt.scenes.depth_to_space(bare)).any(dim=-1)
    shown_later = shown & (frame >= first[:, None] + F)[:, :, None, None]
    assert bool(shown_later.any()) and bool((w_px[shown_later] > 3.99).all())
    # refused: a weight without copies, a negative weight (exit 2, before anything is read or written)
    for argv in (['--copy-weight', '2'], ['--copy-weight', '-1', '--context-copy', '0.5'], ['--context-copy', '1.5']):
        try:
            tt.main(argv + ['--out', '/nonexistent/never-written'])
            raise AssertionError(f'{argv} was accepted')
        except SystemExit as e:
            assert e.code == 2, (argv, e.code)
    # copy_weights alone: a clip with no copy keeps weight 1 everywhere
    none = tt.copy_weights(torch.zeros(2, 6 * F, dtype=torch.bool), torch.zeros(2, 6 * F, 64, 64, dtype=torch.bool), 3.0)
    assert torch.equal(none, torch.ones_like(none))


def test_critic_warmup() -> None:
    import tempfile
    assert [sf.student_step(i, 2) for i in range(4)] == [None, None, 0, 1]
    dims = sf.load_dims(sf.DEFAULT_MODEL_JSON, sf.scenes.vocabulary())

    def load_file(path: str) -> dict:
        return sf.load_model(dims, path, 'cpu').state_dict()

    start = load_file(sf.DEFAULT_WEIGHTS)
    changed = {}
    for warmup in (2, 1):
        with tempfile.TemporaryDirectory() as d:
            sf.main(['--out', d, '--device', 'cpu', '--steps', '2', '--critic-warmup', str(warmup), '--batch', '2',
                     '--rollout-blocks', '5', '--critic-steps', '1', '--prompts', '64', '--no-eval', '--no-teacher-eval',
                     '--log-every', '1'])
            with open(os.path.join(d, 'loss.json')) as f:
                assert sf.json.load(f)['steps'] == 2
            got = load_file(os.path.join(d, 'model.safetensors'))
        changed[warmup] = sorted(k for k in start if not torch.equal(start[k], got[k]))
    assert changed[2] == [], changed[2]
    assert len(changed[1]) > 10, changed[1]


def test_real_score_mirror() -> None:
    # the latent of mirrored frames is the mirrored latent; mirroring twice gives the clip back; only the chosen clips
    clips = sf.scenes.sample_scenes(5, 3)
    px = sf.scenes.render(clips, 4)['pixels']  # [B, T, H, W, 3]
    assert not torch.equal(px, px.flip(3))  # the scenes are not symmetric already, or the check proves nothing
    lat = sf.scenes.space_to_depth(px, first_frame=0)
    assert torch.equal(sf.scenes.mirror_latent(lat), sf.scenes.space_to_depth(px.flip(3)))
    neg = sf.scenes.space_to_depth(px, first_frame=0)
    neg[:, :, :2] *= -1  # the leading frames' sign commutes with the mirror
    assert torch.equal(sf.scenes.mirror_latent(neg)[:, :, :2], -sf.scenes.space_to_depth(px.flip(3))[:, :, :2])
    which = torch.tensor([True, False, True])
    got = sf.mirrored_where(lat, which)
    assert torch.equal(got[0], sf.scenes.mirror_latent(lat)[0]) and torch.equal(got[1], lat[1])
    assert torch.equal(sf.mirrored_where(got, which), lat) and sf.mirrored_where(lat, None) is lat
    # upside down likewise, and both at once map back
    assert torch.equal(sf.scenes.flip_latent(lat), sf.scenes.space_to_depth(px.flip(2)))
    assert torch.equal(sf.scenes.flip_latent(neg)[:, :, :2], -sf.scenes.space_to_depth(px.flip(2))[:, :, :2])
    up = torch.tensor([False, True, True])
    both = sf.mirrored_where(lat, which, up)
    assert torch.equal(both[2], sf.scenes.space_to_depth(px.flip(2).flip(3))[2])
    assert torch.equal(both[1], sf.scenes.flip_latent(lat)[1]) and torch.equal(sf.mirrored_where(both, which, up), lat)
    # only prompts without a triangle (a valid slot's) may be flipped
    p = {'shape': torch.tensor([[0, 1, 2], [2, 0, 0], [0, 1, 1]]),
         'valid': torch.tensor([[True, True, False], [True, True, False], [True, True, True]])}
    assert sf.flippable(p).tolist() == [True, False, True]
    # a run with them trains (2 steps) and records them
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        sf.main(['--out', d, '--device', 'cpu', '--steps', '2', '--batch', '2', '--rollout-blocks', '5',
                 '--critic-steps', '1', '--prompts', '64', '--no-eval', '--no-teacher-eval', '--log-every', '1',
                 '--real-score-mirror', '--real-score-flip'])
        meta = read_header(os.path.join(d, 'model.safetensors'))['__metadata__']
        assert meta['real_score_mirror'] == 'True' and meta['real_score_flip'] == 'True', meta


def test_count_probs() -> None:
    vocab = sf.scenes.vocabulary()
    counts = lambda pool: pool.count.tolist()
    # the default pool is the data's, scene for scene; shares put every scene where they point
    default = sf.prompt_pool(3, 200, False, vocab, 16, 'cpu')
    rng = np.random.default_rng(3)
    data = [s for s in (sf.scenes.sample_scene(rng) for _ in range(400)) if sf.held_out(s.caption()) is False][:200]
    assert default.captions == [s.caption() for s in data]
    assert set(counts(default)) == {1, 2, 3}
    assert set(counts(sf.prompt_pool(3, 100, False, vocab, 16, 'cpu', (0.0, 0.0, 1.0)))) == {3}
    mostly_three = counts(sf.prompt_pool(3, 400, False, vocab, 16, 'cpu', sf.parse_count_probs('0.1,0.1,0.8')))
    assert mostly_three.count(3) > 0.7 * 400 > counts(default).count(3) * 2, mostly_three.count(3)
    assert sf.parse_count_probs(None) == sf.scenes.COUNT_PROBS
    for bad in ('0.5,0.5', '0.5,0.6,0.1', '-0.1,0.6,0.5', 'a,b,c', 'nan,0.5,0.5', '1.5,-0.5,0'):
        try:
            sf.parse_count_probs(bad)
        except SystemExit as e:
            assert '--count-probs' in str(e), e
        else:
            raise AssertionError(bad)
    import tempfile
    with tempfile.TemporaryDirectory() as d:  # a run with them trains (2 steps) and records them
        sf.main(['--out', d, '--device', 'cpu', '--steps', '2', '--batch', '2', '--rollout-blocks', '5',
                 '--critic-steps', '1', '--prompts', '64', '--no-eval', '--no-teacher-eval', '--log-every', '1',
                 '--count-probs', '0,0,1'])
        assert read_header(os.path.join(d, 'model.safetensors'))['__metadata__']['count_probs'] == '0,0,1'


def assert_refused(*argvs) -> None:
    """self_forcing.main exits 2 on each of these arguments (checked before a model is read or a file written)."""
    for bad in argvs:
        try:
            sf.main(['--out', '/nonexistent', '--device', 'cpu', '--steps', '1', *bad])
        except SystemExit as e:
            assert e.code == 2, (bad, e.code)
        else:
            raise AssertionError(bad)


def test_block_motion() -> None:
    """--motion-reward and --speed-weight measure a block's net motion inside it: rendered training clips read the
    speed they were drawn with (as a share of the data's mean), still ones 0; the soft centroid reads as the hard one
    does; the speed term's gradient moves a slow clip's objects faster; a block with no colour drawn once takes its
    block index's mean reward."""
    import math
    assert sf.block_spans(9, 3) == ([0, 3, 6], [2, 5, 8])
    clips = [sf.scenes.Scene('black', ['red'], ['square'], [5.0], [(20.0, 30.0)], [(v, 0.0)]) for v in (0.5, 1.0, 1.5)]
    data = sf.scenes.render(clips, 9)
    p = {'colour': data['colour'], 'valid': data['valid']}
    for soft in (False, True):
        speed, ok = sf.block_motion(data['pixels'], p, 3, soft=soft)
        assert bool(ok.all())
        for i, v in enumerate((0.5, 1.0, 1.5)):
            assert abs(float(speed[i].mean()) * sf.DATA_SPEED - v) < 0.1, (soft, i, speed[i].tolist())
    still = data['pixels'][:, :1].expand(-1, 9, -1, -1, -1)
    assert float(sf.block_motion(still, p, 3)[0].abs().max()) < 1e-4
    # a colour drawn twice, or not at all, does not count: the block index's mean stands in for it
    twice = data['pixels'].clone()
    twice[0, 3:6, 50:58, 50:58] = twice[0, 3:6, 30:32, 20:22].mean(dim=(1, 2), keepdim=True)  # a red square apart
    speed, ok = sf.block_motion(twice, p, 3)
    assert ok.tolist() == [[True, False, True], [True] * 3, [True] * 3]
    r = sf.motion_rewards(twice, p, 3)
    assert abs(float(r[0, 1]) - float(speed[1:, 1].mean())) < 1e-6
    assert float(sf.motion_rewards(data['pixels'] * 0 + 255, p, 3).abs().max()) == 0  # none anywhere: 0
    assert math.isclose(float(sf.motion_rewards(data['pixels'], p, 3, cap=0.5).max()), 0.5)
    # gradient steps on the slow clip's pixels along the speed term raise its speed
    slow = data['pixels'][:1].clone().requires_grad_(True)
    q = {k: v[:1] for k, v in p.items()}
    kept = torch.tensor([True, True, True])
    loss, before = sf.speed_loss(slow, q, 3, kept)
    assert loss.requires_grad and abs(before * sf.DATA_SPEED - 0.5) < 0.1
    for _ in range(20):
        loss, ratio = sf.speed_loss(slow, q, 3, kept)
        g, = torch.autograd.grad(loss, slow)
        with torch.no_grad():
            slow -= 2e4 * g
            slow.clamp_(0, 255)
    assert ratio > before + 0.05, (before, ratio)
    # the labelling a training step computes once for both terms gives what each computes alone
    drawn = sf.drawn_once(twice, p)
    for soft in (False, True):
        alone = sf.block_motion(twice, p, 3, soft=soft)
        with_drawn = sf.block_motion(twice, p, 3, soft=soft, drawn=drawn)
        assert torch.equal(alone[0], with_drawn[0]) and torch.equal(alone[1], with_drawn[1])
    assert sf.acceleration_loss(twice, p)[1] == sf.acceleration_loss(twice, p, drawn=drawn)[1]
    none = sf.speed_loss(slow, q, 3, torch.tensor([False] * 3))
    assert float(none[0].detach()) == 0 and math.isnan(none[1])
    # the smoothness term: a clip at constant velocity scores about 0, the same clip stepping back and forth scores
    # about a turn a frame, and gradient steps along it bring the jittered clip's centroids back into line
    steady, value = sf.acceleration_loss(data['pixels'], p)
    assert value < 0.1, value
    jitter = data['pixels'].clone()
    jitter[:, 1::2] = torch.roll(jitter[:, 1::2], shifts=2, dims=3)  # every other frame 2 px to the right
    shaky = jitter[:1].clone().requires_grad_(True)
    loss, before = sf.acceleration_loss(shaky, q)
    assert before > 2.0, before  # a 4 px turn a frame in units of 1.25 px
    for _ in range(20):
        loss, after = sf.acceleration_loss(shaky, q)
        g, = torch.autograd.grad(loss, shaky)
        with torch.no_grad():
            shaky -= 20 * g / g.abs().max().clamp_min(1e-12)
            shaky.clamp_(0, 255)
    assert after < before - 0.3, (before, after)
    gone = {'colour': torch.full_like(p['colour'], 6), 'valid': p['valid']}  # a colour the clips do not have
    assert math.isnan(sf.acceleration_loss(data['pixels'], gone)[1])
    assert_refused(['--speed-weight', '-0.1'], ['--smooth-weight', 'nan'], ['--motion-reward', '1'])


def test_copy_loss() -> None:
    """--copy-penalty: pixels of a prompted colour away from its largest component, as a share of its size."""
    import math
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, 1:3, 1:3] = True
    mask[0, 5:8, 4:8] = True
    lab = sf.component_labels(mask)
    assert lab[0, 1:3, 1:3].unique().numel() == 1 and lab[0, 5:8, 4:8].unique().numel() == 1
    assert int(lab[0, 1, 1]) != int(lab[0, 6, 6]) and int(lab[mask].min()) > 0 and int(lab[~mask].max()) == 0
    clips = [sf.scenes.Scene('black', ['red'], ['square'], [5.0], [(x, 30.0)], [(1.0, 0.0)]) for x in (20.0, 44.0)]
    data = sf.scenes.render(clips, 6)
    p = {'colour': data['colour'], 'valid': data['valid']}
    loss, value = sf.copy_loss(data['pixels'], p)
    assert value < 0.01, value
    # the second clip's object drawn into the first clip's frames: two equal squares, 24 px apart
    twice = torch.maximum(data['pixels'][:1], data['pixels'][1:])
    q = {k: v[:1] for k, v in p.items()}
    keep, size = sf.largest_components(twice, q['colour'][:, 0])
    assert bool((size > 50).all()) and bool((keep.sum(dim=(-2, -1)) == size).all())
    _, value = sf.copy_loss(twice, q)
    assert 0.8 < value < 1.2, value
    gone = {'colour': torch.full_like(p['colour'], 6), 'valid': p['valid']}  # a colour the clips do not have
    assert math.isnan(sf.copy_loss(data['pixels'], gone)[1])
    # frames_kept (training: the blocks at their late exits): only those frames count
    late_copy = torch.cat([data['pixels'][:1, :3], twice[:, 3:]], dim=1)
    first, last = torch.arange(6) < 3, torch.arange(6) >= 3
    whole, early, late = (sf.copy_loss(late_copy, q, frames_kept=k)[1] for k in (None, first, last))
    assert early < 0.01 and 0.8 < late < 1.2 and abs(whole - (early + late) / 2) < 1e-5, (whole, early, late)
    assert math.isnan(sf.copy_loss(twice, q, frames_kept=torch.zeros(6, dtype=torch.bool))[1])
    # --copy-hold: a rendered clip still scores 0; the object faded towards the background scores its shortfall, and
    # gradient steps bring its pixels back to the colour
    assert sf.copy_loss(data['pixels'], p, hold=1.0)[1] < 0.01
    bg = data['pixels'][:1, :, :1, :1]
    faded = (bg + 0.8 * (data['pixels'][:1] - bg)).requires_grad_(True)
    start = sf.copy_loss(faded, q, hold=1.0)[1]
    assert sf.copy_loss(faded, q)[1] < 0.01 and start > 0.2, start
    assert abs(sf.copy_loss(faded, q, hold=0.5)[1] - start / 2) < 0.01  # the shortfall times the weight
    for _ in range(10):
        loss, held = sf.copy_loss(faded, q, hold=1.0)
        g, = torch.autograd.grad(loss, faded)
        with torch.no_grad():
            faded -= 30 * g / g.abs().max().clamp_min(1e-12)
    assert held < start / 2, (start, held)
    # a copy smaller than the object: gradient steps take the copy's pixels off red and leave the object
    small = data['pixels'][:1].clone()
    # a 6 x 6 patch of a slightly other red beside the square (at the colour exactly, the closeness has no gradient)
    small[0, :, 10:16, 48:54] = small[0, 0, 30, 22] + torch.tensor([-10.0, 10.0, 10.0])
    x = small.clone().requires_grad_(True)
    before = sf.copy_loss(x, q)[1]
    assert before > 0.2, before
    for _ in range(10):
        loss, after = sf.copy_loss(x, q)
        g, = torch.autograd.grad(loss, x)
        with torch.no_grad():
            x -= 30 * g / g.abs().max().clamp_min(1e-12)
            x.clamp_(0, 255)
    assert after < before / 2, (before, after)
    assert torch.equal(x.detach()[0, :, 24:37, 14:32], small[0, :, 24:37, 14:32])  # the object untouched
    # the labelling a training step computes once for the reward, the motion terms and the copy term gives what each
    # computes alone
    for clip, qq in ((twice, q), (small, q), (data['pixels'], p)):
        labels = sf.prompted_labels(clip, qq)
        alone, shared = sf.drawn_once(clip, qq), sf.drawn_once(clip, qq, labels=labels)
        assert torch.equal(alone[0], shared[0]) and torch.equal(alone[1], shared[1])
        assert sf.copy_loss(clip, qq)[1] == sf.copy_loss(clip, qq, labels=labels)[1]
        assert torch.equal(sf.block_rewards(clip, qq, 3), sf.block_rewards(clip, qq, 3, labels=labels))
    assert_refused(['--copy-penalty', '-1'], ['--copy-penalty', 'nan'], ['--copy-exits', 'first'],
                   ['--copy-from', '-1'], ['--copy-hold', '-0.5'])
    # --copy-from: the term is off for the student's first steps (nothing logged), then on; the run records it
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        sf.main(['--out', d, '--device', 'cpu', '--steps', '3', '--batch', '2', '--rollout-blocks', '5', '--dmd-weight',
                 '0', '--prompts', '64', '--no-eval', '--no-teacher-eval', '--log-every', '1', '--copy-penalty', '1',
                 '--copy-exits', 'all', '--copy-from', '2', '--copy-hold'])
        with open(os.path.join(d, 'loss.json')) as f:
            logged = [row['copies'] for row in sf.json.load(f)['log']]
        meta = read_header(os.path.join(d, 'model.safetensors'))['__metadata__']
    assert logged[0] is None and logged[1] is None and logged[2] is not None, logged
    options = meta['copy_penalty'], meta['copy_exits'], meta['copy_from'], meta['copy_hold']
    assert options == ('1.0', 'all', '2', '1.0'), meta


if __name__ == '__main__':
    test_one_pass_equals_runtime_cache()
    test_empty_prompt_is_zero_context()
    test_guided_block_sampler()
    test_guided_real_flow()
    test_prompt_dropping()
    test_context_recycling()
    test_context_erasing()
    test_recovery()
    test_centroid_speed()
    test_shape_measure()
    test_outline_weighting()
    test_shape_swap()
    test_word_following()
    test_text_path()
    test_shape_swap_tf()
    test_shape_swap_min_s()
    test_text_neighbours()
    test_first_frames_negated()
    test_rollout_from_previous_frame()
    test_ode_regression()
    test_context_fading()
    test_context_erasing_from_a_block()
    test_block_rewards()
    test_context_copies()
    test_copy_weighting()
    test_critic_warmup()
    test_real_score_mirror()
    test_count_probs()
    test_block_motion()
    test_copy_loss()
    print('ok')
