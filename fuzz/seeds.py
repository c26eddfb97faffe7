#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/ (the rest of the corpus is what fuzzing found and kept).

Each seed is a well-formed file or one of the hostile inputs issue 17 listed, so the fuzzer starts from
every branch of the loader: python3 fuzz/seeds.py
"""
import json
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def safetensors(entries, data=b"", metadata=None, raw_header=None):
    header = dict(entries)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":"))
    body = text.encode()
    return struct.pack("<Q", len(body)) + body + data


def f32(*values):
    return struct.pack(f"<{len(values)}f", *values)


def write(target, name, content):
    folder = os.path.join(here, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(content)


seeds = {
    "two_tensors_metadata": safetensors(
        {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
         "b": {"dtype": "F64", "shape": [1], "data_offsets": [16, 24]}},
        f32(1, 2, 3, 4) + struct.pack("<d", 0.5), {"module": "nn.LSTM", "hidden_size": "3"}),
    "int_and_masks": safetensors(
        {"i": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]},
         "m": {"dtype": "U8", "shape": [3], "data_offsets": [16, 19]},
         "b": {"dtype": "BOOL", "shape": [1, 1], "data_offsets": [19, 20]}},
        struct.pack("<2q", 7, -1) + bytes([0, 1, 5]) + bytes([1])),
    "scalar": safetensors({"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}, f32(3.5)),
    "empty_tensor_first": safetensors(
        {"e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
         "t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, f32(1, 2)),
    "empty_file_header": safetensors({}),
    "number_out_of_range": safetensors({}, raw_header='{"x":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}}',
                                       data=f32(1)),
    "duplicate_key": safetensors({}, raw_header='{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                                '"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', data=f32(1)),
    "deep_nesting": safetensors({}, raw_header='{"x":{"dtype":' + "[" * 5000 + "]" * 5000 + "}}"),
    "zero_then_huge_dims": safetensors({"x": {"dtype": "F32", "shape": [0, 2**62, 2**62], "data_offsets": [0, 0]}}),
    "overlapping": safetensors(
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, f32(1, 2, 3)),
    "header_longer_than_file": struct.pack("<Q", 1 << 40) + b"{}",
}
for name, content in seeds.items():
    write("safetensors", name, content)

# Reference cases: the golden PyTorch cases (tests/golden/pytorch) are seeds too; these add a
# kiln.Recurrent case naming a cell, and sizes far beyond the memory bound the fuzzer runs under.
def case(tensors, metadata):
    """A safetensors file of float64 tensors given as name: (shape, values)."""
    entries, data = {}, b""
    for name, (shape, values) in tensors.items():
        entries[name] = {"dtype": "F64", "shape": shape, "data_offsets": [len(data), len(data) + 8 * len(values)]}
        data += struct.pack(f"<{len(values)}d", *values)
    return safetensors(entries, data, metadata)


def ramp(n, scale=0.1):
    return [scale * ((i * 7) % 11 - 5) for i in range(n)]


write("reference_case", "recurrent_cell_case", case(
    {"input.x": ([2, 1, 2], ramp(4)), "loss_weight.out": ([2, 1, 3], ramp(6, 1.0)),
     "param.weight_ih_l0": ([9, 2], ramp(18)), "param.weight_hh_l0": ([9, 3], ramp(27)),
     "param.bias_ih_l0": ([9], ramp(9)), "param.bias_hh_l0": ([9], ramp(9)),
     "output.out": ([2, 1, 3], [0.0] * 6)},
    {"module": "kiln.Recurrent", "cell": "gru", "input_size": "2", "hidden_size": "3", "num_layers": "1",
     "bidirectional": "False", "batch_first": "False", "bias": "True"}))
write("reference_case", "huge_hidden", safetensors(
    {"input.x": {"dtype": "F64", "shape": [1, 1, 2], "data_offsets": [0, 16]}}, struct.pack("<2d", 1, 2),
    {"module": "nn.LSTM", "input_size": "2", "hidden_size": "1000000", "num_layers": "1"}))

# Plugin descriptors are choices read byte by byte (plugin_descriptor_fuzz.cpp): a few starting points.
write("plugin_descriptor", "zeros", bytes(64))
write("plugin_descriptor", "current_version_one_kernel", bytes([1, 4, 2, 3, 5, 1, 4, 8, 2, 1]) + bytes(40))
write("plugin_descriptor", "counting", bytes(range(256)))
