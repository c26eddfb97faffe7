#include "layers/embedding.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "layers/init.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {

Embedding::Embedding(EmbeddingOptions options) : Module("Embedding"), options_(options) {
  KILN_CHECK(options.num_embeddings_ > 0 && options.embedding_dim_ > 0,
             "Embedding: num_embeddings and embedding_dim must be positive, got {} and {}", options.num_embeddings_,
             options.embedding_dim_);
  KILN_CHECK(options.padding_idx_ < options.num_embeddings_ && options.padding_idx_ >= -1,
             "Embedding: padding_idx {} is out of range for {} embeddings", options.padding_idx_, options.num_embeddings_);
  reset();
}

void Embedding::reset() {
  Tensor w = init::normal({options_.num_embeddings_, options_.embedding_dim_}, 0, 1);
  if (options_.padding_idx_ >= 0)
    std::memset(w.data<float>() + options_.padding_idx_ * options_.embedding_dim_, 0,
                static_cast<std::size_t>(options_.embedding_dim_) * sizeof(float));
  weight = register_parameter("weight", w);
}

Variable Embedding::forward(const Variable& ids) { return embedding(weight, ids, options_.padding_idx_); }

std::string Embedding::extra_repr() const {
  std::string s = fmt::format("{}, {}", options_.num_embeddings_, options_.embedding_dim_);
  if (options_.padding_idx_ >= 0) s += fmt::format(", padding_idx={}", options_.padding_idx_);
  return s;
}

std::int64_t Embedding::load_glove(const std::string& path, const std::unordered_map<std::string, std::int64_t>& vocab) {
  std::ifstream in(path);
  KILN_CHECK(in.good(), "Embedding::load_glove: cannot open {}: {}", path, std::strerror(errno));
  const std::int64_t dim = options_.embedding_dim_;
  std::vector<double> w = weight.value().to_vector();
  std::int64_t found = 0, line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string word;
    fields >> word;
    std::vector<double> v;
    std::string tok;
    while (fields >> tok) {
      char* end = nullptr;
      const double x = std::strtod(tok.c_str(), &end);
      KILN_CHECK(end != tok.c_str() && *end == '\0', "{}:{}:{}: '{}' is not a number", path, line_no,
                 line.find(tok) + 1, tok);
      v.push_back(x);
    }
    KILN_CHECK(static_cast<std::int64_t>(v.size()) == dim, "{}:{}:1: '{}' has {} values, the embedding dimension is {}",
               path, line_no, word, v.size(), dim);
    auto it = vocab.find(word);
    if (it == vocab.end()) continue;
    KILN_CHECK(it->second >= 0 && it->second < options_.num_embeddings_, "Embedding::load_glove: vocab maps '{}' to "
               "row {}, outside {} rows", word, it->second, options_.num_embeddings_);
    std::copy(v.begin(), v.end(), w.begin() + it->second * dim);
    ++found;
  }
  weight.set_value(from_data(w, weight.shape()).to(weight.dtype()));
  return found;
}

}  // namespace kiln::nn
