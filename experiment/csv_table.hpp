#pragma once
// A CSV file read whole (RFC 4180 with libcsv: quoted fields, embedded commas and line breaks): a header
// row naming the columns, then rows of text fields. Every row must have the header's number of fields;
// a file that breaks that, or cannot be parsed, is an error naming the file and the row.
//
//   const CsvTable t = read_csv("data/load.csv");
//   const std::size_t c = t.column("load", "data.targets");   // an error naming the key if absent
//   double v = t.number(3, c);                                // an error naming row 3 and the column

#include <string>
#include <vector>

namespace kiln::experiment {

struct CsvTable {
  std::string file;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  ///< each header.size() long; rows[0] is the file's row 2

  /// The index of the column named `name`; `key` (the config key that named it) is in the error.
  std::size_t column(const std::string& name, const std::string& key) const;
  /// Whether row r's field c reads as a finite number.
  bool is_number(std::size_t r, std::size_t c) const;
  /// Whether row r's field c is a missing value: empty (or spaces), "nan", "NaN", "NA".
  bool is_missing(std::size_t r, std::size_t c) const;
  /// Row r's field c as a finite number; an error naming the file, row and column otherwise.
  double number(std::size_t r, std::size_t c) const;
};

/// Reads `path` (at most `max_bytes`); `key` names the config key in errors.
CsvTable read_csv(const std::string& path, const std::string& key, std::size_t max_bytes = std::size_t{256} << 20);

}  // namespace kiln::experiment
