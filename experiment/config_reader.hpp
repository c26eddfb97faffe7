#pragma once
// Reading an experiment file (yaml-cpp) with every mistake found at once: each is reported with the
// file:line:column of the value (or of the map that lacks a key) and the key's path, e.g.
//   adding.yaml:12:11: train.optimizer.lr: must be a number from 0 to 10, got 'fast'
//   adding.yaml:7:5: model[1].recurrent: unknown key 'hiden' (did you mean 'hidden'?)
// Values given on the command line (`--set train.lr=0.01`) are named by their flag instead.
//
//   ConfigFile file = ConfigFile::load("adding.yaml", {"train.steps=100"});
//   Section root = file.root();
//   const auto steps = root.section("train").integer("steps", 1000, 1, 1'000'000'000);
//   root.finish();      // unknown keys of root
//   file.throw_if_errors();

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace kiln::experiment {

struct ConfigError {
  std::string where;    ///< "file:line:column", or "--set KEY=VALUE"
  std::string path;     ///< "train.optimizer.lr", "model[1].recurrent"
  std::string message;
  int line = 0, column = 0;  ///< 1-based; 0 for --set (reported after the file's)
  std::string to_string() const;
};

class ConfigFile;

/// A map of the file: typed accessors that record a problem instead of throwing and return the
/// fallback then, and finish() to report the keys no accessor asked for.
class Section {
 public:
  Section(ConfigFile& file, YAML::Node node, std::string path);
  const std::string& path() const { return path_; }
  bool has(const std::string& key) const;
  /// The keys of this map, in the file's order.
  std::vector<std::string> keys() const;
  /// Whether `key` holds a map.
  bool is_map(const std::string& key) const;
  /// Whether `key` holds exactly the word `word` (counts as asked).
  bool says(const std::string& key, const std::string& word);

  /// A whole number in [lo, hi]; `fallback` when absent (absent and no fallback: an error).
  std::int64_t integer(const std::string& key, std::optional<std::int64_t> fallback, std::int64_t lo, std::int64_t hi);
  /// A finite number in [lo, hi].
  double number(const std::string& key, std::optional<double> fallback, double lo, double hi);
  bool flag(const std::string& key, std::optional<bool> fallback);
  /// One of `options`.
  std::string choice(const std::string& key, std::optional<std::string> fallback, const std::vector<std::string>& options);
  std::string text(const std::string& key, std::optional<std::string> fallback);
  /// A list of texts (one text alone counts as a list of one); empty when absent.
  std::vector<std::string> texts(const std::string& key);
  /// A nested map (empty when absent).
  Section section(const std::string& key);
  /// A list of maps, each with exactly one key naming its kind: `- recurrent: {hidden: 64}` (or one
  /// such map alone, not in a list: `seq2seq: {hidden: 64}`). Returns (kind, its section) pairs;
  /// `kinds` are the accepted names.
  std::vector<std::pair<std::string, Section>> kinds_list(const std::string& key, const std::vector<std::string>& kinds);
  /// Records a problem with `key`'s value (or with this map when the key is absent).
  void error(const std::string& key, const std::string& message);
  /// Reports every key of this map that no accessor asked for, with the closest known one.
  void finish();

 private:
  /// The value of `key` (undefined when absent); value() also counts it as asked.
  YAML::Node find(const std::string& key) const;
  YAML::Node value(const std::string& key);
  std::string key_path(const std::string& key) const;

  ConfigFile* file_;
  YAML::Node node_;
  std::string path_;
  std::vector<std::string> asked_;
};

class ConfigFile {
 public:
  /// Parses `path` (YAML) and applies `overrides` ("a.b.c=VALUE", VALUE read as YAML). A file that
  /// cannot be read or parsed, or a malformed override, is a kiln::Error at once (with its position);
  /// everything else is collected while the sections are read.
  static ConfigFile load(const std::string& path, const std::vector<std::string>& overrides = {});
  /// The same for text already read; `name` stands for the file in messages.
  static ConfigFile parse(const std::string& text, const std::string& name, const std::vector<std::string>& overrides = {});

  Section root();
  const std::string& name() const { return name_; }
  const std::vector<ConfigError>& errors() const { return errors_; }
  /// Throws a kiln::Error listing every problem, one per line, if there are any.
  void throw_if_errors(const char* what = "experiment") const;
  /// The document with the overrides applied, as YAML (what a run folder keeps as config.yaml).
  std::string resolved() const;

 private:
  friend class Section;
  void add(const YAML::Node& node, const std::string& path, const std::string& message);
  /// Sets the key `parts` (split_path's) to `value`, making maps on the way; `o` names the override in errors.
  void set(const std::vector<std::string>& parts, const YAML::Node& value, const std::string& o);
  std::string where(const YAML::Node& node, const std::string& path) const;

  std::string name_;
  YAML::Node doc_;
  std::vector<std::pair<std::string, std::string>> overridden_;  // path, "--set ..."
  std::vector<ConfigError> errors_;
};

}  // namespace kiln::experiment
