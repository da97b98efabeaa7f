"""Parameter-owning modules: SSM kernels, the S4 layer, baseline layers, the backbone, heads."""

from s4lab.models.attention import MultiheadAttention
from s4lab.models.backbone import SequenceModel
from s4lab.models.block import S4Block
from s4lab.models.ffn import FeedForward
from s4lab.models.heads import ClassificationHead, LinearHead, RetrievalHead
from s4lab.models.linear_attention import LinearAttention
from s4lab.models.lssl import LSSL
from s4lab.models.performer import Performer
from s4lab.models.rnn import GRU, LSTM
from s4lab.models.s4 import S4Kernel
from s4lab.models.s4d import S4DKernel

__all__ = [
    "GRU",
    "LSSL",
    "LSTM",
    "ClassificationHead",
    "FeedForward",
    "LinearAttention",
    "LinearHead",
    "MultiheadAttention",
    "Performer",
    "RetrievalHead",
    "S4Block",
    "S4DKernel",
    "S4Kernel",
    "SequenceModel",
]
