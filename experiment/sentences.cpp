#include "experiment/sentences.hpp"

namespace kiln::experiment {

const std::vector<std::string> kTagWords{"<pad>", "alice", "bob", "carol", "paris", "london", "tokyo", "acme", "globex",
                                         "jordan", "washington", "georgia", "said", "in", "works", "for", "the", "a",
                                         "today", "news", "and", "then", "report", "visited", "hosted"};
const std::vector<std::string> kTagNames{"O", "PER", "LOC", "ORG"};

namespace {
enum Tag : std::int64_t { O = 0, PER = 1, LOC = 2, ORG = 3 };
enum Word : std::int64_t { kPeople = 1, kPlaces = 4, kOrgs = 7, kAmbiguous = 9, kSaid = 12, kIn = 13, kWorks = 14, kFor = 15,
                           kFillers = 16, kHosted = 24 };
}  // namespace

std::vector<TaggedWord> tagged_sentence(Generator& g, std::int64_t max_len) {
  auto pick = [&g](std::int64_t lo, std::int64_t n) { return lo + static_cast<std::int64_t>(g.next_u64() % static_cast<std::uint64_t>(n)); };
  std::vector<TaggedWord> words;
  while (true) {
    std::vector<std::pair<std::int64_t, std::int64_t>> chunk;  // (word, tag)
    bool amb = g.next_double() < 0.5;
    switch (g.next_u64() % 4) {
      case 0: chunk = {{amb ? pick(kAmbiguous, 3) : pick(kPeople, 3), PER}, {kSaid, O}}; break;
      case 1:
        if (amb)
          chunk = {{pick(kAmbiguous, 3), LOC}, {kHosted, O}};  // the cue comes after the name
        else
          chunk = {{kIn, O}, {pick(kPlaces, 3), LOC}};
        break;
      case 2: chunk = {{kWorks, O}, {kFor, O}, {pick(kOrgs, 2), ORG}}; amb = false; break;
      default: chunk = {{pick(kFillers, 8), O}}; amb = false; break;
    }
    if (static_cast<std::int64_t>(words.size() + chunk.size()) > max_len) {
      if (!words.empty()) break;
      continue;  // a sentence holds at least one word
    }
    for (const auto& [word, tag] : chunk) words.push_back({word, tag, amb && tag != O});
  }
  return words;
}

}  // namespace kiln::experiment
