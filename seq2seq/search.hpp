#pragma once
// Decoding an encoder-decoder model: greedy search and beam search over any IncrementalDecoder (the
// recurrent Seq2Seq and TransformerSeq2Seq both are one).
//
//   auto opts = kiln::nn::SearchOptions(bos, eos).max_len(30).beam_width(5).length_penalty(0.6);
//   std::vector<kiln::nn::Hypothesis> best = kiln::nn::beam_search(model, src, src_lengths, opts);
//   best[b].tokens        // without BOS and EOS
//   best[b].attention     // one row of source weights per output token
//
// Note [Beam search]: each source keeps beam_width live hypotheses. A step scores every live beam's
// extensions by the sum of log-probabilities, keeps the best beam_width that do not end in EOS, and
// moves those that do to the finished list, scored as log p / length^length_penalty (length counts
// EOS). A source is done once beam_width hypotheses have finished and no live beam, scored at its
// current length, beats the worst of them (exact for length_penalty 0, where scores only fall; the
// usual heuristic otherwise), or when max_len tokens were generated: then the unfinished live beams
// join the list. The best normalised score wins. With beam_width 1
// and length_penalty 0 this is greedy search.

#include <cstdint>
#include <vector>

#include "autograd/variable.hpp"

namespace kiln::nn {

/// The tensors a decoder carries between steps, each with the axis that indexes the sequences being
/// decoded, so searches can reorder and replicate rows without knowing what they hold.
struct DecodeState {
  std::vector<Variable> tensors;
  std::vector<int> batch_axis;
  void add(const Variable& t, int axis) { tensors.push_back(t), batch_axis.push_back(axis); }
  /// Keeps rows `rows` (in that order, repeats allowed) of every tensor along its batch axis.
  void select(const std::vector<std::int64_t>& rows);
};

/// What greedy and beam search drive.
class IncrementalDecoder {
 public:
  virtual ~IncrementalDecoder() = default;
  /// Encodes src int64 [B, S] (lengths int64 [B], or undefined for full length) into the state the
  /// first step starts from.
  virtual DecodeState start(const Variable& src, const Variable& src_lengths) = 0;
  /// One step for N sequences: the previous tokens int64 [N] -> log-probabilities [N, V]. Updates
  /// state; when attention is not null, stores the step's weights over the source [N, S] in it.
  virtual Variable step(const Variable& tokens, DecodeState& state, Variable* attention) = 0;
};

struct SearchOptions {
  SearchOptions(std::int64_t bos, std::int64_t eos) : bos_(bos), eos_(eos) {}
  SearchOptions& max_len(std::int64_t n) { max_len_ = n; return *this; }
  SearchOptions& beam_width(std::int64_t k) { beam_width_ = k; return *this; }
  /// alpha in log p / length^alpha: 0 ranks by total log-probability (favouring short outputs), 1 by
  /// the mean per token.
  SearchOptions& length_penalty(double alpha) { length_penalty_ = alpha; return *this; }
  /// Keep each hypothesis's attention rows (one per output token).
  SearchOptions& keep_attention(bool on) { keep_attention_ = on; return *this; }
  std::int64_t bos_, eos_;
  std::int64_t max_len_ = 100, beam_width_ = 4;
  double length_penalty_ = 1.0;
  bool keep_attention_ = true;
};

struct Hypothesis {
  std::vector<std::int64_t> tokens;  ///< generated tokens, without BOS and EOS
  double log_prob = 0;               ///< sum of the log-probabilities of tokens (and EOS, if reached)
  double score = 0;                  ///< log_prob / length^length_penalty
  bool finished = false;             ///< ended with EOS (false: stopped at max_len)
  std::vector<std::vector<double>> attention;  ///< per output token (and EOS): weights over the source
};

/// The most likely token at every step, for a whole batch at once; one hypothesis per source.
std::vector<Hypothesis> greedy_search(IncrementalDecoder& decoder, const Variable& src, const Variable& src_lengths,
                                      const SearchOptions& options);
/// Note [Beam search]; one hypothesis (the best) per source.
std::vector<Hypothesis> beam_search(IncrementalDecoder& decoder, const Variable& src, const Variable& src_lengths,
                                    const SearchOptions& options);

}  // namespace kiln::nn
