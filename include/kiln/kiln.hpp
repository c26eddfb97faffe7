#pragma once
// Kiln: the whole user API in one include, for a program inside Kiln's tree or built against an
// installed Kiln (find_package(kiln) or pkg-config):
//   #include <kiln/kiln.hpp>
// Tensors, autograd and gradient checks, the ops, modules and layers (nn), cells and their registry,
// sequence-to-sequence models, optimisers and schedules, safetensors files, threads, and plugins (loading,
// kernel choice, check_plugin). A fused-kernel plugin needs only the SDK headers (kiln/plugin.h,
// kiln/recurrent_kernel.hpp), not this.

// Tensors, autograd, ops
#include "autograd/grad_mode.hpp"
#include "autograd/graph_dot.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/tape.hpp"
#include "autograd/variable.hpp"
#include "ops/activation_probe.hpp"
#include "ops/ops.hpp"
#include "tensor/error.hpp"
#include "tensor/linalg.hpp"
#include "tensor/math.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/storage.hpp"
#include "tensor/tensor.hpp"
#include "tensor/warning.hpp"

// nn: modules, basic layers, cells and their registry
#include "layers/activation.hpp"
#include "layers/cell_registry.hpp"
#include "layers/dot_product_attention.hpp"
#include "layers/embedding.hpp"
#include "layers/gradcheck_module.hpp"
#include "layers/gradient_flow.hpp"
#include "layers/impl.hpp"
#include "layers/init.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "layers/module.hpp"
#include "layers/module_list.hpp"
#include "layers/positional.hpp"
#include "layers/recurrent_options.hpp"
#include "layers/greff_cells.hpp"
#include "layers/research_cells.hpp"
#include "layers/rnn_cell.hpp"
#include "layers/run_cell.hpp"
#include "layers/sequential.hpp"
#include "layers/summary.hpp"

// Sequence layers: recurrent layers over time, attention, the Transformer
#include "sequence/attention.hpp"
#include "sequence/pooling.hpp"
#include "sequence/recurrent.hpp"
#include "sequence/research_layers.hpp"
#include "sequence/transformer.hpp"

// Sequence to sequence
#include "seq2seq/recurrent_attention.hpp"
#include "seq2seq/rnn_seq2seq.hpp"
#include "seq2seq/search.hpp"
#include "seq2seq/teacher_forcing.hpp"
#include "seq2seq/transformer_seq2seq.hpp"

// Training and files
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "optim/optimizer.hpp"
#include "optim/scheduler.hpp"

// Plugins (loading libraries of kernels and cells) and fusion (choosing and checking kernels)
#include "fusion/check_plugin.hpp"
#include "fusion/graph_pass.hpp"
#include "fusion/kernel_choice.hpp"
#include "plugins/registry.hpp"
