"""Parameter-owning modules: SSM kernels, the S4 layer, backbones."""

from s4lab.models.block import S4Block
from s4lab.models.s4 import S4Kernel
from s4lab.models.s4d import S4DKernel

__all__ = ["S4Block", "S4DKernel", "S4Kernel"]
