"""ONNX translations of the IaP op (``torch.ops.stip_rt.iap``) for the dynamo exporter.

Two flavours, chosen per export through ``torch.onnx.export(custom_translation_table=...)``:

* ``standard`` — IaP decomposed into standard ONNX ops (Resize, Conv, Reshape, Mul,
  ReduceMean); runs in ONNX Runtime and is the plugin-free TensorRT baseline.
* ``plugin`` — one node ``stip_rt::IaP`` carrying what the TensorRT plugin needs:

  ======================  ======  ===============================================
  attribute               type    meaning
  ======================  ======  ===============================================
  ``upsample``            int     1: ``e`` is at half resolution, upsampled ×2 first
  ``channels``            int     C (feature channels)
  ``joints``              int     K (output heatmaps); the weight is (K·C, C)
  ``plugin_namespace``    string  ``stip_rt`` (TensorRT 10.9 reads the namespace here)
  ``aot``                 int     1: TensorRT picks the ahead-of-time implementation
  ======================  ======  ===============================================

  Inputs: ``e`` (N, C, h, w), ``f`` (N, C, H, W), ``weight`` (K·C, C[, 1, 1]), ``bias``
  (K·C,) (optional); output (N, K, H, W), dtype of ``f``. The node's domain is also
  ``stip_rt`` (TensorRT 10.10+ takes the namespace from the domain).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import onnxscript
from onnx.defs import OpSchema
from onnxscript import opset18 as op
from onnxscript.onnx_types import FLOAT, INT64

DOMAIN = "stip_rt"
OP_TYPE = "IaP"
DOMAIN_VERSION = 1

_FP = OpSchema.FormalParameter
_ATTR = OpSchema.Attribute
IAP_SCHEMA = OpSchema(
    OP_TYPE,
    DOMAIN,
    DOMAIN_VERSION,
    doc="STIP instance-adaptive parsing: per-pixel dynamic 1x1 convolution (see stip_rt.nn.iap).",
    inputs=[
        _FP("e", "T", "kernel embeddings (N, C, h, w)"),
        _FP("f", "T", "refined features (N, C, H, W)"),
        _FP("weight", "T", "generator weight (K*C, C[, 1, 1])"),
        _FP("bias", "T", "generator bias (K*C,)", param_option=OpSchema.FormalParameterOption.Optional),
    ],
    outputs=[_FP("y", "T", "heatmaps (N, K, H, W)")],
    type_constraints=[("T", ["tensor(float)", "tensor(float16)", "tensor(bfloat16)"], "floating point")],
    attributes=[
        _ATTR("upsample", OpSchema.AttrType.INT, "1 when e is at half resolution"),
        _ATTR("channels", OpSchema.AttrType.INT, "C"),
        _ATTR("joints", OpSchema.AttrType.INT, "K"),
        _ATTR("plugin_namespace", OpSchema.AttrType.STRING, "TensorRT plugin namespace"),
        _ATTR("aot", OpSchema.AttrType.INT, "1: use the ahead-of-time TensorRT implementation"),
    ],
)

_OPSET = onnxscript.values.Opset(DOMAIN, DOMAIN_VERSION)
_IAP = onnxscript.values.Op(_OPSET, OP_TYPE, IAP_SCHEMA)


def _ints(*values: int) -> INT64:
    """A constant int64 vector (``op.Constant`` is typed as every tensor type: its dtype comes from the attribute)."""
    return cast(INT64, op.Constant(value_ints=list(values)))


def iap_standard(e, f, weight, bias=None, upsample: bool = False):
    """IaP in standard ops: upsample ``e`` ×2 (Resize linear, half_pixel = PyTorch bilinear,
    align_corners=False), generate the K·C kernels with a 1×1 Conv, multiply by ``f``, mean over C."""
    if upsample:
        scales = cast(FLOAT, op.Constant(value_floats=[1.0, 1.0, 2.0, 2.0]))
        e = op.Resize(e, None, scales, mode="linear", coordinate_transformation_mode="half_pixel")
    c = op.Shape(f, start=1, end=2)
    kc = op.Shape(weight, start=0, end=1)
    w4 = op.Reshape(weight, op.Concat(kc, c, _ints(1, 1), axis=0))
    z = op.Conv(e, w4, bias) if bias is not None else op.Conv(e, w4)
    n = op.Shape(f, start=0, end=1)
    hw = op.Shape(f, start=2, end=4)
    z5 = op.Reshape(z, op.Concat(n, _ints(-1), c, hw, axis=0))  # (N, K, C, H, W)
    prod = op.Mul(z5, op.Unsqueeze(f, _ints(1)))
    return op.ReduceMean(prod, _ints(2), keepdims=0)


def iap_plugin(e, f, weight, bias=None, upsample: bool = False):
    """IaP as one ``stip_rt::IaP`` node with the attributes of the TensorRT plugin."""
    channels = int(f.shape[1])
    joints = int(weight.shape[0]) // channels
    inputs = (e, f, weight) if bias is None else (e, f, weight, bias)
    return _IAP(
        *inputs,
        upsample=int(bool(upsample)),
        channels=channels,
        joints=joints,
        plugin_namespace=DOMAIN,
        aot=1,
    )


TRANSLATIONS: dict[str, Callable] = {"standard": iap_standard, "plugin": iap_plugin}
