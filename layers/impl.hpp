#pragma once
// The implementation choice of layers that have fused kernels (recurrent layers, multi-head attention).

namespace kiln::nn {

/// Which implementation runs a layer: the generic graph of its ops, a fused kernel (an error when none
/// supports the call), or the fused kernel when one does (the default).
enum class Impl { Generic, Fused, Auto };

}  // namespace kiln::nn
