"""Cross-generator protocols (``exifbench protocol``): train each trainable detector on each
training set a protocol declares, test every model on every test generator, and report the
train x test matrices with intervals and the in-distribution versus cross-generator summary.

- :mod:`harness.protocol.config`: the config file (a sweep's, plus ``[protocol]`` and dataset roles);
- :mod:`harness.protocol.design`: the training sets of ``train-on-each`` and ``leave-one-out``;
- :mod:`harness.protocol.matrix`: the matrices and the summary;
- :mod:`harness.protocol.render`: csv, md, html and heatmaps;
- :mod:`harness.protocol.run`: the steps, on the training jobs and the sweep engine.
"""
from harness.protocol.config import ProtocolConfig, load_protocol
from harness.protocol.run import ProtocolResult, run_protocol

__all__ = ["ProtocolConfig", "ProtocolResult", "load_protocol", "run_protocol"]
