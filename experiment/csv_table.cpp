#include "experiment/csv_table.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <csv.h>
#include <fmt/format.h>

#include "io/atomic_file.hpp"
#include "tensor/error.hpp"
#include "tensor/names.hpp"

namespace kiln::experiment {
namespace {

struct Reader {
  CsvTable* table;
  std::vector<std::string> row;
  std::string error;
  std::size_t cells = 0;
};

constexpr std::size_t kMaxCells = std::size_t{64} << 20;  // 64 M fields, some GiB of strings

void on_field(void* s, std::size_t len, void* data) {
  auto* r = static_cast<Reader*>(data);
  r->row.emplace_back(static_cast<const char*>(s), len);
  if (++r->cells > kMaxCells && r->error.empty()) r->error = fmt::format("more than {} fields", kMaxCells);
}

void on_row(int, void* data) {
  auto* r = static_cast<Reader*>(data);
  if (!r->error.empty()) return r->row.clear();
  CsvTable& t = *r->table;
  if (t.header.empty()) {
    t.header = std::move(r->row);
  } else if (r->row.size() != t.header.size()) {
    r->error = fmt::format("row {} has {} fields, the header {}", t.rows.size() + 2, r->row.size(), t.header.size());
  } else {
    t.rows.push_back(std::move(r->row));
  }
  r->row.clear();
}

bool parse(const std::string& s, double* out) {
  if (s.empty()) return false;
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(begin, &end);
  while (*end == ' ') ++end;
  if (end == begin || *end != '\0' || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

}  // namespace

std::size_t CsvTable::column(const std::string& name, const std::string& key) const {
  for (std::size_t c = 0; c < header.size(); ++c)
    if (header[c] == name) return c;
  throw Error(fmt::format("{}: {} has no column '{}'{}; its columns: {}", key, file, name, did_you_mean(name, header),
                          fmt::join(header, ", ")));
}

bool CsvTable::is_number(std::size_t r, std::size_t c) const {
  double v = 0;
  return parse(rows[r][c], &v);
}

bool CsvTable::is_missing(std::size_t r, std::size_t c) const {
  std::string v;
  for (char ch : rows[r][c])
    if (ch != ' ') v += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return v.empty() || v == "nan" || v == "na";
}

double CsvTable::number(std::size_t r, std::size_t c) const {
  double v = 0;
  KILN_CHECK(parse(rows[r][c], &v), "{}: row {}, column '{}': '{}' is not a finite number", file, r + 2, header[c],
             rows[r][c].substr(0, 40));
  return v;
}

CsvTable read_csv(const std::string& path, const std::string& key, std::size_t max_bytes) {
  std::string text;
  try {
    text = io::read_file(path, max_bytes);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", key, e.what()));
  }
  CsvTable t;
  t.file = path;
  Reader r{&t, {}, {}, 0};
  csv_parser p;
  KILN_CHECK(csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) == 0, "{}: cannot start the CSV parser", key);
  const std::size_t done = csv_parse(&p, text.data(), text.size(), on_field, on_row, &r);
  int status = done == text.size() ? csv_fini(&p, on_field, on_row, &r) : -1;
  const std::string why = status != 0 ? csv_strerror(csv_error(&p)) : "";
  csv_free(&p);
  KILN_CHECK(status == 0, "{}: {}: not valid CSV near byte {} (row {}): {}", key, path, done, t.rows.size() + 2, why);
  KILN_CHECK(r.error.empty(), "{}: {}: {}", key, path, r.error);
  KILN_CHECK(!t.header.empty() && !t.rows.empty(), "{}: {}: needs a header row and at least one row of values", key, path);
  return t;
}

}  // namespace kiln::experiment
