"""Inference engines as registered backends (in the manner of optimum-benchmark's ``backends/``):
``registry`` names them, one module per family (``torch``, ``onnxruntime``) declares them, and
the onnxruntime family's export and quantisation live beside it (``ort_export``, ``ort_quantize``).
"""
