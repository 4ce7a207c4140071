"""STIPNet: HRNet + Semantic-aware Transfer (SaT) + Instance-adaptive Parsing (IaP).

Exactly the official ``pose_ptnet.STIPNet`` (STIP_SPEC §1.2–1.5): same attribute names
and creation order (so official checkpoints load with ``strict=True``), same outputs.

* ``forward`` in eval mode computes only the final IaP heatmap Y: no part, mask,
  kernel-map or kernel-energy branches, no upsampling of the stage-2/3 features;
  ``kpt_layer`` runs at backbone resolution and is upsampled, and the kernel
  embeddings go to :func:`stip_rt.nn.iap.iap` at backbone resolution with
  ``upsample=True`` (both exact: a 1×1 conv commutes with bilinear upsampling,
  STIP_SPEC §1.5).
* ``forward_train`` returns every official output under the official names and
  materialises the per-pixel kernels the official way (KM and ``kernel`` need them).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .config import StipConfig
from .hrnet import BN_MOMENTUM, HRNet
from .iap import iap


def _up(x: torch.Tensor, scale: int) -> torch.Tensor:
    """The official "up": bilinear ×scale, align_corners=False."""
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


class SingleHead(nn.Module):
    """``num_convs`` × [conv3×3 (no bias) → BN → ReLU] (official ``kernel_generator.SingleHead``, coord=False)."""

    def __init__(self, in_channels: int, dims: int, num_convs: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_convs):
            cin = in_channels if i == 0 else dims
            layers += [
                nn.Conv2d(cin, dims, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(dims, momentum=BN_MOMENTUM),
                nn.ReLU(),
            ]
        self.conv_norm_relus = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_norm_relus(x)


def _conv_bn_relu(cin: int, cout: int, kernel: int, dilation: int = 1) -> nn.Sequential:
    pad = dilation if kernel == 3 else 0
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout, momentum=BN_MOMENTUM),
        nn.ReLU(),
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1×1, three dilated 3×3 and an image-pooling branch, concat, 1×1.

    Keys: ``convs.0`` (1×1), ``convs.1..3`` (3×3, dilation = rates), ``convs.4`` = [pool, conv, BN, ReLU],
    ``project`` = [conv 5C→C, BN, ReLU].
    """

    def __init__(self, in_channels: int, rates: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        convs = [_conv_bn_relu(in_channels, out_channels, 1)]
        convs += [_conv_bn_relu(in_channels, out_channels, 3, r) for r in rates]
        convs.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), *_conv_bn_relu(in_channels, out_channels, 1)))
        self.convs = nn.ModuleList(convs)
        self.project = _conv_bn_relu(len(convs) * out_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [conv(x) for conv in self.convs[:-1]]
        # Bilinear resize of a 1×1 map (the official code) is a broadcast.
        outs.append(self.convs[-1](x).expand(-1, -1, x.shape[2], x.shape[3]))
        return self.project(torch.cat(outs, dim=1))


class GlobalAveragePooling2D(nn.Module):
    """(N, C, H, W) → (N, C) mean over pixels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class STIPNet(HRNet):
    """STIPNet for (N, 3, H, W) crops; heatmaps at (H/4·u, W/4·u), u = ``cfg.up_scale`` (2).

    ``final_layer`` (inherited) is never used, as in the official model (STIP_SPEC §7.5),
    but kept so that official checkpoints load strictly.
    """

    def __init__(self, cfg: StipConfig) -> None:
        super().__init__(cfg.hrnet)
        self.stip_cfg = cfg
        c, k = cfg.hrnet.widths[0], cfg.hrnet.num_joints
        self.up_scale = cfg.up_scale
        self.ASPP_stage4 = ASPP(c, cfg.aspp_rates, c)
        self.context_head = nn.Sequential(
            SingleHead(c, c, 1),
            GlobalAveragePooling2D(),
            nn.Linear(c, c, bias=False),
            nn.BatchNorm1d(c, momentum=BN_MOMENTUM),
            nn.ReLU(),
        )
        self.context_predictor = nn.Sequential(nn.Linear(c, k), nn.Sigmoid())
        self.kernel_head = ASPP(c, cfg.aspp_rates, c)
        self.kernel_generator = nn.Sequential(nn.Conv2d(c, k * c, kernel_size=1))
        self.projector = nn.Sequential(
            nn.Conv2d(2 * c, c, kernel_size=1, bias=False), nn.BatchNorm2d(c, momentum=BN_MOMENTUM), nn.ReLU()
        )
        self.spatial_encoder_head = SingleHead(c, c, 1)
        self.refine_head = SingleHead(c, c, 1)
        self.kpt_layer = nn.Conv2d(c, k, kernel_size=1)
        self.parts_predictor = nn.Conv2d(c, k, kernel_size=3, padding=1)
        self.mask_predictor = nn.Conv2d(c, 1, kernel_size=1)

    # -- shared SaT steps (STIP_SPEC §1.4 steps 4–6, 11, 12, 14) ---------------------------------
    def _relation(self, feat: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """r = sigmoid(e · F): (N, 1, h, w) global-to-local relation map."""
        n, c, h, w = feat.shape
        return torch.sigmoid(torch.bmm(emb.unsqueeze(1), feat.reshape(n, c, h * w))).reshape(n, 1, h, w)

    def _semantic_embeddings(self, h0: torch.Tensor, rel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Transfer matrix T = resize(H0) ⊙ r (N, K, h, w) and S = W_clsᵀ T (N, C, h, w)."""
        trans = F.interpolate(h0, size=rel.shape[2:], mode="bilinear", align_corners=False) * rel
        w_cls = self.context_predictor[0].weight  # (K, C): the K semantic embeddings
        sem = torch.einsum("nkhw,kc->nchw", trans, w_cls)
        return trans, sem

    def _enhanced(self, sem: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        """E = ASPP_stage4(projector([spatial_encoder_head(S), F])) (N, C, h, w)."""
        return self.ASPP_stage4(self.projector(torch.cat([self.spatial_encoder_head(sem), feat], dim=1)))

    # -- inference --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, object]:
        """Final IaP heatmaps Y (N, K, H/4·u, W/4·u) in eval mode; the :meth:`forward_train` dict in train mode."""
        if self.training:
            return self.forward_train(x)
        u = self.up_scale
        feat = self.backbone(x)[2]
        emb = self.context_head(feat)
        rel = self._relation(feat, emb)
        h0 = _up(self.kpt_layer(feat), u)  # == kpt_layer(up(F)), K channels instead of C
        _, sem = self._semantic_embeddings(h0, rel)
        q = self.kernel_head(sem)
        g = self.refine_head(_up(self._enhanced(sem, feat), u))
        gen = cast(nn.Conv2d, self.kernel_generator[0])
        weight = gen.weight.reshape(gen.weight.shape[0], -1)
        if u == 2:
            return iap(q, g, weight, gen.bias, upsample=True)
        return iap(_up(q, u), g, weight, gen.bias)

    # -- training / parity -------------------------------------------------------------------------
    #: :meth:`forward_train` (and ``forward`` in train mode) uses the fused IaP op when True (training sets it).
    fused_train: bool = False

    def forward_train(self, x: torch.Tensor, fused: bool | None = None) -> dict[str, object]:
        """Every official output, computed the official way (or with the fused IaP op).

        With ``fused`` (default: the ``fused_train`` attribute) Y goes through :func:`stip_rt.nn.iap.iap`
        (its own backward, no N×K×C×H'×W' kernels tensor), KM is the generator with its weights averaged
        over each joint's C rows (a K-channel 1×1 conv, the same mean) and ``kernel`` comes from the Gram
        matrix of the generator (the same mean of squares); equal to the official way within float rounding.

        Returns (heatmap resolution H' × W' = H/4·u × W/4·u):
            ``keypoint``: [Y, H0, KM] — IaP heatmaps, initial heatmaps (kpt_layer), kernel maps
            (per-joint mean of the generated kernels), each (N, K, H', W');
            ``sp_keypoint``: P (N, K, H', W') part heatmaps from stage-3 features;
            ``mask``: [M (N, 1, H', W') sigmoid mask from stage-2 features, up(r) (N, 1, H', W'),
            up(T) (N, K, H', W')];
            ``semantics``: [s (N, K)] keypoint-presence scores (sigmoid);
            ``kernel``: (N,) mean squared kernel value per instance.
        """
        u = self.up_scale
        b2, b3, feat = self.backbone(x)
        emb = self.context_head(feat)
        scores = self.context_predictor(emb)
        rel = self._relation(feat, emb)
        h0 = self.kpt_layer(_up(feat, u))
        parts = self.parts_predictor(_up(b3, u))
        mask = torch.sigmoid(self.mask_predictor(_up(b2, u)))
        trans, sem = self._semantic_embeddings(h0, rel)
        q = self.kernel_head(sem)
        enh = self._enhanced(sem, feat)
        n, c = feat.shape[:2]
        g = self.refine_head(_up(enh, u))
        if self.fused_train if fused is None else fused:
            y, km, energy = self._fused_kernels(q, g)
        else:
            kernels = self.kernel_generator(_up(q, u))
            kernels = kernels.reshape(n, -1, c, kernels.shape[2], kernels.shape[3])  # (N, K, C, H', W')
            y = torch.mean(kernels * g.unsqueeze(1), dim=2)
            km, energy = torch.mean(kernels, dim=2), kernels.pow(2).mean(dim=(1, 2, 3, 4))
        return {
            "keypoint": [y, h0, km],
            "sp_keypoint": parts,
            "mask": [mask, _up(rel, u), _up(trans, u)],
            "semantics": [scores],
            "kernel": energy,
        }

    def _fused_kernels(self, q: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Y (fused IaP op), KM (N, K, H', W') and the kernel energy (N,) without materialising the kernels."""
        u, c = self.up_scale, g.shape[1]
        dtype = torch.promote_types(q.dtype, g.dtype)
        q, g = q.to(dtype), g.to(dtype)
        gen = cast(nn.Conv2d, self.kernel_generator[0])
        weight, bias = gen.weight.reshape(gen.weight.shape[0], -1), gen.bias  # (K·C, C), (K·C,)
        if bias is None:
            raise ValueError("STIPNet: the fused IaP path needs the kernel generator's bias")
        y = iap(q, g, weight, bias, upsample=True) if u == 2 else iap(_up(q, u), g, weight, bias)
        qu = _up(q, u)
        k = weight.shape[0] // c
        w_mean, b_mean = weight.reshape(k, c, c).mean(1), bias.reshape(k, c).mean(1)
        km = F.conv2d(qu, w_mean[..., None, None].to(dtype), b_mean.to(dtype))
        # Σ_j (w_j·e + b_j)² = e·(Gram·e + 2·Wᵀb) + |b|² per pixel
        gram, lin = weight.t() @ weight, 2 * (weight.t() @ bias)
        quad = (qu * F.conv2d(qu, gram[..., None, None].to(dtype), lin.to(dtype))).sum(1)
        energy = (quad.float().mean(dim=(1, 2)) + bias.float().pow(2).sum()) / weight.shape[0]
        return y, km, energy
