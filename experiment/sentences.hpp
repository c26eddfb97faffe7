#pragma once
// Generated sentences for the tagging task (NER-like): every word gets a tag O, PER, LOC or ORG. Some
// names are ambiguous ("jordan", "washington", "georgia"): a person when followed by "said", a place
// when followed by "hosted". The cue comes after the word, so only a tagger that also reads
// right-to-left can get it.
//
//   kiln::Generator g(0);
//   for (const auto& w : kiln::experiment::tagged_sentence(g, 16)) std::cout << kTagWords[w.word] << "/" << kTagNames[w.tag];

#include <string>
#include <vector>

#include "tensor/random.hpp"

namespace kiln::experiment {

/// Word 0 is padding.
extern const std::vector<std::string> kTagWords;
extern const std::vector<std::string> kTagNames;  // O, PER, LOC, ORG

struct TaggedWord {
  std::int64_t word, tag;
  bool ambiguous;  ///< a name whose tag only the word after it tells
};

/// A sentence of at most `max_len` words (and at least one).
std::vector<TaggedWord> tagged_sentence(Generator& g, std::int64_t max_len);

}  // namespace kiln::experiment
