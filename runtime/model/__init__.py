"""Running a model on the host: ONNX -> torch conversion, training, evaluation, and loading
untrusted inputs safely (no pickles, no custom-op domains)."""
