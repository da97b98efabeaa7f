"""Parameter-owning modules: SSM kernels, the S4 layer, the backbone, task heads."""

from s4lab.models.backbone import SequenceModel
from s4lab.models.block import S4Block
from s4lab.models.heads import ClassificationHead, LinearHead, RetrievalHead
from s4lab.models.s4 import S4Kernel
from s4lab.models.s4d import S4DKernel

__all__ = [
    "ClassificationHead",
    "LinearHead",
    "RetrievalHead",
    "S4Block",
    "S4DKernel",
    "S4Kernel",
    "SequenceModel",
]
