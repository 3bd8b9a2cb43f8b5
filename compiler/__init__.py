"""ONNX -> hls4ml ModelGraph -> quantised, tiled systolic Program; golden executor; cost model."""
