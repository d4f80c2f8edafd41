"""AutoAugment on a whole batch of uint8 images, one policy draw per image, without a loop over images.

torchvision's `v2.AutoAugment` draws one sub-policy per call, so a batch would share one draw; the
per-image draw the reference trains with (a PIL transform per sample) meant a Python loop of 128
calls per step, which on a GPU costs more than the training step itself. Here every image draws its
own sub-policy, application coins and signs, and each operation runs once per slot on the images
that drew it, with per-image magnitudes.

The policy table and magnitude bins are pinned in autoaugment_policy.py (equal to torchvision's,
which keeps them private); the operations are torchvision's own:
- geometric operations (shear, translate, rotate; nearest interpolation, zero fill) are pixel
  moves, so each (operation, magnitude) is recorded once as a source-index map by running
  torchvision's transform on an image of pixel indices; applying it is one gather, identical to
  torchvision by construction;
- posterize, solarize, invert, autocontrast and equalize are integer operations, computed per
  image with the same formulas (torchvision's batched kernels where they exist), and identical;
- brightness, colour, contrast and sharpness blend in float32 as torchvision does, with per-image
  factors, rounding where its fused multiply-add rounds.
tests/trainables/test_autoaugment.py checks every image against torchvision, bit for bit.
"""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as F

from trainables.data.autoaugment_policy import CIFAR10_POLICY, GEOMETRIC, NUM_MAGNITUDE_BINS, geometric, is_signed, magnitudes


class PolicyDraw:
    """One batch's random choices: sub-policy per image, and per slot whether it applies and its sign."""

    def __init__(self, policy: torch.Tensor, applied: torch.Tensor, negative: torch.Tensor):
        self.policy = policy  # (B,) long: the sub-policy index
        self.applied = applied  # (B, 2) bool: slot s's operation runs
        self.negative = negative  # (B, 2) bool: a signed magnitude is negated


class BatchAutoAugment:
    """AutoAugment (a policy table, CIFAR-10's by default) applied per image to a uint8 batch (B, C, H, W) on its device."""

    def __init__(self, policy: tuple = CIFAR10_POLICY, image_size: tuple[int, int] = (32, 32), whole_batch: bool | None = None):
        """whole_batch: run each operation on every image and mask (default: on CUDA), else on the chosen ones."""
        self.whole_batch = whole_batch
        self.sub_policies = policy  # [((op, probability, bin), (op, probability, bin)), ...]
        self.height, self.width = image_size
        self.ops = sorted({op for sub in self.sub_policies for op, _, _ in sub})
        # The operations that can run in each slot (probability above zero).
        self.slot_ops = [sorted({sub[s][0] for sub in self.sub_policies if sub[s][1] > 0}) for s in range(2)]
        # Per slot, the kinds of operation that run as one: all geometric ones (one gather), then each other one.
        self.slot_kinds = [[names for names in [[n for n in GEOMETRIC if n in ops]] + [[n] for n in ops if n not in GEOMETRIC] if names]
                           for ops in self.slot_ops]
        self.kind_ids = [[torch.tensor([self.ops.index(n) for n in names]) for names in kinds] for kinds in self.slot_kinds]
        # Per slot, tables indexed by variant = 2 * sub-policy + negated: the op, its magnitude, its geometric map.
        n = len(self.sub_policies)
        self.probability = torch.tensor([[sub[s][1] for s in range(2)] for sub in self.sub_policies])  # (P, 2)
        self.op_id = torch.empty(2, 2 * n, dtype=torch.long)
        self.magnitude = torch.zeros(2, 2 * n, dtype=torch.float64)
        hw = self.height * self.width
        identity = torch.arange(hw)
        self.source_index = identity.repeat(2, 2 * n, 1)  # (2, 2P, H*W); H*W stands for the zero fill
        for p, sub in enumerate(self.sub_policies):
            for s, (op, _, magnitude_bin) in enumerate(sub):
                for negated in (False, True):
                    v = 2 * p + negated
                    magnitude = self._magnitude(op, magnitude_bin, negated)
                    self.op_id[s, v] = self.ops.index(op)
                    self.magnitude[s, v] = magnitude
                    if op in GEOMETRIC:
                        self.source_index[s, v] = self._pixel_source(op, magnitude)
        self._device = torch.device("cpu")

    def _magnitude(self, op: str, magnitude_bin: int | None, negated: bool) -> float:
        """The magnitude v2.AutoAugment.forward passes for this entry (a Python float: kept as float64)."""
        bins = magnitudes(op, NUM_MAGNITUDE_BINS, self.height, self.width)
        if bins is None:
            return 0.0
        magnitude = float(bins[magnitude_bin])
        return -magnitude if is_signed(op) and negated else magnitude  # unsigned: both variants are the same

    def _pixel_source(self, op: str, magnitude: float) -> torch.Tensor:
        """For each output pixel, the input pixel torchvision's transform copies there (H*W: the zero fill)."""
        # Pixel values 1..H*W are exact in float32 and nearest interpolation only copies them; 0 is the fill.
        numbered = torch.arange(1, self.height * self.width + 1, dtype=torch.float32).view(1, self.height, self.width)
        moved = geometric(numbered, op, magnitude)
        source = moved.flatten().round().long() - 1
        return torch.where(source < 0, self.height * self.width, source)

    def to(self, device: torch.device | str) -> BatchAutoAugment:
        device = torch.device(device)
        if device != self._device:
            for name in ("probability", "op_id", "magnitude", "source_index"):
                setattr(self, name, getattr(self, name).to(device))
            self.kind_ids = [[ids.to(device) for ids in slot] for slot in self.kind_ids]
            self._device = device
        return self

    def draw(self, batch: int, device: torch.device | str) -> PolicyDraw:
        """The random choices v2.AutoAugment makes per call, made once per image."""
        policy = torch.randint(len(self.sub_policies), (batch,), device=device)
        applied = torch.rand(batch, 2, device=device) <= self.to(device).probability[policy]
        negative = torch.rand(batch, 2, device=device) <= 0.5
        return PolicyDraw(policy, applied, negative)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.apply(images, self.draw(images.shape[0], images.device))

    def apply(self, images: torch.Tensor, draw: PolicyDraw) -> torch.Tensor:
        """Run the drawn operations: slot 0 on every image, then slot 1 on the result."""
        if images.dtype != torch.uint8 or images.shape[-2:] != (self.height, self.width):
            raise ValueError(f"expected uint8 images of size {self.height}x{self.width}, got {images.dtype} {tuple(images.shape)}")
        self.to(images.device)
        x = images
        for slot in range(2):
            variant = 2 * draw.policy + draw.negative[:, slot]
            op = torch.where(draw.applied[:, slot], self.op_id[slot, variant], -1)
            x = self._apply_slot(x, slot, op, variant)
        return x

    def _apply_slot(self, x: torch.Tensor, slot: int, op: torch.Tensor, variant: torch.Tensor) -> torch.Tensor:
        """Each image's operation for this slot: each kind of operation runs once, on the images that drew it."""
        magnitude = self.magnitude[slot, variant]
        source = self.source_index[slot, variant]
        whole = x.is_cuda if self.whole_batch is None else self.whole_batch
        out = x
        for names, ids in zip(self.slot_kinds[slot], self.kind_ids[slot]):
            fn = _move_pixels_of if names[0] in GEOMETRIC else lambda images, m, _, name=names[0]: _colour_op(name, images, m)
            chosen = torch.isin(op, ids)
            if whole:
                # GPU: run on every image and let a mask pick: no host synchronisation, the same kernels each step.
                out = torch.where(chosen[:, None, None, None], fn(x, magnitude, source), out)
                continue
            # CPU, where reading the mask is free: only on the images that drew it.
            index = chosen.nonzero().squeeze(1)
            if index.numel():
                out = out.clone() if out is x else out
                out[index] = fn(x[index], magnitude[index], source[index])
        return out


def _move_pixels_of(images: torch.Tensor, _magnitude: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    return _move_pixels(images, source)


def _move_pixels(images: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """images (B, C, H, W) with output pixel j of image b taken from input pixel source[b, j] (H*W: zero)."""
    b, c, h, w = images.shape
    flat = torch.cat([images.reshape(b, c, h * w), images.new_zeros(b, c, 1)], dim=2)
    return flat.gather(2, source[:, None, :].expand(b, c, h * w)).view(b, c, h, w)


def _colour_op(name: str, images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """torchvision's tensor kernel for one non-geometric operation, with one magnitude per image."""
    if name == "Invert":
        return F.invert(images)
    if name == "AutoContrast":
        return _autocontrast(images)
    if name == "Equalize":
        return F.equalize(images)  # per image and channel already
    if name == "Posterize":
        bits = magnitude.long()
        mask = ((1 << bits) - 1) << (8 - bits)  # 8 bits keep everything: mask 255
        return images & mask.to(torch.uint8).view(-1, 1, 1, 1)
    if name == "Solarize":
        # torchvision compares against a Python float, which the kernel rounds to float32 (255 * 1/3 -> 85.0).
        threshold = (255.0 * magnitude).float().view(-1, 1, 1, 1)
        return torch.where(images >= threshold, F.invert(images), images)
    factor = (1.0 + magnitude).view(-1, 1, 1, 1)
    if name == "Brightness":
        return _blend(images, torch.zeros((), device=images.device), factor)
    if name == "Color":
        return _blend(images, _grey(images), factor)
    if name == "Contrast":
        return _blend(images, _grey(images).mean(dim=(-3, -2, -1), keepdim=True), factor)
    if name == "Sharpness":
        return _sharpen(images, factor)
    raise ValueError(f"no batched AutoAugment operation {name!r}")


def _autocontrast(images: torch.Tensor) -> torch.Tensor:
    """torchvision's autocontrast (per image and channel), with torch.where where it assigns through a mask.

    Its masked assignment reads a value back to the host on every call; on a GPU that stalls each step.
    """
    x = images.float()
    low = x.amin(dim=(-2, -1), keepdim=True)
    high = x.amax(dim=(-2, -1), keepdim=True)
    flat = high == low
    inv_scale = torch.where(flat, 1.0, (high - low).mul_(1.0 / 255))
    low = torch.where(flat, 0.0, low)
    return x.sub_(low).div_(inv_scale).clamp_(0, 255).to(torch.uint8)


def _grey(images: torch.Tensor) -> torch.Tensor:
    """torchvision's float greyscale of uint8 RGB, floored as it does for integer images."""
    r, g, b = images.unbind(dim=-3)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(-3).floor_()


def _blend(images: torch.Tensor, degenerate: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's _blend, image.mul(ratio).add_(degenerate, alpha=1 - ratio), clamped and truncated, per image."""
    out = _add_scaled(images.float().mul(factor.float()), 1.0 - factor, degenerate)
    return out.clamp_(0, 255).to(torch.uint8)


def _sharpen(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's adjust_sharpness: blend with a 3x3 smoothing of the interior, edges kept."""
    c = images.shape[-3]
    # Built on the device (no host-to-device copy per step): 1/13 around, 5/13 in the middle.
    kernel = torch.full((c, 1, 3, 3), 1.0 / 13.0, device=images.device)
    kernel[:, :, 1, 1] = 5.0 / 13.0
    out = images.float()
    blurred = torch.nn.functional.conv2d(out, kernel, groups=c).round_()
    interior = out[..., 1:-1, 1:-1]
    interior.copy_(_add_scaled(interior, 1.0 - factor, blurred.sub_(interior)))
    return out.clamp_(0, 255).to(torch.uint8)


def _add_scaled(x: torch.Tensor, alpha: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """float32 x + alpha * y rounded once, as torch's add_(y, alpha=a) does with a fused multiply-add.

    alpha holds torchvision's Python floats (float64), which the kernel rounds to float32. The
    product of two float32 values is exact in float64, so one rounding at the end matches the fused
    kernel; two float32 roundings put about 0.2% of pixels one grey level off.
    """
    return (x.double() + alpha.float().double() * y.double()).float()
