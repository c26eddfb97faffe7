#include "experiment/config_reader.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "io/atomic_file.hpp"
#include "tensor/error.hpp"
#include "tensor/names.hpp"

namespace kiln::experiment {
namespace {

// A scalar's text, for messages: at most 40 characters.
std::string shown(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  const std::string& s = node.Scalar();
  return fmt::format("'{}'", s.size() > 40 ? s.substr(0, 40) + "..." : s);
}

std::string mark_text(const std::string& name, const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return name;
  return fmt::format("{}:{}:{}", name, mark.line + 1, mark.column + 1);
}

// Counts the values of a document, aliases expanded, up to `budget`: false when there are more, or
// when they nest deeper than 64. An alias repeats a whole subtree, so a few lines of anchors can stand
// for billions of values; reading or writing them back would never end.
bool within(const YAML::Node& node, std::size_t& budget, int depth = 0) {
  if (budget == 0 || depth > 64) return false;
  --budget;
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it)
      if (!within(it->first, budget, depth + 1) || !within(it->second, budget, depth + 1)) return false;
  } else if (node.IsSequence()) {
    for (auto it = node.begin(); it != node.end(); ++it)
      if (!within(*it, budget, depth + 1)) return false;
  }
  return true;
}

// "model[1].recurrent.hidden" -> {"model", "[1]", "recurrent", "hidden"}.
std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : path) {
    if (c == '.' || c == '[') {
      if (!part.empty()) parts.push_back(part);
      part = c == '[' ? "[" : "";
    } else {
      part += c;
    }
  }
  if (!part.empty()) parts.push_back(part);
  return parts;
}

// Note [Wildcard keys]: "model[*].recurrent.cell" stands for that key in every item of the list that has
// it (model[0].recurrent.cell, model[2].recurrent.cell, ...): a sweep varies the cell of every recurrent
// layer whichever position it holds in each experiment. A wildcard no item matches is an error.
std::vector<std::vector<std::string>> expand_wildcards(const YAML::Node& doc, const std::vector<std::string>& parts, const std::string& o) {
  std::vector<std::vector<std::string>> out;
  std::function<void(const YAML::Node&, std::size_t, std::vector<std::string>)> walk = [&](const YAML::Node& node, std::size_t k,
                                                                                          std::vector<std::string> done) {
    if (k == parts.size()) {
      out.push_back(std::move(done));
      return;
    }
    if (parts[k] != "[*]") {
      YAML::Node next;
      if (parts[k][0] == '[') {
        std::size_t index = 0;
        try {
          index = std::stoul(parts[k].substr(1, parts[k].size() - 2));
        } catch (const std::exception&) {
        }
        if (node.IsSequence() && index < node.size()) next.reset(node[index]);
      } else if (node.IsMap()) {
        for (auto it = node.begin(); it != node.end(); ++it)
          if (it->first.IsScalar() && it->first.Scalar() == parts[k]) next.reset(it->second);
      }
      done.push_back(parts[k]);
      walk(next, k + 1, std::move(done));
      return;
    }
    KILN_CHECK(node.IsSequence(), "--set {}: '[*]' needs a list there, got {}", o, shown(node));
    for (std::size_t i = 0; i < node.size(); ++i) {
      const YAML::Node item = node[i];
      // The item must have the key that follows, so [*] picks the layers the key is about.
      bool has = k + 1 == parts.size() || parts[k + 1][0] == '[';
      if (!has && item.IsMap())
        for (auto it = item.begin(); it != item.end(); ++it) has |= it->first.IsScalar() && it->first.Scalar() == parts[k + 1];
      if (!has) continue;
      std::vector<std::string> here = done;
      here.push_back(fmt::format("[{}]", i));
      walk(item, k + 1, std::move(here));
    }
  };
  const bool wild = std::find(parts.begin(), parts.end(), "[*]") != parts.end();
  if (!wild) return {parts};
  walk(doc, 0, {});
  KILN_CHECK(!out.empty(), "--set {}: no item of the list has the key after [*]", o);
  return out;
}

}  // namespace

std::string ConfigError::to_string() const { return fmt::format("{}: {}: {}", where, path.empty() ? "(top)" : path, message); }

// ---- ConfigFile ----

ConfigFile ConfigFile::load(const std::string& path, const std::vector<std::string>& overrides) {
  return parse(io::read_file(path, std::size_t{16} << 20), path, overrides);  // an experiment file is small
}

ConfigFile ConfigFile::parse(const std::string& text, const std::string& name, const std::vector<std::string>& overrides) {
  ConfigFile f;
  f.name_ = name;
  try {
    f.doc_ = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("{}: not YAML: {}", mark_text(name, e.mark), e.msg));
  }
  std::size_t budget = 100000;
  KILN_CHECK(within(f.doc_, budget), "{}: the experiment holds more than 100000 values or nests deeper than 64 (with its "
             "aliases expanded); an experiment file is small", name);
  if (f.doc_.IsNull()) f.doc_ = YAML::Node(YAML::NodeType::Map);
  KILN_CHECK(f.doc_.IsMap(), "{}: an experiment file is a map of sections (data, model, train, ...), not {}",
             mark_text(name, f.doc_.Mark()), shown(f.doc_));
  for (const std::string& o : overrides) {
    const auto eq = o.find('=');
    KILN_CHECK(eq != std::string::npos && eq > 0, "--set {}: expected KEY=VALUE, e.g. --set train.steps=100", o);
    const std::string key = o.substr(0, eq);
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw Error(fmt::format("--set {}: the value is not YAML: {}", o, e.msg));
    }
    const std::vector<std::string> given = split_path(key);
    KILN_CHECK(!given.empty(), "--set {}: no key before '='", o);
    for (const std::vector<std::string>& parts : expand_wildcards(f.doc_, given, o)) {
      f.set(parts, value, o);
      std::string concrete;
      for (const auto& p : parts) concrete += p[0] == '[' || concrete.empty() ? p : "." + p;
      f.overridden_.emplace_back(concrete, "--set " + o);
    }
  }
  return f;
}

void ConfigFile::set(const std::vector<std::string>& parts, const YAML::Node& value, const std::string& o) {
  YAML::Node node;
  node.reset(doc_);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next;
    if (parts[i][0] == '[') {
      std::size_t index = 0;
      try {
        index = std::stoul(parts[i].substr(1, parts[i].size() - 2));
      } catch (const std::exception&) {
        throw Error(fmt::format("--set {}: '{}' is not a list index", o, parts[i]));
      }
      KILN_CHECK(node.IsSequence() && index < node.size(), "--set {}: there is no item {} to set a key in", o, parts[i]);
      next.reset(node[index]);
    } else {
      KILN_CHECK(node.IsMap() || node.IsNull(), "--set {}: '{}' is inside {}, not a map", o, parts[i], shown(node));
      if (!node[parts[i]].IsDefined() || node[parts[i]].IsNull()) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next.reset(node[parts[i]]);
    }
    node.reset(next);
  }
  const std::string& last = parts.back();
  if (last[0] == '[') {
    std::size_t index = 0;
    try {
      index = std::stoul(last.substr(1, last.size() - 2));
    } catch (const std::exception&) {
      throw Error(fmt::format("--set {}: '{}' is not a list index", o, last));
    }
    KILN_CHECK(node.IsSequence() && index < node.size(), "--set {}: there is no item {} to replace", o, last);
    node[index] = value;
  } else {
    KILN_CHECK(node.IsMap() || node.IsNull(), "--set {}: cannot set '{}' inside {}", o, last, shown(node));
    node[last] = value;
  }
}


Section ConfigFile::root() { return Section(*this, doc_, ""); }

void ConfigFile::add(const YAML::Node& node, const std::string& path, const std::string& message) {
  ConfigError e{where(node, path), path, message};
  if (e.where.rfind("--set", 0) != 0 && !node.Mark().is_null()) e.line = node.Mark().line + 1, e.column = node.Mark().column + 1;
  errors_.push_back(e);
}

std::string ConfigFile::where(const YAML::Node& node, const std::string& path) const {
  for (const auto& [key, flag] : overridden_)
    if (path == key || path.rfind(key + ".", 0) == 0 || path.rfind(key + "[", 0) == 0) return flag;
  return mark_text(name_, node.Mark());
}

void ConfigFile::throw_if_errors(const char* what) const {
  if (errors_.empty()) return;
  std::vector<ConfigError> sorted = errors_;  // in the file's order, then the --set ones
  std::stable_sort(sorted.begin(), sorted.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::make_pair(a.line == 0, std::make_pair(a.line, a.column)) < std::make_pair(b.line == 0, std::make_pair(b.line, b.column));
  });
  std::string s = fmt::format("{}: {} problem{} in the {}:", name_, errors_.size(), errors_.size() == 1 ? "" : "s", what);
  for (const auto& e : sorted) s += "\n  " + e.to_string();
  throw Error(s);
}

std::string ConfigFile::resolved() const {
  YAML::Emitter out;
  out << doc_;
  return std::string(out.c_str()) + "\n";
}

// ---- Section ----

Section::Section(ConfigFile& file, YAML::Node node, std::string path) : file_(&file), node_(node), path_(std::move(path)) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    file_->add(node_, path_, fmt::format("must be a map of keys, got {}", shown(node_)));
    node_.reset(YAML::Node(YAML::NodeType::Map));  // rebinds: = would overwrite the document
  }
  if (!node_.IsMap()) return;
  std::map<std::string, int> lines;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (!it->first.IsScalar()) {
      file_->add(it->first, path_, fmt::format("a key must be a word, got {}", shown(it->first)));
      continue;
    }
    const std::string key = it->first.Scalar();
    const auto [seen, fresh] = lines.emplace(key, it->first.Mark().line + 1);
    if (!fresh)
      file_->add(it->first, key_path(key), fmt::format("given twice (first on line {}); say it once", seen->second));
  }
}

std::string Section::key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

std::vector<std::string> Section::keys() const {
  std::vector<std::string> out;
  if (node_.IsMap())
    for (auto it = node_.begin(); it != node_.end(); ++it)
      if (it->first.IsScalar()) out.push_back(it->first.Scalar());
  return out;
}

bool Section::is_map(const std::string& key) const { return find(key).IsMap(); }

YAML::Node Section::find(const std::string& key) const {
  if (node_.IsMap())
    for (auto it = node_.begin(); it != node_.end(); ++it)
      if (it->first.IsScalar() && it->first.Scalar() == key) return it->second;
  return YAML::Node();
}

bool Section::has(const std::string& key) const {
  return !find(key).IsNull();
}

bool Section::says(const std::string& key, const std::string& word) {
  const YAML::Node v = value(key);
  return v.IsDefined() && v.IsScalar() && v.Scalar() == word;
}

YAML::Node Section::value(const std::string& key) {
  asked_.push_back(key);
  return find(key);
}

void Section::error(const std::string& key, const std::string& message) {
  const YAML::Node v = find(key);
  file_->add(v.Mark().is_null() ? node_ : v, key_path(key), message);  // at the value, else (absent) at this map
}

std::int64_t Section::integer(const std::string& key, std::optional<std::int64_t> fallback, std::int64_t lo, std::int64_t hi) {
  const YAML::Node v = value(key);
  if (!v.IsDefined() || v.IsNull()) {
    if (!fallback) error(key, fmt::format("missing: a whole number from {} to {} is needed", lo, hi));
    return fallback.value_or(lo);
  }
  long long n = 0;
  if (!v.IsScalar() || !YAML::convert<long long>::decode(v, n) || n < lo || n > hi) {
    error(key, fmt::format("must be a whole number from {} to {}, got {}", lo, hi, shown(v)));
    return fallback.value_or(lo);
  }
  return n;
}

double Section::number(const std::string& key, std::optional<double> fallback, double lo, double hi) {
  const YAML::Node v = value(key);
  if (!v.IsDefined() || v.IsNull()) {
    if (!fallback) error(key, fmt::format("missing: a number from {} to {} is needed", lo, hi));
    return fallback.value_or(lo);
  }
  double x = 0;
  if (!v.IsScalar() || !YAML::convert<double>::decode(v, x) || !std::isfinite(x) || x < lo || x > hi) {
    error(key, fmt::format("must be a number from {} to {}, got {}", lo, hi, shown(v)));
    return fallback.value_or(lo);
  }
  return x;
}

bool Section::flag(const std::string& key, std::optional<bool> fallback) {
  const YAML::Node v = value(key);
  if (!v.IsDefined() || v.IsNull()) {
    if (!fallback) error(key, "missing: true or false is needed");
    return fallback.value_or(false);
  }
  bool b = false;
  if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
    error(key, fmt::format("must be true or false, got {}", shown(v)));
    return fallback.value_or(false);
  }
  return b;
}

std::string Section::choice(const std::string& key, std::optional<std::string> fallback, const std::vector<std::string>& options) {
  const YAML::Node v = value(key);
  if (!v.IsDefined() || v.IsNull()) {
    if (!fallback) error(key, fmt::format("missing: one of {} is needed", fmt::join(options, ", ")));
    return fallback.value_or(options.empty() ? "" : options.front());
  }
  if (!v.IsScalar() || std::find(options.begin(), options.end(), v.Scalar()) == options.end()) {
    error(key, fmt::format("must be one of {}, got {}{}", fmt::join(options, ", "), shown(v),
                           v.IsScalar() ? did_you_mean(v.Scalar(), options) : ""));
    return fallback.value_or(options.empty() ? "" : options.front());
  }
  return v.Scalar();
}

std::string Section::text(const std::string& key, std::optional<std::string> fallback) {
  const YAML::Node v = value(key);
  if (!v.IsDefined() || v.IsNull()) {
    if (!fallback) error(key, "missing: a text is needed");
    return fallback.value_or("");
  }
  if (!v.IsScalar()) {
    error(key, fmt::format("must be a text, got {}", shown(v)));
    return fallback.value_or("");
  }
  return v.Scalar();
}

std::vector<std::string> Section::texts(const std::string& key) {
  const YAML::Node v = value(key);
  std::vector<std::string> out;
  if (!v.IsDefined() || v.IsNull()) return out;
  if (v.IsScalar()) return {v.Scalar()};
  if (v.IsSequence())
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].IsScalar()) {
        file_->add(v[i], fmt::format("{}[{}]", key_path(key), i), fmt::format("must be a text, got {}", shown(v[i])));
        continue;
      }
      out.push_back(v[i].Scalar());
    }
  else
    error(key, fmt::format("must be a list of texts, got {}", shown(v)));
  return out;
}

Section Section::section(const std::string& key) {
  const YAML::Node v = value(key);
  return Section(*file_, v.IsDefined() ? v : YAML::Node(), key_path(key));
}

std::vector<std::pair<std::string, Section>> Section::kinds_list(const std::string& key, const std::vector<std::string>& kinds) {
  std::vector<std::pair<std::string, Section>> out;
  const YAML::Node v = value(key);
  if (!v.IsDefined() || v.IsNull()) {
    error(key, fmt::format("missing: a list of {} is needed", fmt::join(kinds, ", ")));
    return out;
  }
  if (!v.IsSequence() && !v.IsMap()) {
    error(key, fmt::format("must be a list (- {}: {{...}}), got {}", kinds.front(), shown(v)));
    return out;
  }
  const std::size_t n = v.IsMap() ? 1 : v.size();
  for (std::size_t i = 0; i < n; ++i) {
    const YAML::Node item = v.IsMap() ? v : v[i];
    const std::string item_path = v.IsMap() ? key_path(key) : fmt::format("{}[{}]", key_path(key), i);
    if (!item.IsMap() || item.size() != 1) {
      file_->add(item, item_path, fmt::format("must be one kind with its options (- {}: {{...}}), got {}", kinds.front(),
                                              item.IsMap() ? fmt::format("a map of {} keys", item.size()) : shown(item)));
      continue;
    }
    const auto it = item.begin();
    const std::string kind = it->first.IsScalar() ? it->first.Scalar() : "";
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
      file_->add(it->first, item_path, fmt::format("unknown kind {}{}; the kinds: {}", shown(it->first), did_you_mean(kind, kinds),
                                                   fmt::join(kinds, ", ")));
      continue;
    }
    out.emplace_back(kind, Section(*file_, it->second, item_path + "." + kind));
  }
  return out;
}

void Section::finish() {
  if (!node_.IsMap()) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (!it->first.IsScalar()) continue;
    const std::string key = it->first.Scalar();
    if (std::find(asked_.begin(), asked_.end(), key) != asked_.end()) continue;
    std::vector<std::string> known = asked_;
    std::sort(known.begin(), known.end());
    known.erase(std::unique(known.begin(), known.end()), known.end());
    file_->add(it->first, key_path(key), fmt::format("unknown key{}; the keys here: {}", did_you_mean(key, known),
                                                      known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", "))));
  }
}

}  // namespace kiln::experiment
