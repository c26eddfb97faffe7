#pragma once
// Embedding: a lookup table of vectors, with PyTorch's padding_idx and GloVe loading.

#include <string>
#include <unordered_map>
#include <vector>

#include "layers/module.hpp"

namespace kiln::nn {

struct EmbeddingOptions {
  EmbeddingOptions(std::int64_t num_embeddings, std::int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  /// Row that is zero at initialisation and never receives a gradient (e.g. the <pad> token).
  EmbeddingOptions& padding_idx(std::int64_t idx) { padding_idx_ = idx; return *this; }
  std::int64_t num_embeddings_, embedding_dim_;
  std::int64_t padding_idx_ = -1;
};

/// weight [num_embeddings, embedding_dim] ~ N(0, 1), as PyTorch. forward(ids int64 [...]) -> [..., dim].
class Embedding : public Module {
 public:
  explicit Embedding(EmbeddingOptions options);
  Embedding(std::int64_t num, std::int64_t dim) : Embedding(EmbeddingOptions(num, dim)) {}
  void reset() override;
  Variable forward(const Variable& ids) override;
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  /// Overwrites rows with vectors from a GloVe-format text file ("word v1 v2 ... vD" per line) for
  /// the words of `vocab` (word -> row). Returns how many rows were found; others keep their values.
  /// Malformed lines are reported as file:line.
  std::int64_t load_glove(const std::string& path, const std::unordered_map<std::string, std::int64_t>& vocab);
  const EmbeddingOptions& options() const { return options_; }
  Variable weight;

 private:
  EmbeddingOptions options_;
};

}  // namespace kiln::nn
