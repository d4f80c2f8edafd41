"""The batched AutoAugment against torchvision's v2.AutoAugment, image by image, for the same draws."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from trainables.data.autoaugment import BatchAutoAugment


def _images(n: int) -> torch.Tensor:
    """Smooth images (like photos), noise, flat images (autocontrast's and equalize's edge cases), dark ones."""
    torch.manual_seed(3)
    smooth = torch.nn.functional.interpolate(torch.rand(n // 2, 3, 8, 8) * 255, size=32, mode="bilinear")
    noise = torch.randint(0, 256, (n - n // 2, 3, 32, 32)).float()
    x = torch.cat([smooth, noise]).round().clamp(0, 255).to(torch.uint8)
    x[::9] = x[::9, :, :1, :1].expand(-1, -1, 32, 32).clone()
    x[1::7] //= 16
    return x


REFERENCE = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)  # torchvision's own, private parts and all


def _torchvision(aa: BatchAutoAugment, image: torch.Tensor, policy: int, applied, negative) -> tuple[torch.Tensor, list[str]]:
    """What v2.AutoAugment.forward does to one image once its random choices are these (torchvision's
    table, magnitudes and operations, not the project's pinned copies)."""
    ref = REFERENCE
    names = []
    for slot, (op, _, magnitude_bin) in enumerate(ref._policies[policy]):
        if applied[slot]:
            bins_fn, signed = ref._AUGMENTATION_SPACE[op]
            bins = bins_fn(10, 32, 32)
            magnitude = float(bins[magnitude_bin]) if bins is not None else 0.0
            if signed and negative[slot]:
                magnitude = -magnitude
            image = ref._apply_image_or_video_transform(image, op, magnitude, interpolation=ref.interpolation, fill=ref._fill)
            names.append(op)
    return image, names


def test_the_pinned_policy_is_the_installed_torchvisions() -> None:
    from trainables.data.autoaugment_policy import differences_from_torchvision

    assert differences_from_torchvision() == []


@pytest.mark.parametrize("whole_batch", [False, True], ids=["chosen-images", "whole-batch-masked"])
def test_each_image_gets_exactly_what_torchvision_gives_it(whole_batch: bool) -> None:
    aa = BatchAutoAugment(whole_batch=whole_batch)
    x = _images(1200)
    torch.manual_seed(0)
    draw = aa.draw(x.shape[0], "cpu")
    out = aa.apply(x, draw)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    seen = set()
    for i in range(x.shape[0]):
        expected, names = _torchvision(aa, x[i], int(draw.policy[i]), draw.applied[i], draw.negative[i])
        assert torch.equal(out[i], expected), f"image {i}: {names} differs from torchvision"
        seen.update(names)
    assert seen == set(aa.ops)  # every operation of the CIFAR-10 policy was exercised


def test_every_image_draws_its_own_policy_with_torchvisions_probabilities() -> None:
    aa = BatchAutoAugment()
    torch.manual_seed(1)
    n = 100_000
    draw = aa.draw(n, "cpu")
    counts = torch.bincount(draw.policy, minlength=len(aa.sub_policies)).float() / n
    assert counts.sub(1 / len(aa.sub_policies)).abs().max() < 0.004
    expected = torch.tensor([[sub[s][1] for s in range(2)] for sub in aa.sub_policies])[draw.policy]
    assert (draw.applied.float().mean(0) - expected.mean(0)).abs().max() < 0.006
    assert (draw.negative.float().mean() - 0.5).abs() < 0.005
    # Sub-policies with probability 0 ("Invert", 0.0) never run; those with 1.0 would always run.
    never = expected == 0.0
    assert never.any() and not draw.applied[never].any()


def test_one_image_repeated_comes_out_differently_and_originals_are_untouched() -> None:
    torch.manual_seed(2)
    one = _images(2)[:1].repeat(64, 1, 1, 1)
    before = one.clone()
    out = BatchAutoAugment()(one)
    assert torch.equal(one, before)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 10


def test_refuses_float_or_wrongly_sized_images() -> None:
    with pytest.raises(ValueError, match="uint8 images of size 32x32"):
        BatchAutoAugment()(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="uint8 images of size 32x32"):
        BatchAutoAugment()(torch.zeros(2, 3, 28, 28, dtype=torch.uint8))


def test_the_whole_batch_path_never_reads_a_value_back_to_the_host() -> None:
    """On a GPU a read-back (item, nonzero, a masked assignment) would stall every training step."""
    from torch.profiler import ProfilerActivity, profile

    aa = BatchAutoAugment(whole_batch=True)
    x = _images(64)
    aa(x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        aa(x)
    called = {e.name for e in prof.events()}
    assert "aten::isin" in called  # the profile did see the augmentation
    assert not called & {"aten::item", "aten::_local_scalar_dense", "aten::nonzero", "aten::index_put_"}
